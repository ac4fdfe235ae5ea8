"""The job service as the lease engine's handler, and failure reasons."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from app.jobs.push_context import DomainPushContexts
from app.jobs.service import JobService
from app.metrics import NodeMetrics
from app.runner import JobCancelledError, SplatterJobError
from app.settings import Settings
from app.store import JobStore
from app.worker.supervisor import WorkerSupervisor
from domain_client.receipts import runner_failure_reason as fail_reason
from emulator import EmulatorServer
from tests.app.domains import SUFFIX, RecordedContext, emulated_scene, push_context
from tests.app.factories import make_settings
from tests.support.waiting import eventually

pytestmark = pytest.mark.anyio


@pytest.fixture
def store() -> Iterator[JobStore]:
    store = JobStore.open(":memory:")
    yield store
    store.close()


def service(store: JobStore, settings: Settings, http: httpx.AsyncClient) -> JobService:
    contexts = DomainPushContexts(http, "node-tests/1")
    return JobService(
        store, WorkerSupervisor(settings), settings, NodeMetrics(), context_factory=contexts,
        http=http,
    )  # fmt: skip


@pytest.fixture
def recorded(emulator: EmulatorServer, http: httpx.AsyncClient) -> RecordedContext:
    """A leased task's context over a refined scene (real domain client, emulated server)."""
    return push_context(emulator, http, emulated_scene(emulator))


async def test_a_leased_job_is_recorded_and_its_progress_still_reaches_the_engine(
    tmp_path: Path, store: JobStore, recorded: RecordedContext, http: httpx.AsyncClient
) -> None:
    ctx, reporter = recorded.context, recorded.reporter
    jobs = service(store, make_settings(tmp_path, "progress:4", "write-splat"), http)
    await jobs.run_leased(ctx)
    (record,) = store.list_jobs()
    assert (record.source, record.state, record.task_id) == (
        "lease",
        "succeeded",
        str(ctx.lease.task.id),
    )
    assert record.progress == reporter.progress[-1]
    assert [e.event for e in store.events(record.id)] == reporter.events
    assert [(a.name, a.data_type) for a in record.artifacts] == [
        (f"refined_splat{SUFFIX}", "splat_data")
    ]


async def test_a_failed_leased_job_is_recorded_and_the_error_reaches_the_engine(
    tmp_path: Path, store: JobStore, recorded: RecordedContext, http: httpx.AsyncClient
) -> None:
    ctx = recorded.context
    jobs = service(store, make_settings(tmp_path, "exit:2"), http)
    with pytest.raises(SplatterJobError, match=r"^python job failed: status=Some\(2\)$"):
        await jobs.run_leased(ctx)
    (record,) = store.list_jobs()
    assert (record.state, record.error) == (
        "failed", "runner failed: python job failed: status=Some(2)",
    )  # fmt: skip


async def test_delete_of_a_leased_job_sets_the_lease_cancel_flag(
    tmp_path: Path, store: JobStore, recorded: RecordedContext, http: httpx.AsyncClient
) -> None:
    ctx = recorded.context
    started = tmp_path / "started"
    jobs = service(store, make_settings(tmp_path, f"touch:{started}", "sleep:30"), http)
    run = asyncio.create_task(jobs.run_leased(ctx))
    await eventually(started.exists)
    (record,) = store.list_jobs()
    jobs.cancel(record.id)
    assert ctx.cancelled.is_set()
    with pytest.raises(JobCancelledError):
        await run
    assert store.get(record.id).state == "cancelled"


def test_failure_reasons_are_cut_to_4096_bytes_on_a_character_boundary() -> None:
    reason = fail_reason(RuntimeError("é" * 3000))
    assert reason.startswith("runner failed: é")
    assert len(reason.encode()) <= 4096 and len(reason.encode()) >= 4094
    assert fail_reason(RuntimeError("boom")) == "runner failed: boom"


async def test_runner_logs_carry_the_job_and_task_ids(
    tmp_path: Path,
    store: JobStore,
    caplog: pytest.LogCaptureFixture,
    recorded: RecordedContext,
    http: httpx.AsyncClient,
) -> None:
    from app.logs import RedactingFilter

    ctx = recorded.context
    jobs = service(store, make_settings(tmp_path, "write-splat"), http)
    caplog.handler.addFilter(RedactingFilter())
    with caplog.at_level("INFO"):
        await jobs.run_leased(ctx)
    (record,) = store.list_jobs()
    ended = [r for r in caplog.records if r.getMessage() == "pipeline child ended"]
    assert ended and getattr(ended[0], "task_id", None) == str(ctx.lease.task.id)
    assert getattr(ended[0], "job", None) == record.id


async def test_delete_of_a_leased_job_uses_the_engines_cancel_when_given(
    tmp_path: Path, store: JobStore, recorded: RecordedContext, http: httpx.AsyncClient
) -> None:
    ctx = recorded.context
    started = tmp_path / "started"
    calls: list[str] = []

    def engine_cancel() -> None:
        calls.append("cancel")
        ctx.cancelled.set()  # what the engine's session.cancel() does, besides its bookkeeping

    jobs = service(store, make_settings(tmp_path, f"touch:{started}", "sleep:30"), http)
    run = asyncio.create_task(jobs.run_leased(ctx, cancel=engine_cancel))
    await eventually(started.exists)
    jobs.cancel(store.list_jobs()[0].id)
    with pytest.raises(JobCancelledError):
        await run
    assert calls == ["cancel"]
