"""Naming rules (protocol §2.10–2.12): bad names are refused before any request, with the rule
named; generated names, inferred data types and the download layout."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import respx

from domain_client import DomainClient, DomainToken, NameRuleError, TaskStorage
from domain_client.models import DataMetadata
from domain_client.naming import (
    check_name,
    dataset_folder,
    generated_artifact_name,
    infer_data_type,
    join_logical_path,
    local_file_name,
    sanitize,
)
from domain_client.storage import dataset_path
from tests.domain_client.factories import BASE

pytestmark = pytest.mark.anyio

BAD_NAMES = [
    ("a/b", "character '/' is not allowed (rule: disallowed characters"),
    ("../etc", "character '/' is not allowed"),
    ("..", "contains '..' (rule: no path traversal)"),
    ("splat..v2", "contains '..' (rule: no path traversal)"),
    ("tab\there", "contains control character U+0009 (rule: no control characters)"),
    ("nul\x00", "contains control character U+0000 (rule: no control characters)"),
    ("del\x7f", "contains control character U+007F (rule: no control characters)"),
    ("a=b", "character '=' is not allowed"),
    ("50%", "character '%' is not allowed"),
    ('say"hi"', "character '\"' is not allowed"),
    ("a+b", "character '+' is not allowed"),
    ("", "must be 1 to 128 bytes long, is 0 (rule: length)"),
    ("x" * 129, "must be 1 to 128 bytes long, is 129 (rule: length)"),
    ("é" * 65, "must be 1 to 128 bytes long, is 130 (rule: length)"),
]


@pytest.mark.parametrize(("name", "rule"), BAD_NAMES)
async def test_bad_names_are_refused_before_any_request(
    http: httpx.AsyncClient, tmp_path: Path, name: str, rule: str
) -> None:
    domain = DomainClient(http, BASE, "dom1", DomainToken("t"), "c")
    storage = TaskStorage(domain, "task-1", "out")
    source = tmp_path / "f.bin"
    source.write_bytes(b"x")
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        anything = mock.route().respond(200, json={"data": []})
        attempts = [
            storage.put_domain_artifact("ok.bin", name, "binary", b"x"),
            storage.put_domain_artifact("ok.bin", "ok", name, b"x"),
            domain.create(name, "binary", b"x"),
            domain.upload_chunked(name, "binary", source),
        ]
        for attempt in attempts:
            with pytest.raises(NameRuleError) as caught:
                await attempt
            assert rule in str(caught.value)
            assert isinstance(caught.value, ValueError)
    assert anything.call_count == 0


@pytest.mark.parametrize("rel_path", ["../escape.bin", "a/../../b", "ctl\x01.bin"])
async def test_bad_rel_paths_are_refused(http: httpx.AsyncClient, rel_path: str) -> None:
    storage = TaskStorage(DomainClient(http, BASE, "d", DomainToken("t"), "c"), "t", None)
    with respx.mock(base_url=BASE, assert_all_called=False) as mock:
        anything = mock.route().respond(200)
        with pytest.raises(NameRuleError, match=r"rel_path .*\(rule: "):
            await storage.put_bytes(rel_path, b"x")
    assert anything.call_count == 0


def test_valid_names_pass() -> None:
    for name in ("refined_splat_2024-01-02_03-04-05", "splat.v2", "a b", "x" * 128, "é" * 64):
        assert check_name(name) == name


@pytest.mark.parametrize(
    ("rel_path", "data_type"),
    [
        ("a/outputs_index.json", "json"),
        ("x.PLY", "ply"),
        ("x.drc", "ply_draco"),
        ("x.zip", "zip_data"),
        ("x", "binary"),
        ("m.glb", "glb"),
        ("m.OBJ", "obj"),
        ("t.csv", "csv"),
        ("v.mp4", "mp4"),
        ("w.tar.g-z", "g-z_data"),
        (".hidden", "binary"),
    ],
)
def test_put_bytes_type_inference(rel_path: str, data_type: str) -> None:
    assert infer_data_type(rel_path) == data_type


def test_generated_names_and_logical_paths() -> None:
    assert join_logical_path("out", "job_manifest.json") == "out/job_manifest.json"
    assert join_logical_path("/out/", "/a/b") == "out/a/b"
    assert join_logical_path(None, "a") == join_logical_path("", "a") == "a"
    assert join_logical_path("out", "") == "out"
    assert (
        generated_artifact_name("out/job_manifest.json", "task-456")
        == "out_job_manifest_json_task-456"
    )
    assert sanitize("") == "artifact" and sanitize("", empty="part") == "part"
    assert sanitize("a b/c.d-é") == "a_b_c_d-_"


def test_download_layout() -> None:
    assert dataset_folder("dmt_manifest_2024-01-02_03-04-05") == "2024-01-02_03-04-05"
    assert dataset_folder("scan-2024-01-02-03-04-05-x") == "2024-01-02-03-04-05"
    assert dataset_folder("refined_manifest_x.y") == "refined_manifest_x_y"
    assert local_file_name("refined_manifest_x.y", "refined_manifest_json") == (
        "refined_manifest_x_y.refined_manifest_json"
    )
    meta = DataMetadata(
        id="i", name="dmt_manifest_2024-01-02_03-04-05", data_type="dmt_manifest_json"
    )
    assert dataset_path(meta) == Path(
        "datasets/2024-01-02_03-04-05/dmt_manifest_2024-01-02_03-04-05.dmt_manifest_json"
    )
    assert dataset_path(DataMetadata(id="../x")) == Path("datasets/___x/___x.part")
