"""Input resolution of the splatter runner (protocol §3.3).

First input CID → materialised manifest JSON → its ``dataIDs`` → recordings, found by id
(UUID entries, in chunks of 50) and by derived name (``dmt_recording_<scan>[.mp4]``), streamed
to ``datasets/<scan>/Frames.mp4``; with a refinement suffix the five COLMAP binaries
``colmap_<x>_bin<suffix>`` go to ``refined/global/refined_sfm_combined/``. A failed lookup or
download of one recording is logged and counted, as in the reference; what cannot work at all
fails with the reference's message (``no input cid provided; ...``, ``materialize cid <cid>``,
``parse input cid <cid> as JSON``, ``no datasets downloaded; ...``). Missing COLMAP binaries are
a warning event, as V4 has it (§5 #16): none is downloaded and the pipeline child fails on the
missing model. Every domain call goes through ``ctx.storage``, which reads the
current domain token per request; the cancel flag is checked before each step and interrupts
a download in flight. A download slower than the node's floor (``MIN_DOWNLOAD_BYTES_PER_SEC``)
fails the job naming the item and the rate. A file already in place (a resumed job: downloads
are renamed into place only once complete) is not downloaded again.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from app.ports import TaskContextView
from app.runner.cancel import until_cancelled
from app.runner.errors import JobCancelledError, SplatterJobError
from app.runner.manifest import read_data_ids
from app.runner.naming import (
    COLMAP_BINARIES,
    RECORDING_PREFIX,
    derive_scan_id,
    is_uuid,
    recording_folder,
    refinement_suffix,
    unsafe_component_reason,
)
from app.runner.progress import InputCounts
from app.runner.workspace import check_free_disk
from app.settings import Settings
from domain_client.errors import DownloadTooLargeError, DownloadTooSlowError
from domain_client.limits import DownloadBounds, refuse_declared
from domain_client.models import DataMetadata
from pipeline.contract import JobLayout

__all__ = ["InputLimits", "ResolvedInputs", "resolve_inputs"]

log = logging.getLogger(__name__)

ID_CHUNK = 50
RECORDING_TYPE = "dmt_recording_mp4"
_MIB = 1024 * 1024


@dataclass
class ResolvedInputs:
    """What input resolution found.

    Attributes:
        primary_name: name of the materialised input item.
        suffix: refinement suffix (``_<timestamp>``), or ``None`` for a non-manifest input.
        counts: the counters reported in the 20 % progress.
        bytes_downloaded: bytes written for recordings and COLMAP binaries.
    """

    primary_name: str | None
    suffix: str | None
    counts: InputCounts = field(default_factory=InputCounts)
    bytes_downloaded: int = 0


@dataclass(frozen=True)
class InputLimits:
    """Bounds on what input resolution accepts (defaults: the settings' defaults).

    Attributes:
        max_manifest_bytes: largest input CID item read as the manifest, bytes.
        max_data_ids: most ``dataIDs`` entries a manifest may list.
        max_download_bytes: largest single recording or COLMAP binary, bytes.
        disk_check: called with the bytes received so far, every 64 MiB of each download;
            raises to stop the job (free disk fell under the floor).
    """

    max_manifest_bytes: int = 16 * _MIB
    max_data_ids: int = 10_000
    max_download_bytes: int = 16 * 1024 * _MIB
    disk_check: Callable[[int], None] | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> InputLimits:
        def disk_check(_received: int) -> None:
            check_free_disk(settings.tasks_root, settings.min_free_disk_mb)

        return cls(
            max_manifest_bytes=settings.splatter_max_manifest_bytes,
            max_data_ids=settings.splatter_max_data_ids,
            max_download_bytes=settings.splatter_max_download_bytes,
            disk_check=disk_check,
        )

    def manifest_bounds(self) -> DownloadBounds:
        return DownloadBounds(self.max_manifest_bytes, "SPLATTER_MAX_MANIFEST_BYTES")

    def download_bounds(self) -> DownloadBounds:
        return DownloadBounds(
            self.max_download_bytes, "SPLATTER_MAX_DOWNLOAD_BYTES", on_progress=self.disk_check
        )


async def resolve_inputs(
    ctx: TaskContextView, layout: JobLayout, limits: InputLimits | None = None
) -> ResolvedInputs:
    """Downloads everything the first input CID names into the job folder.

    Raises:
        SplatterJobError: no CID; the manifest cannot be had, is too large or no JSON; it lists
            too many ``dataIDs`` or an unsafe scan id; a download is too large or too slow, or
            the disk fills; no recording was downloaded.
    """
    limits = limits or InputLimits()
    cids = list(ctx.lease.task.inputs_cids)
    if not cids:
        raise SplatterJobError("no input cid provided; cannot run splatter job")
    cid = cids[0]
    name, data_ids = await _read_manifest(ctx, layout, cid, limits)
    resolved = ResolvedInputs(primary_name=name, suffix=refinement_suffix(name))
    scan_ids = _scan_ids(data_ids)
    missing_colmap: list[str] = []
    if data_ids:
        fetcher = _Fetcher(ctx, layout, resolved, limits.download_bounds())
        await fetcher.recordings_by_id([d for d in data_ids if is_uuid(d)])
        await fetcher.recordings_by_name(scan_ids)
        if resolved.suffix is not None:
            missing_colmap = await fetcher.colmap_binaries(resolved.suffix)
    if resolved.counts.datasets == 0 and not layout.has_datasets():
        raise SplatterJobError(
            "no datasets downloaded; expected at least one dmt_recording_* input"
        )
    if missing_colmap:
        # Protocol §3.3 6c / §5 #16: warn and go on (V4), not V3's hard error; the pipeline
        # child then fails naming the model files it lacks.
        listed = ", ".join(f'"{prefix}"' for prefix in missing_colmap)
        ctx.reporter.log_event(
            {"level": "warn", "stage": "inputs",
             "message": f"missing colmap binaries for suffix {resolved.suffix}: [{listed}]"}
        )  # fmt: skip
    return resolved


async def _read_manifest(
    ctx: TaskContextView, layout: JobLayout, cid: str, limits: InputLimits
) -> tuple[str | None, list[str]]:
    """Materialises the CID (at most ``limits.max_manifest_bytes`` per item, streamed), reads
    the unique ``dataIDs`` of its primary file off the event loop, removes the download root."""
    try:
        materialized = await until_cancelled(
            ctx,
            ctx.storage.materialize(cid, layout.input_dir, bounds=limits.manifest_bounds()),
            "before input materialization",
        )
    except JobCancelledError:
        raise
    except (DownloadTooSlowError, DownloadTooLargeError) as exc:
        raise SplatterJobError(f"materialize cid {cid}: {exc}") from exc
    except Exception as exc:
        log.warning("input materialization failed", extra={"cid": cid, "error": str(exc)})
        raise SplatterJobError(f"materialize cid {cid}") from exc
    try:
        primary = materialized.primary
        ids = await read_data_ids(primary.path, limits.max_data_ids, cid)
        return primary.metadata.name, list(dict.fromkeys(ids))  # unique, in order, O(n)
    finally:
        for folder in (materialized.root, layout.input_dir):
            shutil.rmtree(folder, ignore_errors=True)


def _scan_ids(data_ids: Sequence[str]) -> list[str]:
    """Unique derived scan ids, in order; an id that is no safe folder name fails the job."""
    scans: dict[str, None] = {}  # an ordered set: membership in O(1)
    for raw in data_ids:
        scan = derive_scan_id(raw)
        if scan is None or scan in scans:
            continue
        reason = unsafe_component_reason(scan)
        if reason is not None:
            raise SplatterJobError(
                f"invalid dataIDs entry {json.dumps(raw)}: a scan id must be a single folder "
                f"name ({reason})"
            )
        scans[scan] = None
    return list(scans)


class _Fetcher:
    """Lookups and downloads of one resolution, with the reference's counters."""

    def __init__(
        self,
        ctx: TaskContextView,
        layout: JobLayout,
        resolved: ResolvedInputs,
        bounds: DownloadBounds | None = None,
    ) -> None:
        self._ctx = ctx
        self._bounds = bounds
        self._layout = layout
        self._resolved = resolved
        self._counts = resolved.counts
        self._downloaded: set[str] = set()

    async def recordings_by_id(self, ids: Sequence[str]) -> None:
        for start in range(0, len(ids), ID_CHUNK):
            chunk = ids[start : start + ID_CHUNK]
            self._counts.metadata_chunks += 1
            items = await self._list("resolving dataset metadata", ids=chunk)
            if items is None:
                continue
            self._counts.metadata_items += len(items)
            for item in items:
                name = item.name or ""
                if name.startswith(RECORDING_PREFIX) and name not in self._downloaded:
                    await self._recording_by_id(item, name)

    async def _recording_by_id(self, item: DataMetadata, name: str) -> None:
        folder = recording_folder(name, item.id)
        reason = unsafe_component_reason(folder)
        if reason is not None:
            log.warning("recording name is no folder name; skipped", extra={"item_name": item.name})
            self._counts.recording_failures += 1
            return
        target = self._layout.recording(folder)
        if await self._download(item, target, "downloading input recording"):
            self._counts.datasets += 1
            self._downloaded.add(name)
        else:
            self._counts.recording_failures += 1

    async def recordings_by_name(self, scan_ids: Sequence[str]) -> None:
        for scan in scan_ids:
            for candidate in (f"{RECORDING_PREFIX}{scan}", f"{RECORDING_PREFIX}{scan}.mp4"):
                if candidate in self._downloaded:
                    break
                items = await self._list(
                    "resolving derived recording metadata", name=candidate, data_type=RECORDING_TYPE
                )
                item = _first_named(items, candidate)
                if item is None:
                    continue
                target = self._layout.recording(scan)
                if await self._download(item, target, "downloading derived recording"):
                    self._counts.datasets += 1
                    self._downloaded.add(candidate)
                    break
                self._counts.recording_failures += 1

    async def colmap_binaries(self, suffix: str) -> list[str]:
        """Looks up all five binaries; downloads them only if all exist. Returns what is missing."""
        found: dict[str, DataMetadata] = {}
        missing: list[str] = []
        for prefix, _ in COLMAP_BINARIES:
            items = await self._list("resolving colmap metadata", name=f"{prefix}{suffix}")
            item = _first_named(items, f"{prefix}{suffix}")
            if item is None:
                missing.append(prefix)
            else:
                found[prefix] = item
        if missing:
            log.warning("missing colmap binaries", extra={"suffix": suffix, "missing": missing})
            self._counts.colmap_failed += len(missing)
            return missing
        for prefix, file_name in COLMAP_BINARIES:
            target = self._layout.model_dir / file_name
            if await self._download(found[prefix], target, "downloading colmap binary"):
                self._counts.colmap_downloaded += 1
            else:
                self._counts.colmap_failed += 1
                missing.append(prefix)
        return missing

    async def _list(
        self,
        stage: str,
        *,
        ids: Sequence[str] | None = None,
        name: str | None = None,
        data_type: str | None = None,
    ) -> Sequence[DataMetadata] | None:
        """A metadata listing; ``None`` (logged) when it fails."""
        domain = self._ctx.storage.domain
        try:
            return await until_cancelled(
                self._ctx, domain.list_metadata(ids=ids, name=name, data_type=data_type), stage
            )
        except JobCancelledError:
            raise
        except Exception as exc:
            log.warning(
                "metadata lookup failed",
                extra={"lookup_name": name, "ids": len(ids or ()), "error": str(exc)},
            )
            return None

    async def _download(self, item: DataMetadata, target: Path, stage: str) -> bool:
        """Streams one item to ``target``; False (logged, partial file removed) on failure.

        Raises:
            SplatterJobError: the download was slower than the floor, the item is larger than
                ``SPLATTER_MAX_DOWNLOAD_BYTES`` (declared or sent), or free disk fell under
                ``MIN_FREE_DISK_MB`` while it ran (the job fails).
        """
        if _already_downloaded(target):
            log.info("already downloaded", extra={"item_name": item.name, "dest": str(target)})
            return True
        target.parent.mkdir(parents=True, exist_ok=True)
        domain = self._ctx.storage.domain
        try:
            refuse_declared(item.size, self._bounds, f"download {item.id}")
            download = domain.download_raw(item.id, target, bounds=self._bounds)
            written = await until_cancelled(self._ctx, download, stage)
        except JobCancelledError:
            raise
        except (DownloadTooSlowError, DownloadTooLargeError) as exc:
            _discard(target)
            raise SplatterJobError(f"{item.name or item.id}: {exc}") from exc
        except SplatterJobError:  # free disk ran out while downloading
            _discard(target)
            raise
        except Exception as exc:
            log.warning(
                "download failed",
                extra={"data_id": item.id, "item_name": item.name, "error": str(exc)},
            )
            _discard(target)
            return False
        self._resolved.bytes_downloaded += written
        log.info(
            "downloaded", extra={"item_name": item.name, "bytes": written, "dest": str(target)}
        )
        return True


def _already_downloaded(target: Path) -> bool:
    """A resumed job's file: downloads are renamed into place only once complete."""
    return target.is_file()


def _discard(partial: Path) -> None:
    partial.unlink(missing_ok=True)


def _first_named(items: Sequence[DataMetadata] | None, name: str) -> DataMetadata | None:
    """The first listed item with exactly that name (servers filter, we check)."""
    return next((item for item in items or () if item.name == name), None)
