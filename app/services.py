"""The node's long-lived machinery, started and stopped by the FastAPI lifespan.

Start-up order: clean ``TASKS_ROOT`` (unless disabled; folders kept for a resume stay, those a
killed node left running are marked interrupted, expired ones go), open the job store and fail
the lease and watch jobs a previous process left unfinished (``node restarted``; DMS and the
inbox hand them out again), then the supervisor, the job service (push worker) with the
unfinished push jobs queued again (each waits for ``PUT /jobs/{id}/token``) and, in lease mode,
the lease door. Shutdown runs the other way round:
the lease door stops leasing, running jobs drain or are stopped (SIGTERM → SIGKILL; their
folders are kept for a resume), states are recorded (lease and watch jobs ``cancelled``; push
jobs, running or queued, stay ``queued`` for the next start), the store is closed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from app.jobs.egress import push_client
from app.jobs.push_context import DomainPushContexts
from app.jobs.service import JobService
from app.metrics import NodeMetrics
from app.runner import cleanup_tasks_root
from app.runner.retention import settle_at_start_up
from app.settings import Settings
from app.store import JobStore
from app.viewer.outputs import JobOutputs
from app.viewer.scenes import JobScenes
from app.watch import WatchDoor
from app.worker.supervisor import WorkerSupervisor

__all__ = ["LeaseDoor", "Services", "start_services", "stop_services"]

log = logging.getLogger(__name__)


class LeaseDoor(Protocol):
    """Lease mode: register, log in, poll DMS and hand leases to ``JobService.run_leased``."""

    async def start(self, services: Services) -> None: ...

    async def stop(self) -> None: ...

    @property
    def healthy(self) -> bool: ...


@dataclass
class Services:
    settings: Settings
    store: JobStore
    supervisor: WorkerSupervisor
    metrics: NodeMetrics
    jobs: JobService
    http: httpx.AsyncClient
    viewer_outputs: JobOutputs
    viewer_scenes: JobScenes
    lease_door: LeaseDoor | None = None
    recovered: list[str] = field(default_factory=list)
    """Jobs failed ``node restarted`` at start-up (lease and watch jobs)."""
    push_http: httpx.AsyncClient | None = None
    """Push jobs' HTTP client (connections pinned to checked addresses)."""
    requeued: list[str] = field(default_factory=list)
    """Push jobs queued again at start-up, each waiting for a token (``resume_interrupted``)."""
    watch: WatchDoor | None = None


async def start_services(settings: Settings, *, lease_door: LeaseDoor | None = None) -> Services:
    """Builds and starts everything; raises if lease mode is configured without a lease door.

    The lease door's DDS/DMS/domain clients share one HTTP client; push jobs' domain clients
    (:class:`DomainPushContexts`) and progress relays use their own, whose connections go only
    to addresses the push door's rules allow (:func:`app.jobs.egress.push_client`).
    """
    if settings.lease_mode and lease_door is None:
        raise RuntimeError(
            "REG_SECRET and SECP256K1_PRIVHEX are set but this node has no lease engine wired in"
        )
    removed = cleanup_tasks_root(settings.tasks_root, settings.disable_tasks_cleanup)
    if removed:
        log.info("removed job folders left by a previous run", extra={"count": len(removed)})
    if not settings.disable_tasks_cleanup:
        settle_at_start_up(settings.tasks_root, settings.resume_retention_hours * 3600.0)
    settings.tasks_root.mkdir(parents=True, exist_ok=True)
    store = JobStore.open(settings.database_path)
    # push jobs go back to the queue (resume_interrupted, below); the lease door's are failed
    # and DMS hands their tasks out again
    recovered = store.recover_interrupted(requeue=("push",))
    if recovered:
        log.warning("failed jobs interrupted by a restart", extra={"jobs": recovered})
    outputs = JobOutputs(
        settings.tasks_root, settings.splatter_data_dir, settings.output_retention_hours
    )
    outputs.prune()
    metrics = NodeMetrics()
    metrics.watch_jobs(lambda: store.count_by_state().items())
    supervisor = WorkerSupervisor(settings)
    http = httpx.AsyncClient(timeout=httpx.Timeout(10.0), follow_redirects=False)
    push_http = push_client(settings.allowed_domain_hosts)
    contexts = DomainPushContexts(
        push_http,
        settings.client_id,
        download_rate=settings.download_rate,
        token_wait_s=settings.token_wait_secs,
    )
    jobs = JobService(
        store, supervisor, settings, metrics, context_factory=contexts, http=push_http,
        outputs=outputs,
    )  # fmt: skip
    jobs.start()
    requeued = await jobs.resume_interrupted()
    services = Services(
        settings, store, supervisor, metrics, jobs, http, outputs, JobScenes(outputs),
        lease_door, recovered, requeued=requeued, push_http=push_http,
    )  # fmt: skip
    if settings.watch_dir is not None:
        services.watch = WatchDoor(settings, jobs, supervisor, metrics)
        await services.watch.start()
    if lease_door is not None:
        await lease_door.start(services)
    log.info(
        "node started",
        extra={"lease_mode": settings.lease_mode},
    )
    return services


async def stop_services(services: Services) -> None:
    """Stops leasing, drains or cancels running jobs (recording their state), closes the store.

    A job stopped here keeps its folder for a resume (the supervisor says the node is stopping).
    """
    services.supervisor.begin_shutdown()
    if services.lease_door is not None:
        await services.lease_door.stop()
    if services.watch is not None:
        await services.watch.stop()
    await services.jobs.stop()
    await services.supervisor.shutdown()
    await services.http.aclose()
    if services.push_http is not None:
        await services.push_http.aclose()
    services.store.close()
    log.info("node stopped")
