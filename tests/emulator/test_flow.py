"""A node's whole conversation with the three services, over real HTTP, the way protocol.md
lays it out: SIWE registration and login, lease, heartbeats rotating the domain token, input
download in both formats, output upload in both ways, the complete receipt."""

from __future__ import annotations

import json
import uuid

import httpx

from tests.emulator.factories import (
    APP_TOKEN,
    CAPABILITY,
    TEST_KEY,
    bearer,
    login,
    multipart_headers,
    parse_download,
    register,
    task_body,
    upload_body,
)
from tests.support.emulator import StartEmulator


def test_a_node_runs_one_task_end_to_end(start_emulator: StartEmulator) -> None:
    emulator = start_emulator(rotate="always", revoke_superseded_tokens=True, part_size=4)
    state = emulator.state
    domain_id = str(uuid.uuid4())
    manifest = {"dataIDs": ["refined_scan_2024-01-02_03-04-05"]}
    manifest_item = state.seed_data(
        domain_id,
        "refined_manifest_2024-01-02_03-04-05",
        "refined_manifest_json",
        json.dumps(manifest).encode(),
    )
    recording = state.seed_data(
        domain_id, "dmt_recording_2024-01-02_03-04-05", "dmt_recording_mp4", b"\x00\x00mp4"
    )
    cid = f"{emulator.domain_server_url}/api/v1/domains/{domain_id}/data/{manifest_item.id}"

    with (
        httpx.Client(base_url=emulator.base_url) as dds,
        httpx.Client(base_url=f"{emulator.dms_base_url}/") as dms,
    ):
        # An app posts the job (§1.12).
        job = {"domain_id": domain_id, "tasks": [task_body(inputs_cids=[cid])], "edges": []}
        assert dms.post("jobs", json=job, headers=bearer(APP_TOKEN)).status_code == 201

        # Registration and login (§1.4, §1.5).
        assert register(dds).status_code == 200
        node = bearer(login(dds, TEST_KEY).json()["access_token"])

        # Lease and initial heartbeat (§1.6, §1.7).
        lease = dms.get("tasks", headers=node).json()
        task_id = lease["task"]["id"]
        assert lease["task"]["inputs_cids"] == [cid]
        domain_url = f"{lease['domain_server_url']}/api/v1/domains/{lease['domain_id']}/data"
        beat: dict[str, object] = {"progress": {}, "events": []}
        token = dms.post(f"tasks/{task_id}/heartbeat", json=beat, headers=node).json()
        current = token["access_token"]
        assert dds.get(domain_url, headers=bearer(lease["access_token"])).status_code == 401

        # Inputs: JSON listing + raw download, and the multipart download (§2.3–§2.5).
        listed = dds.get(
            domain_url,
            params={"ids": manifest_item.id},
            headers=bearer(current) | {"Accept": "application/json"},
        ).json()["data"]
        raw = dds.get(f"{domain_url}/{listed[0]['id']}?raw=true", headers=bearer(current))
        assert json.loads(raw.content) == manifest
        both = dds.get(
            f"{domain_url}?ids={manifest_item.id},{recording.id}",
            headers=bearer(current) | {"Accept": "multipart/form-data"},
        )
        boundary = both.headers["content-type"].split("boundary=")[1]
        parts = parse_download(both.content, boundary)
        assert [part.params["name"] for part in parts] == [manifest_item.name, recording.name]
        assert parts[1].content == b"\x00\x00mp4"

        # Progress heartbeat rotates again; outputs go up with the newest token (§2.6, §2.7).
        beat = {"progress": {"pct": 80, "stage": "python"}, "events": [{"level": "info"}]}
        current = dms.post(f"tasks/{task_id}/heartbeat", json=beat, headers=node).json()[
            "access_token"
        ]
        lookup = dds.get(
            domain_url,
            params={"name": "refined_splat_2024-01-02_03-04-05", "data_type": "splat_data"},
            headers=bearer(current),
        )
        assert lookup.json() == {"data": []}
        splat = b"splat-bytes"
        initiated = dds.post(
            f"{domain_url}/multipart?uploads",
            json={
                "name": "refined_splat_2024-01-02_03-04-05",
                "data_type": "splat_data",
                "size": len(splat),
                "content_type": "application/octet-stream",
                "existing_id": None,
            },
            headers=bearer(current),
        ).json()
        etags = []
        for number, start in enumerate(range(0, len(splat), initiated["part_size"]), start=1):
            put = dds.put(
                f"{domain_url}/multipart",
                params={"uploadId": initiated["upload_id"], "partNumber": number},
                content=splat[start : start + initiated["part_size"]],
                headers=bearer(current),
            )
            etags.append({"part_number": number, "etag": put.json()["etag"]})
        artifact = dds.post(
            f"{domain_url}/multipart",
            params={"uploadId": initiated["upload_id"]},
            json={"parts": etags},
            headers=bearer(current),
        ).json()
        preview = dds.post(
            domain_url,
            content=upload_body(
                [
                    (
                        {"name": "refined_splat_preview_video", "data-type": "splat_preview_video"},
                        b"mp4",
                    )
                ],
                "boundary",
            ),
            headers=multipart_headers(current, "boundary"),
        ).json()["data"][0]

        # The receipt (§1.9).
        artifacts = [
            {
                "logical_path": artifact["name"],
                "name": artifact["name"],
                "data_type": "splat_data",
                "id": artifact["id"],
            },
            {
                "logical_path": preview["name"],
                "name": preview["name"],
                "data_type": "splat_preview_video",
                "id": preview["id"],
            },
        ]
        receipt = {
            "output_cids": [artifact["id"], preview["id"]],
            "meta": {
                "job": {
                    "task_id": task_id,
                    "job_id": lease["task"]["job_id"],
                    "domain_id": domain_id,
                    "capability": CAPABILITY,
                },
                "artifacts": artifacts,
            },
        }
        assert dms.post(f"tasks/{task_id}/complete", json=receipt, headers=node).status_code == 200

    record = state.task(task_id)
    assert record.status == "completed" and record.complete_body == receipt
    assert record.progress_history == [{}, {"pct": 80, "stage": "python"}]
    assert state.read_data(domain_id, artifact["id"]) == splat
    assert state.read_data(domain_id, preview["id"]) == b"mp4"
    domain_requests = state.request_log("domain")
    assert all(r.status is not None for r in domain_requests)
    assert sum(1 for r in domain_requests if r.status == 401) == 1
