"""A small in-memory DDS + DMS + domain server behind respx, written from protocol.md.

It is the "respx" flavour of the :mod:`tests.domain_client.networks` fixture: the same
client tests then run against the real emulator over HTTP. It keeps to the spec's wire shapes
and status codes and is deliberately simple (one lease at a time, tokens are opaque strings).
"""

from __future__ import annotations

import itertools
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import respx
from eth_account import Account
from eth_account.messages import encode_defunct

from domain_client.timestamps import format_timestamp

BASE = "https://fake.test"
_UUID = r"[0-9a-fA-F-]{36}"
_PARAM = re.compile(r'([A-Za-z0-9_-]+)="((?:[^"\\]|\\.)*)"')


def _ts(offset_s: float = 0.0) -> str:
    return format_timestamp(datetime.now(UTC) + timedelta(seconds=offset_s))


def _json(status: int, body: Any) -> httpx.Response:
    return httpx.Response(status, json=body)


@dataclass
class FakeItem:
    id: str
    domain_id: str
    name: str
    data_type: str
    content: bytes
    created_at: str = field(default_factory=_ts)

    def metadata(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "domain_id": self.domain_id,
            "name": self.name,
            "data_type": self.data_type,
            "size": len(self.content),
            "created_at": self.created_at,
            "updated_at": _ts(),
        }


@dataclass
class FakeTask:
    id: str
    job_id: str
    domain_id: str
    capability: str
    inputs_cids: list[str]
    outputs_prefix: str | None
    status: str = "pending"
    complete_body: Any = None
    fail_body: Any = None
    token: str | None = None
    heartbeats: list[Any] = field(default_factory=list)


