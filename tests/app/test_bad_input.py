"""The bad-input corpus (issue #10): hostile or broken inputs, one table row each.

Every row names the input, the error text the job fails with, and is run in a world of its own
(``tmp_path``: TASKS_ROOT, the data dir, a "victim" file that path tricks aim at, a folder under
TASKS_ROOT that is no job). After the failure, nothing outside the job folder
``TASKS_ROOT/<uuid>`` may have been created, changed or deleted.

Node-side rows run the real runner (``run_splatter_job``) with the real domain client over
loopback HTTP against the emulator (or a server that serves a 2 GB item); pipeline rows run
``pipeline.run.run_job`` on a tiny synthetic job whose inputs were damaged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import re
import shutil
import tracemalloc
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from app.runner import SplatterJobError, run_splatter_job
from app.settings import Settings
from emulator import EmulatorServer
from pipeline.colmap import ColmapModel, read_model, write_model
from pipeline.contract import JobLayout
from pipeline.errors import PipelineError
from pipeline.progress import NullProgress
from pipeline.run import RunConfig, run_job
from tests.app.domains import (
    RecordedContext,
    RefinedScene,
    emulated_scene,
    emulator_seed,
    push_context,
    seed_refined_scene,
)
from tests.app.factories import make_settings
from tests.app.serving import serve
from tests.pipeline.synthetic.factories import make_tiny_job

pytestmark = pytest.mark.anyio

MIB = 1024 * 1024
Snapshot = dict[str, tuple[bool, int, int]]


@dataclass
class World:
    """One row's surroundings."""

    root: Path
    settings: Settings
    emulator: EmulatorServer
    http: httpx.AsyncClient
    tiny_job: Path
    job_id: str = dataclasses.field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def job_root(self) -> Path:
        return self.settings.tasks_root / self.job_id

    @property
    def victim(self) -> Path:
        return self.root / "victim" / "x_000001.jpg"

    def snapshot(self) -> Snapshot:
        """Every path under the world except the job folder: kind, and a file's size and mtime."""
        entries: Snapshot = {}
        for folder, dirs, files in os.walk(self.root):
            dirs[:] = [d for d in dirs if Path(folder, d) != self.job_root]
            for name in [*dirs, *files]:
                path = Path(folder, name)
                info = path.lstat()
                is_dir = path.is_dir()  # a folder's mtime moves when an entry comes and goes
                entries[str(path.relative_to(self.root))] = (
                    is_dir,
                    0 if is_dir else info.st_size,
                    0 if is_dir else info.st_mtime_ns,
                )
        return entries


RunRow = Callable[[World], Awaitable[str]]


@dataclass(frozen=True)
class Case:
    """A row: the input's name, how to run it (returns the failure's text), and the error text
    (a regular expression the whole text must match)."""

    name: str
    run: RunRow
    error: str


# --- node-side rows: the runner on the real domain client ---------------------------------


async def _runner_error(world: World, job: RecordedContext) -> str:
    with pytest.raises(SplatterJobError) as failure:
        await run_splatter_job(job.context, world.settings)
    return str(failure.value)


def _lease_id(task_id: str) -> RunRow:
    async def run(world: World) -> str:
        job = push_context(world.emulator, world.http, emulated_scene(world.emulator))
        lease = job.context.lease
        bad = lease.model_copy(update={"task": lease.task.model_copy(update={"id": task_id})})
        job = RecordedContext(dataclasses.replace(job.context, lease=bad), job.reporter)
        error = await _runner_error(world, job)
        assert world.emulator.state.request_log("domain") == []  # refused before any request
        return error

    return run


async def _many_data_ids(world: World) -> str:
    domain_id = str(uuid.uuid4())
    seed = emulator_seed(world.emulator, domain_id)
    scene = seed_refined_scene(seed, domain_id, world.emulator.domain_server_url, colmap=())
    manifest = {"dataIDs": [f"refined_scan_{i}" for i in range(100_000)]}
    manifest_id = seed(
        "refined_manifest_big", "refined_manifest_json", json.dumps(manifest).encode()
    )
    job = push_context(world.emulator, world.http, scene, [scene.cid_of(manifest_id)])
    error = await _runner_error(world, job)
    assert len(world.emulator.state.request_log("domain")) == 2  # the manifest's list + download
    return error


