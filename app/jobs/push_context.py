"""The task context of a push job: the real domain client and task storage for its envelope.

A pushed envelope carries the domain server, the domain and a domain token, but no DMS session:
nobody heartbeats it, so the lease expiry is not enforced (the pusher owns the lease) and the
token changes only when the pusher hands over a new one (``PUT /jobs/{id}/token``, see
:class:`~app.jobs.push_token.PushToken`). After a domain 401 a request waits up to
``token_wait_s`` for that. The token lives only in memory.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx

from app.jobs.envelope import PushLease
from app.jobs.push_token import PushToken
from app.ports import TaskContextView
from domain_client.delivery import ProgressReporter
from domain_client.domain import DOMAIN_REQUEST_TIMEOUT_S, DomainClient
from domain_client.storage import TaskStorage
from domain_client.throughput import DownloadRateLimit

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
        token_wait_s: after a domain 401, how long a request waits for a new token, seconds.
        download_rate: the floor under download speed (``None``: none).
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        client_id: str,
        *,
        request_timeout_s: float = DOMAIN_REQUEST_TIMEOUT_S,
        token_wait_s: float = 0.0,
        download_rate: DownloadRateLimit | None = None,
    ) -> None:
        self._http = http
        self._download_rate = download_rate
        self._client_id = client_id
        self._request_timeout_s = request_timeout_s
        self._token_wait_s = token_wait_s

    def __call__(
        self,
        lease: PushLease,
        reporter: ProgressReporter,
        cancelled: asyncio.Event,
        token: PushToken | None = None,
    ) -> TaskContextView:
        """The job's context; ``token`` (the job's replaceable bearer) defaults to the lease's."""
        if token is None:
            token = PushToken(lease.access_token, lease.access_token_expires_at)
        token.cancelled = cancelled
        domain = DomainClient(
            self._http,
            lease.domain_server_url,
            lease.domain_id,
            token,
            self._client_id,
            request_timeout_s=self._request_timeout_s,
            refresh_wait_s=self._token_wait_s,
            download_rate=self._download_rate,
        )
        storage = TaskStorage(domain, lease.task.id, lease.task.outputs_prefix)
        return PushTaskContext(lease, storage, reporter, cancelled)