class FakeNetwork:
    """DDS, DMS (under ``/v1``) and one domain server, on :data:`BASE`."""

    def __init__(self, reg_secret: str, *, request_max_bytes: int = 0, part_size: int = 1024):
        self.reg_secret = reg_secret
        self.request_max_bytes = request_max_bytes
        self.part_size = part_size
        self.items: dict[str, FakeItem] = {}
        self.tasks: dict[str, FakeTask] = {}
        self.registered: set[str] = set()
        self.dds_tokens: set[str] = set()
        self.domain_tokens: dict[str, str] = {}  # token -> domain id
        self.uploads: dict[str, dict[str, Any]] = {}
        self.faults: list[tuple[str, int]] = []  # (path fragment, status), consumed in order
        self.rotate_on_heartbeat = True
        """Every heartbeat hands out a new domain token (else only when armed: ``rotate_next``)."""
        self.rotate_next: set[str] = set()
        """Task ids whose next heartbeat rotates the token (consumed)."""
        self.cancel_requested: set[str] = set()
        """Task ids whose next heartbeat answers ``cancel: true`` (and ends the lease)."""
        self.log: list[tuple[str, str, str]] = []
        """``(method, path?query, bearer)`` of every request, in arrival order."""
        self._counter = itertools.count(1)

    # --- set-up API ----------------------------------------------------------------------------

    def install(self, mock: respx.MockRouter) -> None:
        routes = [
            ("POST", r"/internal/v1/auth/siwe/request$", self._nonce),
            ("POST", r"/internal/v1/nodes/register-wallet$", self._register),
            ("POST", r"/internal/v1/auth/siwe/verify$", self._verify),
            ("GET", r"/v1/tasks$", self._lease),
            (
                "POST",
                rf"/v1/tasks/(?P<task>{_UUID})/(?P<action>heartbeat|complete|fail)$",
                self._task_call,
            ),
            ("GET", r"/api/v1/info$", self._info),
            ("GET", rf"/api/v1/domains/(?P<domain>{_UUID})/data$", self._list),
            ("POST", rf"/api/v1/domains/(?P<domain>{_UUID})/data$", self._create),
            ("PUT", rf"/api/v1/domains/(?P<domain>{_UUID})/data$", self._update),
            ("POST", rf"/api/v1/domains/(?P<domain>{_UUID})/data/multipart$", self._chunked_post),
            ("PUT", rf"/api/v1/domains/(?P<domain>{_UUID})/data/multipart$", self._chunked_part),
            ("DELETE", rf"/api/v1/domains/(?P<domain>{_UUID})/data/multipart$", self._abort),
            ("GET", rf"/api/v1/domains/(?P<domain>{_UUID})/data/(?P<data>[^/?]+)$", self._raw),
            (
                "DELETE",
                rf"/api/v1/domains/(?P<domain>{_UUID})/data/(?P<data>[^/?]+)$",
                self._delete,
            ),
        ]
        for method, path, handler in routes:
            pattern = BASE.replace(".", r"\.") + path.removesuffix("$") + r"(?:\?.*)?$"
            mock.route(method=method, url__regex=pattern).mock(
                side_effect=self._with_faults(handler)
            )

    def seed(self, domain_id: str, name: str, data_type: str, content: bytes) -> str:
        item = FakeItem(str(uuid.uuid4()), domain_id, name, data_type, content)
        self.items[item.id] = item
        return item.id

    def issue_domain_token(self, domain_id: str) -> str:
        token = f"dom-{next(self._counter)}"
        self.domain_tokens[token] = domain_id
        return token

    def create_task(
        self, domain_id: str, capability: str, inputs_cids: list[str], outputs_prefix: str | None
    ) -> str:
        task = FakeTask(
            str(uuid.uuid4()), str(uuid.uuid4()), domain_id, capability, inputs_cids, outputs_prefix
        )
        self.tasks[task.id] = task
        return task.id

    # --- plumbing ------------------------------------------------------------------------------

    def _with_faults(self, handler: Any) -> Any:
        def respond(request: httpx.Request, **params: str) -> httpx.Response:
            target = request.url.raw_path.decode()
            self.log.append((request.method, target, self._bearer(request)))
            for index, (fragment, status) in enumerate(self.faults):
                if fragment in request.url.path:
                    del self.faults[index]
                    return httpx.Response(status)
            return handler(request, **params)  # type: ignore[no-any-return]

        return respond

    def _bearer(self, request: httpx.Request) -> str:
        header: str = request.headers.get("authorization", "")
        return header.removeprefix("Bearer ")

    def _domain_ok(self, request: httpx.Request, domain: str) -> bool:
        return self.domain_tokens.get(self._bearer(request)) == domain

    # --- DDS -----------------------------------------------------------------------------------

    def _nonce(self, request: httpx.Request) -> httpx.Response:
        wallet = json.loads(request.content)["wallet"]
        if wallet != wallet.lower():
            return _json(400, {"error": "address must be lowercase"})
        return _json(
            200,
            {
                "nonce": uuid.uuid4().hex,
                "domain": "fake.test",
                "uri": BASE,
                "version": "1",
                "chainId": 8453,
                "issuedAt": _ts(),
            },
        )

    def _signer(self, message: str, signature: str) -> str:
        recovered = Account.recover_message(encode_defunct(text=message), signature=signature)
        return str(recovered).lower()

    def _register(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if body["registration_credentials"] != self.reg_secret or not body["capabilities"]:
            return _json(403, {"error": "bad registration"})
        address = body["message"].splitlines()[1]
        if self._signer(body["message"], body["signature"]) != address:
            return _json(401, {"error": "bad signature"})
        self.registered.add(address)
        return _json(200, {})

    def _verify(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if self._signer(body["message"], body["signature"]) != body["address"]:
            return _json(401, {"error": "bad signature"})
        if body["address"] not in self.registered:
            return _json(403, {"error": "not registered"})
        token = f"dds-{next(self._counter)}"
        self.dds_tokens.add(token)
        return _json(200, {"access_token": token, "access_expires_at": _ts(3600)})

    # --- DMS -----------------------------------------------------------------------------------

    def _lease(self, request: httpx.Request) -> httpx.Response:
        if self._bearer(request) not in self.dds_tokens:
            return httpx.Response(401)
        if any(task.status == "leased" for task in self.tasks.values()):
            return httpx.Response(409)
        task = next((t for t in self.tasks.values() if t.status == "pending"), None)
        if task is None:
            return httpx.Response(204)
        task.status = "leased"
        return _json(200, self._envelope(task, rotate=True))

    def _envelope(self, task: FakeTask, *, rotate: bool) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "id": task.id,
            "job_id": task.job_id,
            "capability": task.capability,
            "inputs_cids": task.inputs_cids,
        }
        if task.outputs_prefix is not None:
            spec["outputs_prefix"] = task.outputs_prefix
        return {
            "task": spec,
            "domain_id": task.domain_id,
            "domain_server_url": BASE,
            "access_token": self._lease_token(task, rotate),
            "access_token_expires_at": _ts(300),
            "lease_expires_at": _ts(60),
            "status": "leased",
        }

    def _task_call(self, request: httpx.Request, task: str, action: str) -> httpx.Response:
        if self._bearer(request) not in self.dds_tokens:
            return httpx.Response(401)
        record = self.tasks.get(task)
        if record is None or record.status != "leased":
            return _json(404, {"error": "no such lease"})
        body = json.loads(request.content)
        if action == "heartbeat":
            if "progress" not in body or not isinstance(body.get("events"), list):
                return _json(400, {"error": "bad heartbeat"})
            record.heartbeats.append(body)
            rotate = self.rotate_on_heartbeat or record.id in self.rotate_next
            self.rotate_next.discard(record.id)
            envelope = self._envelope(record, rotate=rotate)
            if record.id in self.cancel_requested:
                record.status = "cancelled"
                envelope["cancel"] = True
            return _json(200, envelope)
        record.status = "completed" if action == "complete" else "failed"
        record.complete_body = body if action == "complete" else None
        record.fail_body = body if action == "fail" else None
        return httpx.Response(200)

    def _lease_token(self, task: FakeTask, rotate: bool) -> str:
        if rotate or task.token is None:
            task.token = self.issue_domain_token(task.domain_id)
        return task.token

    # --- domain server -------------------------------------------------------------------------

    def _info(self, request: httpx.Request) -> httpx.Response:
        return _json(
            200,
            {
                "upload": {
                    "request_max_bytes": self.request_max_bytes,
                    "domain_data_max_bytes": 0,
                    "multipart": {"enabled": True},
                }
            },
        )

    def _list(self, request: httpx.Request, domain: str) -> httpx.Response:
        if not self._domain_ok(request, domain):
            return httpx.Response(401)
        params = request.url.params
        ids = params["ids"].split(",") if "ids" in params else None
        found = [
            item
            for item in self.items.values()
            if item.domain_id == domain
            and (ids is None or item.id in ids)
            and params.get("name", item.name) == item.name
            and params.get("data_type", item.data_type) == item.data_type
        ]
        if "multipart/form-data" in request.headers.get("accept", ""):
            return self._multipart(found)
        return _json(200, {"data": [item.metadata() for item in found]})

    def _multipart(self, items: list[FakeItem]) -> httpx.Response:
        boundary = uuid.uuid4().hex * 2
        body = bytearray()
        for item in items:
            meta = item.metadata()
            params = "; ".join(
                f'{key}="{meta[field_name]}"'
                for key, field_name in (
                    ("name", "name"),
                    ("data-type", "data_type"),
                    ("id", "id"),
                    ("domain-id", "domain_id"),
                    ("size", "size"),
                    ("created-at", "created_at"),
                    ("updated-at", "updated_at"),
                )
            )
            body += (
                f"--{boundary}\r\nContent-Disposition: form-data; {params}\r\n"
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            body += item.content + b"\r\n"
        body += f"--{boundary}--\r\n".encode()
        return httpx.Response(
            200,
            content=bytes(body),
            headers={"content-type": f"multipart/form-data; boundary={boundary}"},
        )

    def _raw(self, request: httpx.Request, domain: str, data: str) -> httpx.Response:
        if not self._domain_ok(request, domain):
            return httpx.Response(401)
        item = self.items.get(data)
        if item is None or item.domain_id != domain:
            return _json(404, {"error": "not found"})
        if request.url.params.get("raw") == "true":
            return httpx.Response(200, content=item.content)
        return _json(200, item.metadata())

    def _delete(self, request: httpx.Request, domain: str, data: str) -> httpx.Response:
        if not self._domain_ok(request, domain):
            return httpx.Response(401)
        if self.items.pop(data, None) is None:
            return httpx.Response(404)
        return httpx.Response(204)

    def _form_parts(self, request: httpx.Request) -> list[tuple[dict[str, str], bytes]]:
        boundary = request.headers["content-type"].split("boundary=", 1)[1].encode()
        parts = []
        for segment in request.content.split(b"--" + boundary)[1:-1]:
            head, _, content = segment.removeprefix(b"\r\n").partition(b"\r\n\r\n")
            params = dict(_PARAM.findall(head.decode()))
            parts.append((params, content.removesuffix(b"\r\n")))
        return parts

    def _create(self, request: httpx.Request, domain: str) -> httpx.Response:
        if not self._domain_ok(request, domain):
            return httpx.Response(401)
        stored = []
        for params, content in self._form_parts(request):
            item_id = self.seed(domain, params["name"], params["data-type"], content)
            stored.append(self.items[item_id].metadata())
        return _json(200, {"data": stored})

    def _update(self, request: httpx.Request, domain: str) -> httpx.Response:
        if not self._domain_ok(request, domain):
            return httpx.Response(401)
        stored = []
        for params, content in self._form_parts(request):
            item = self.items.get(params["id"])
            if item is None:
                return httpx.Response(404)
            item.content = content
            stored.append(item.metadata())
        return _json(200, {"data": stored})

    def _chunked_post(self, request: httpx.Request, domain: str) -> httpx.Response:
        if not self._domain_ok(request, domain):
            return httpx.Response(401)
        params = request.url.params
        if "uploads" in params:
            upload_id = uuid.uuid4().hex
            self.uploads[upload_id] = {"spec": json.loads(request.content), "parts": {}}
            return _json(200, {"upload_id": upload_id, "part_size": self.part_size})
        upload = self.uploads.pop(params["uploadId"])
        refs = json.loads(request.content)["parts"]
        content = b"".join(upload["parts"][ref["part_number"]] for ref in refs)
        spec = upload["spec"]
        existing = self.items.get(spec["existing_id"] or "")
        if existing is not None:
            existing.content = content
            return _json(200, existing.metadata())
        item_id = self.seed(domain, spec["name"], spec["data_type"], content)
        return _json(200, self.items[item_id].metadata())

    def _chunked_part(self, request: httpx.Request, domain: str) -> httpx.Response:
        if not self._domain_ok(request, domain):
            return httpx.Response(401)
        params = request.url.params
        upload = self.uploads[params["uploadId"]]
        upload["parts"][int(params["partNumber"])] = request.content
        return _json(200, {"etag": f"etag-{params['partNumber']}"})

    def _abort(self, request: httpx.Request, domain: str) -> httpx.Response:
        self.uploads.pop(request.url.params.get("uploadId", ""), None)
        return httpx.Response(204)