HUGE_ID = "7d1c6c0e-2f5b-4a8e-9c3d-1e2f3a4b5c6d"


class _HugeItemServer:
    """A domain server whose item ``HUGE_ID`` is a 2 GB non-JSON body, generated lazily."""

    def __init__(self, domain_id: str, declare_size: bool) -> None:
        self.domain_id = domain_id
        self.declare_size = declare_size
        self.sent = 0

    async def listing(self, request: Request) -> Response:
        item: dict[str, str | int] = {
            "id": HUGE_ID, "domain_id": self.domain_id, "name": "not_json", "data_type": "bin",
        }  # fmt: skip
        if self.declare_size:
            item["size"] = 2048 * MIB
        return JSONResponse({"data": [item]})

    async def raw(self, request: Request) -> Response:
        async def body() -> AsyncIterator[bytes]:
            block = b"\x89PNG\r\n" * (MIB // 6)
            while self.sent < 2048 * MIB and not await request.is_disconnected():
                self.sent += len(block)
                yield block

        return StreamingResponse(body(), media_type="application/octet-stream")

    def app(self) -> Starlette:
        base = f"/api/v1/domains/{self.domain_id}/data"
        return Starlette(routes=[Route(base, self.listing), Route(f"{base}/{HUGE_ID}", self.raw)])


def _huge_cid(declare_size: bool) -> RunRow:
    async def run(world: World) -> str:
        domain_id = str(uuid.uuid4())
        server = _HugeItemServer(domain_id, declare_size)
        async with serve(server.app()) as url:
            scene = RefinedScene(domain_id, url, HUGE_ID, HUGE_ID)
            job = push_context(world.emulator, world.http, scene)
            tracemalloc.start()
            try:
                error = await _runner_error(world, job)
                sent, peak = server.sent, tracemalloc.get_traced_memory()[1]
            finally:
                tracemalloc.stop()
        assert sent < 64 * MIB  # streamed and cut off, not fetched whole
        assert peak < 64 * MIB  # nor held in memory
        if declare_size:
            assert sent == 0  # the declared size alone refused it
        return error.replace(url, "<server>")

    return run


# --- pipeline rows: run_job on a damaged copy of a tiny job -------------------------------


def _pipeline(damage: Callable[[World, JobLayout], None]) -> RunRow:
    async def run(world: World) -> str:
        shutil.copytree(world.tiny_job, world.job_root)
        layout = JobLayout(world.job_root)
        damage(world, layout)
        config = RunConfig(backend="cpu", steps=1, previews=False, sog=False)
        with pytest.raises(PipelineError) as failure:
            await asyncio.to_thread(run_job, world.job_root, config, NullProgress())
        return str(failure.value).replace(str(world.root), "<world>")

    return run


def _rewrite_model(layout: JobLayout, change: Callable[[ColmapModel], ColmapModel]) -> None:
    write_model(change(read_model(layout.model_dir)), layout.model_dir)


def _image_named(name: Callable[[World], str]) -> Callable[[World, JobLayout], None]:
    def damage(world: World, layout: JobLayout) -> None:
        def rename(model: ColmapModel) -> ColmapModel:
            first = min(model.images)
            model.images[first] = dataclasses.replace(model.images[first], name=name(world))
            return model

        _rewrite_model(layout, rename)

    return damage


def _nan_camera(world: World, layout: JobLayout) -> None:
    def change(model: ColmapModel) -> ColmapModel:
        camera = model.cameras[1]
        params = (float("nan"), *camera.params[1:])
        return dataclasses.replace(model, cameras={1: dataclasses.replace(camera, params=params)})

    _rewrite_model(layout, change)


def _inf_point(world: World, layout: JobLayout) -> None:
    def change(model: ColmapModel) -> ColmapModel:
        model.points3d.xyz[3, 1] = np.inf
        return model

    _rewrite_model(layout, change)


def _video(layout: JobLayout) -> Path:
    return layout.recording(layout.scans()[0])


def _truncated(world: World, layout: JobLayout) -> None:
    data = _video(layout).read_bytes()
    _video(layout).write_bytes(data[: len(data) * 4 // 10])


def _corrupt_mid_stream(world: World, layout: JobLayout) -> None:
    data = bytearray(_video(layout).read_bytes())
    third = len(data) // 3
    noise = np.random.default_rng(0).integers(0, 256, third, dtype=np.uint8)
    data[third : 2 * third] = noise.tobytes()
    _video(layout).write_bytes(bytes(data))


_NOT_INSIDE = (
    "in the COLMAP model is not a relative path inside Frames/ (absolute paths, '..', empty "
    "parts, backslashes and control characters are refused)"
)
_SCAN = "<world>/tasks/[0-9a-f-]{36}/datasets/[^/]+/Frames.mp4"

CASES = [
    *(
        Case(f"lease id {task_id!r}", _lease_id(task_id),
             re.escape(f"invalid task id {task_id!r}: a task id must be a UUID (protocol §1); "
                       "no job folder was made"))
        for task_id in ("/", "../x", "a/b", "../data")
    ),
    Case("100k dataIDs", _many_data_ids, re.escape(
         "manifest lists 100000 dataIDs; at most 10000 are accepted (SPLATTER_MAX_DATA_IDS)")),
    Case("CID naming a 2 GB non-JSON item", _huge_cid(declare_size=False),
         f"materialize cid <server>/api/v1/domains/[0-9a-f-]+/data/{HUGE_ID}: download "
         f"{HUGE_ID} sent more than the 16777216 bytes allowed \\(SPLATTER_MAX_MANIFEST_BYTES\\)"),
    Case("CID naming an item declared 2 GB", _huge_cid(declare_size=True),
         f"materialize cid <server>/api/v1/domains/[0-9a-f-]+/data/{HUGE_ID}: download "
         f"{HUGE_ID} is 2147483648 bytes, more than the 16777216 bytes allowed "
         r"\(SPLATTER_MAX_MANIFEST_BYTES\)"),
    Case("absolute image name", _pipeline(_image_named(lambda w: str(w.victim))),
         re.escape(f"image name '<world>/victim/x_000001.jpg' {_NOT_INSIDE}")),
    Case("image name with ..", _pipeline(_image_named(lambda w: "../../../victim/x_000001.jpg")),
         re.escape(f"image name '../../../victim/x_000001.jpg' {_NOT_INSIDE}")),
    Case("truncated MP4", _pipeline(_truncated),
         f"cannot decode video {_SCAN}: damaged or truncated stream \\(.*\\): \\d+ frames "
         "decoded, and the model needs \\d+ frames past them"),
    Case("MP4 corrupt mid-stream", _pipeline(_corrupt_mid_stream),
         f"cannot decode video {_SCAN}: damaged or truncated stream \\(.*\\): \\d+ frames "
         "decoded, and the model needs \\d+ frames past them"),
    Case("NaN in a camera", _pipeline(_nan_camera),
         r"corrupt COLMAP file cameras.bin, camera 1 of 1, byte offset 8: non-finite PINHOLE "
         r"parameters \(nan, .*\)"),
    Case("Inf in a point", _pipeline(_inf_point),
         r"corrupt COLMAP file points3D.bin, point 4 \(id 4\), byte offset \d+: non-finite "
         r"position \[.*, inf, .*\]"),
]  # fmt: skip


@pytest.fixture(scope="module")
def tiny_job(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("tiny") / "job"
    make_tiny_job(root)
    return root


@pytest.fixture
def world(
    tmp_path: Path, emulator: EmulatorServer, http: httpx.AsyncClient, tiny_job: Path
) -> World:
    settings = make_settings(tmp_path)
    world = World(tmp_path, settings, emulator, http, tiny_job)
    world.victim.parent.mkdir()
    world.victim.write_bytes(b"a file the input aims at")
    (settings.splatter_data_dir).mkdir()
    (settings.splatter_data_dir / "jobs.sqlite3").write_bytes(b"the job store")
    (settings.tasks_root / "not-a-job").mkdir(parents=True)
    (settings.tasks_root / "not-a-job" / "keep.txt").write_text("keep")
    return world


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
async def test_bad_input_fails_with_its_error_and_touches_nothing_outside_the_job(
    world: World, case: Case
) -> None:
    before = world.snapshot()
    error = await case.run(world)
    assert re.fullmatch(case.error, error), f"{case.name}: {error}"
    assert world.snapshot() == before
