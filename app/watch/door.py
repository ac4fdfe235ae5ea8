"""The watch door's loop: inbox events → stable entries → jobs; finished jobs → folders.

The loop wakes on inbox events (``watchfiles``: inotify, or polling with ``WATCH_POLLING`` for
network mounts that deliver no events) and at least every ``tick`` seconds, because stability
is a matter of time: an entry is queued once its snapshot (every size and mtime inside it) has
not changed for ``WATCH_STABLE_SECS``. Entries whose name starts with ``.`` are ignored (upload
tools write their temporary files so). A stable entry is hashed; one whose content matches a
queued, running or succeeded watch job is not run again (logged, moved to ``error/`` with the
reason). Each job leaves its input in ``inbox/`` until it ends, so a restart finds it there and
queues it again, under the same task id: an interrupted run resumes in its kept job folder.
While ``WATCH_DIR`` or ``TASKS_ROOT`` has less than ``MIN_FREE_DISK_MB`` free,
intake pauses (logged once, shown by ``/ready``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections.abc import AsyncIterator
from pathlib import Path

from app import CAPABILITY
from app.jobs.errors import IntakeUnavailableError
from app.jobs.service import JobService
from app.metrics import NodeMetrics
from app.records import JobRecord, NewJob
from app.runner.errors import SplatterJobError
from app.runner.workspace import check_free_disk
from app.settings import Settings
from app.watch.entries import (
    StabilityTracker,
    UnsafeEntryError,
    content_hash,
    name_problem,
    safe_label,
    snapshot,
)
from app.watch.folders import WatchFolders
from app.watch.job import WatchItem, WatchRun, watch_task_id
from app.worker.supervisor import WorkerSupervisor

__all__ = ["RETENTION_SWEEP_SECS", "WatchDoor"]

log = logging.getLogger(__name__)

RETENTION_SWEEP_SECS = 3600.0
_SUFFIX = re.compile(r"\.([A-Za-z0-9]{1,10})$")


class WatchDoor:
    """Watches ``WATCH_DIR/inbox/`` and queues what is dropped there into the job service."""

    def __init__(
        self,
        settings: Settings,
        jobs: JobService,
        supervisor: WorkerSupervisor,
        metrics: NodeMetrics,
    ) -> None:
        if settings.watch_dir is None:
            raise ValueError("the watch door needs WATCH_DIR")
        self.folders = WatchFolders(settings.watch_dir)
        self._settings = settings
        self._jobs = jobs
        self._supervisor = supervisor
        self._metrics = metrics
        self._tracker = StabilityTracker(settings.watch_stable_secs)
        self._active: dict[str, WatchItem] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopped = False
        self._last_sweep = float("-inf")
        self.paused: str | None = None
        """Why intake is paused (low disk), or ``None``."""
        self.latencies_s: list[float] = []
        """Stable → queued latency of every queued entry, seconds."""

    @property
    def tick_s(self) -> float:
        """Longest time between two looks at the inbox, seconds."""
        return min(1.0, max(0.05, self._settings.watch_stable_secs / 4))

    @property
    def problem(self) -> str | None:
        """Why the door takes nothing now (``/ready``), or ``None``."""
        if self._task is None or self._task.done():
            return "watch loop is not running"
        return None if self.paused is None else f"intake paused: {self.paused}"

    async def start(self) -> None:
        self.folders.create()
        self._task = asyncio.create_task(self._loop(), name="watch-door")
        log.info("watch door open", extra={"watch_dir": str(self.folders.root)})

    async def stop(self) -> None:
        """Stops intake; inputs of unfinished jobs stay in ``inbox/`` for the next start."""
        self._stopped = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # --- the loop ---

    async def _loop(self) -> None:
        while True:
            try:
                await self.scan_once()
                async for _ in self._wakeups():
                    await self.scan_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("watch loop failed; retrying")
                await asyncio.sleep(self.tick_s)

    async def _wakeups(self) -> AsyncIterator[None]:
        """Inbox events, or a timeout of :attr:`tick_s`; plain sleeps if watching fails."""
        tick_ms = int(self.tick_s * 1000)
        try:
            import watchfiles

            async for _ in watchfiles.awatch(
                self.folders.inbox,
                watch_filter=None,
                debounce=tick_ms,
                step=min(50, tick_ms),
                rust_timeout=tick_ms,
                yield_on_timeout=True,
                force_polling=self._settings.watch_polling,
                poll_delay_ms=tick_ms,
            ):
                yield
        except (ImportError, OSError, RuntimeError) as exc:
            log.warning("watching the inbox failed; polling instead", extra={"error": str(exc)})
        while True:
            await asyncio.sleep(self.tick_s)
            yield

    async def scan_once(self) -> None:
        """One look at the inbox: refuse, wait for, or queue every entry."""
        if self._stopped:
            return
        self._sweep_if_due()
        if not self._disk_ok():
            return
        names = [p.name for p in self.folders.inbox.iterdir() if not p.name.startswith(".")]
        self._tracker.keep_only(set(names))
        now = time.monotonic()
        for name in names:
            if name not in self._active and not self._stopped:
                await self._look_at(name, now)

    async def _look_at(self, name: str, now: float) -> None:
        problem = name_problem(name)
        if problem is not None:
            self._refuse(name, f"the name {name!r} {problem}")
            return
        path = self.folders.inbox / name
        try:
            snap = await asyncio.to_thread(snapshot, path)
        except FileNotFoundError:
            self._tracker.forget(name)
            return
        except UnsafeEntryError as exc:
            self._refuse(name, f"{name!r} {exc}")
            return
        stable_at = self._tracker.observe(name, snap, now)
        if stable_at is None:
            return
        digest = await asyncio.to_thread(content_hash, path, snap)
        if await asyncio.to_thread(snapshot, path) != snap:
            return  # written to while we hashed: wait for it to settle again
        self._tracker.forget(name)
        self._admit(name, path, digest, stable_at)

    def _admit(self, name: str, path: Path, digest: str, stable_at: float) -> None:
        twin = self._jobs.store.watch_job_with_hash(digest)
        if twin is not None:
            log.info(
                "watch: skipped a duplicate input",
                extra={"input": name, "job": twin.id, "content_hash": digest},
            )
            self._refuse(name, f"duplicate: the same content as job {twin.id} ({twin.state})")
            return
        suffix = _suffix(name) if path.is_file() else ""
        self._enqueue(WatchItem(name, safe_label(name), suffix, digest, 1, stable_at))

    def _enqueue(self, item: WatchItem) -> None:
        task_id = watch_task_id(item.content_hash)
        run = WatchRun(
            item,
            self.folders,
            self._settings,
            self._supervisor,
            self._metrics,
            task_id,
            self._finished,
        )
        record = self._jobs.enqueue_local(
            NewJob(source="watch", task_id=task_id, capability=CAPABILITY), run
        )
        self._jobs.store.add_watch_input(record.id, item.name, item.content_hash, item.attempt)
        self._active[item.name] = item
        latency = max(0.0, time.monotonic() - item.stable_at)
        self.latencies_s.append(latency)
        log.info(
            "watch job queued",
            extra={
                "job": record.id,
                "input": item.name,
                "attempt": item.attempt,
                "latency_ms": round(latency * 1000, 1),
            },
        )

    # --- the end of a job ---

    def _finished(self, item: WatchItem, record: JobRecord) -> None:
        self._active.pop(item.name, None)
        if self._stopped:
            return  # shutting down: the input stays in inbox/ for the next start
        path = self.folders.inbox / item.name
        if record.state == "succeeded":
            moved = self.folders.to_processed(path, item.label, item.suffix)
            log.info("watch input processed", extra={"input": item.name, "moved_to": str(moved)})
        elif self._may_retry(item, record):
            item.attempt += 1
            item.stable_at = time.monotonic()
            with contextlib.suppress(IntakeUnavailableError):  # shutting down: stays in inbox/
                self._enqueue(item)
        else:
            reason = record.error or record.state
            self._refuse(item.name, reason, attempts=item.attempt, item=item)

    def _may_retry(self, item: WatchItem, record: JobRecord) -> bool:
        """A failed run, or one interrupted with its folder kept (not a ``DELETE``), is queued
        again while attempts remain; an interrupted one then resumes from its checkpoint."""
        ended = record.state == "failed" or item.interrupted_by is not None
        return ended and item.attempt < self._settings.watch_max_attempts

    def _refuse(
        self, name: str, reason: str, attempts: int = 0, item: WatchItem | None = None
    ) -> None:
        """Moves an inbox entry to ``error/`` with its reason."""
        self._tracker.forget(name)
        path = self.folders.inbox / name
        label = item.label if item else safe_label(name)
        suffix = item.suffix if item else (_suffix(name) if path.is_file() else "")
        try:
            folder = self.folders.to_error(path, label, suffix, reason, attempts)
        except OSError as exc:
            log.error("watch: cannot move to error/", extra={"input": name, "error": str(exc)})
            return
        log.warning(
            "watch input refused",
            extra={"input": name, "reason": reason, "attempts": attempts, "moved_to": str(folder)},
        )

    # --- guards ---

    def _disk_ok(self) -> bool:
        minimum = self._settings.min_free_disk_mb
        try:
            check_free_disk(self.folders.root, minimum)
            check_free_disk(self._settings.tasks_root, minimum)
        except SplatterJobError as exc:
            if self.paused != str(exc):
                log.warning("watch intake paused", extra={"reason": str(exc)})
            self.paused = str(exc)
            return False
        if self.paused is not None:
            log.info("watch intake resumed")
            self.paused = None
        return True

    def _sweep_if_due(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep < RETENTION_SWEEP_SECS:
            return
        self._last_sweep = now
        deleted = self.folders.sweep(self._settings.watch_retention_days)
        if deleted:
            log.info("watch retention: deleted old entries", extra={"count": len(deleted)})


def _suffix(name: str) -> str:
    match = _SUFFIX.search(name)
    return f".{match[1].lower()}" if match else ""
