"""The task context of a push job: the real domain client and task storage for its envelope.

A pushed envelope carries the domain server, the domain and a domain token, but no DMS session:
nobody heartbeats it, so the token is never rotated and the lease expiry is not enforced (the
pusher owns the lease). The token lives only in memory, inside the :class:`DomainToken`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx

from app.jobs.envelope import PushLease
from app.ports import TaskContextView
from domain_client.delivery import ProgressReporter
from domain_client.domain import DOMAIN_REQUEST_TIMEOUT_S, DomainClient
from domain_client.storage import TaskStorage
from domain_client.throughput import DownloadRateLimit
from domain_client.tokens import DomainToken

__all__ = ["DomainPushContexts", "PushTaskContext"]


@dataclass(frozen=True)
class PushTaskContext:
    """What the runner gets for a push job (``TaskContextView``)."""

    lease: PushLease
    storage: TaskStorage
    reporter: ProgressReporter
    cancelled: asyncio.Event


class DomainPushContexts:
    """A ``PushContextFactory`` over ``domain_client``: one domain client per pushed job.

    Args:
        http: the node's shared client.
        client_id: the ``posemesh-client-id`` header of every domain request.
        request_timeout_s: per-operation timeout of domain requests, seconds.
        download_rate: the floor under download speed (``None``: none).
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        client_id: str,
        *,
        request_timeout_s: float = DOMAIN_REQUEST_TIMEOUT_S,
        download_rate: DownloadRateLimit | None = None,
    ) -> None:
        self._http = http
        self._download_rate = download_rate
        self._client_id = client_id
        self._request_timeout_s = request_timeout_s

    def __call__(
        self, lease: PushLease, reporter: ProgressReporter, cancelled: asyncio.Event
    ) -> TaskContextView:
        domain = DomainClient(
            self._http,
            lease.domain_server_url,
            lease.domain_id,
            DomainToken(lease.access_token),
            self._client_id,
            request_timeout_s=self._request_timeout_s,
            download_rate=self._download_rate,
        )
        storage = TaskStorage(domain, lease.task.id, lease.task.outputs_prefix)
        return PushTaskContext(lease, storage, reporter, cancelled)
