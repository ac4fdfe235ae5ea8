"""No node secret reaches a process that handles untrusted data (issue #10, Secrets).

The node's environment holds ``REG_SECRET``, ``SECP256K1_PRIVHEX`` and ``SPLATTER_API_TOKEN``.
A real pipeline child (``python -m pipeline run``, started by the supervisor as in production)
decodes an MP4 with ffmpeg; both processes' ``/proc/<pid>/environ`` are read and must carry
none of the three values, under any name. ``ns-train`` / ``ns-export`` go through ``run_tool``:
its child is checked the same way. The serving node itself drops the secrets from its own
environment once its settings hold them, so helpers that libraries start inside it carry none.
"""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import imageio_ffmpeg
import pytest
import uvicorn

import app.__main__ as node_main
import app.logs
import app.main
from app.node_secrets import take_node_secrets
from app.settings import Settings, forget_secret_variables, get_settings
from app.worker.environment import pipeline_env
from app.worker.supervisor import WorkerSupervisor
from pipeline.environment import child_environment, scrub_own_environment
from pipeline.train.external_tool import run_tool
from tests.app.factories import make_settings
from tests.pipeline.synthetic.factories import make_tiny_job
from tests.support.waiting import eventually

SECRETS = {
    "REG_SECRET": "reg-secret-6d1f0c",
    "SECP256K1_PRIVHEX": "ab" * 32,
    "SPLATTER_API_TOKEN": "api-token-93e2aa",
}
# The same values under innocent-looking or allow-listed names must not slip through either.
COPIES = {"SPLATTER_NOTE": SECRETS["REG_SECRET"], "OMP_SECRET_COPY": SECRETS["SPLATTER_API_TOKEN"]}


@pytest.fixture
def secret_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in {**SECRETS, **COPIES}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("SPLATTER_BACKEND", "cpu")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def read_environ(path: Path) -> dict[str, str]:
    """A ``/proc/<pid>/environ`` dump as a dict."""
    entries = path.read_bytes().split(b"\0")
    pairs = (entry.decode().partition("=") for entry in entries if entry)
    return {name: value for name, _, value in pairs}


def assert_no_secret(env: dict[str, str], who: str) -> None:
    leaked = sorted(k for k, v in env.items() if any(s in v for s in SECRETS.values()))
    assert not leaked, f"{who} carries a node secret in {leaked}"
    assert not set(SECRETS) & set(env), f"{who} carries a secret variable"


def ffmpeg_spy(folder: Path) -> Path:
    """An ``IMAGEIO_FFMPEG_EXE`` that dumps its own and its parent's environ, then becomes the
    real ffmpeg (``exec`` keeps the environment: the dump is ffmpeg's). ``child.environ``
    appears last and whole (renamed into place): the test cancels the run once it exists."""
    spy = folder / "ffmpeg-spy"
    spy.write_text(
        "#!/bin/sh\n"
        f'cat /proc/$$/environ > "{folder}/ffmpeg.environ"\n'
        f'cat /proc/$PPID/environ > "{folder}/child.partial"\n'
        f'mv "{folder}/child.partial" "{folder}/child.environ"\n'
        f'exec "{imageio_ffmpeg.get_ffmpeg_exe()}" "$@"\n'
    )
    spy.chmod(spy.stat().st_mode | stat.S_IXUSR)
    return spy


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_the_pipeline_child_and_its_ffmpeg_carry_no_secret(
    tmp_path: Path, secret_environment: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_root = tmp_path / "tasks" / "job"
    make_tiny_job(job_root)
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(ffmpeg_spy(tmp_path)))
    settings = make_settings(tmp_path, pipeline_command=f"{sys.executable} -m pipeline")

    async def run() -> Any:
        cancel = asyncio.Event()
        supervisor = WorkerSupervisor(settings)

        async def cancel_once_dumped() -> None:
            await eventually(lambda: (tmp_path / "child.environ").exists(), within_s=120)
            cancel.set()

        watcher = asyncio.create_task(cancel_once_dumped())
        outcome = await supervisor.run_pipeline(job_root, cancel, lambda _event: None)
        await watcher
        return outcome

    asyncio.run(run())
    child = read_environ(tmp_path / "child.environ")
    ffmpeg = read_environ(tmp_path / "ffmpeg.environ")
    assert child["SPLATTER_BACKEND"] == "cpu" and child["OMP_NUM_THREADS"] == "1"  # knobs kept
    assert_no_secret(child, "the pipeline child")
    assert_no_secret(ffmpeg, "ffmpeg")


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="needs Linux /proc")
def test_external_tools_carry_no_secret(tmp_path: Path, secret_environment: None) -> None:
    dump = tmp_path / "tool.environ"
    code = f"import shutil; shutil.copyfile('/proc/self/environ', {str(dump)!r})"
    result = run_tool([sys.executable, "-c", code], env={"NS_EXTRA": "1"})
    assert result.returncode == 0
    env = read_environ(dump)
    assert env["NS_EXTRA"] == "1" and env["PYTHONUNBUFFERED"] == "1"
    assert_no_secret(env, "ns-train")


def test_the_allow_list_keeps_what_the_pipeline_needs() -> None:
    source = {
        **SECRETS,
        **COPIES,
        "PATH": "/usr/bin",
        "HOME": "/home/node",
        "LC_ALL": "C.UTF-8",
        "CUDA_VISIBLE_DEVICES": "0",
        "NUMBA_CACHE_DIR": "/tmp/numba",
        "SPLATTER_ITERATIONS": "500",
        "SPLATTER_GITHUB_TOKEN": "tok",
        "AWS_SECRET_ACCESS_KEY": "aws",
        "DMS_BASE_URL": "https://dms",
        "WANDB_MODE": "offline",
        "SPLATTER_CHILD_ENV": "WANDB_MODE, REG_SECRET",
    }
    extra = {"PYTHONUNBUFFERED": "1", "SPLATTER_LEAK": SECRETS["REG_SECRET"]}
    env = child_environment(extra, source=source)
    assert env == {
        "PATH": "/usr/bin",
        "HOME": "/home/node",
        "LC_ALL": "C.UTF-8",
        "CUDA_VISIBLE_DEVICES": "0",
        "NUMBA_CACHE_DIR": "/tmp/numba",
        "SPLATTER_ITERATIONS": "500",
        "SPLATTER_CHILD_ENV": "WANDB_MODE, REG_SECRET",
        "WANDB_MODE": "offline",  # the operator's list adds names, never a secret's
        "PYTHONUNBUFFERED": "1",
    }


def test_the_node_builds_the_child_environment_from_the_allow_list(
    secret_environment: None,
) -> None:
    env = pipeline_env(PYTHONUNBUFFERED="1")
    assert_no_secret(env, "pipeline_env")
    assert env["PYTHONUNBUFFERED"] == "1" and "PYTHONPATH" in env


def test_python_m_pipeline_scrubs_its_own_environment(
    secret_environment: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "environ", os.environ.copy())  # scrub a copy, not the suite's
    removed = scrub_own_environment()
    assert set(SECRETS) | set(COPIES) <= set(removed)
    assert_no_secret(dict(os.environ), "the pipeline after its scrub")


def test_forget_secret_variables_removes_the_secrets_and_their_copies() -> None:
    environ = {**SECRETS, **COPIES, "reg_secret": "x", "PATH": "/usr/bin", "OMP_NUM_THREADS": "1"}
    settings = Settings(
        reg_secret=SECRETS["REG_SECRET"],
        secp256k1_privhex=SECRETS["SECP256K1_PRIVHEX"],
        splatter_api_token=SECRETS["SPLATTER_API_TOKEN"],
    )
    removed = forget_secret_variables(settings, environ)
    assert sorted(removed) == sorted([*SECRETS, *COPIES, "reg_secret"])
    assert environ == {"PATH": "/usr/bin", "OMP_NUM_THREADS": "1"}


def test_the_serving_node_starts_processes_without_its_secrets(
    tmp_path: Path, secret_environment: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Libraries in the node process start helpers that inherit os.environ (pycryptodome runs
    # `file -b` via platform.architecture(), ctypes' find_library runs ldconfig): `serve` must
    # have dropped the secrets by then, while the settings it serves with keep them.
    # os.environ itself (a copy would not reach the C environment a child inherits); the
    # fixture's monkeypatch puts every variable back afterwards.
    monkeypatch.setenv("TASKS_ROOT", str(tmp_path / "tasks"))
    monkeypatch.setenv("SPLATTER_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setattr(app.logs, "configure_logging", lambda *args: None)
    served: dict[str, Any] = {}

    def create_app(settings: Settings) -> object:
        served["settings"] = settings
        return object()

    def run(self: uvicorn.Server) -> None:  # instead of serving: what a library would start
        env_dump = subprocess.run(["env", "-0"], capture_output=True, check=True).stdout
        served["helper"] = dict(e.decode().partition("=")[::2] for e in env_dump.split(b"\0") if e)

    monkeypatch.setattr(app.main, "create_app", create_app)
    monkeypatch.setattr(uvicorn.Server, "run", run)
    get_settings.cache_clear()
    try:
        node_main.serve()
    finally:
        get_settings.cache_clear()
    assert_no_secret(served["helper"], "a process started by the serving node")
    assert served["settings"].secret_values() == list(SECRETS.values())
    assert served["helper"]["TASKS_ROOT"] == str(tmp_path / "tasks")  # the rest is inherited


def test_take_node_secrets_removes_them_and_their_copies_before_any_import() -> None:
    environ = {**SECRETS, **COPIES, "PATH": "/usr/bin", "EMPTY_TOKEN": ""}
    taken = take_node_secrets(environ)
    assert taken == {name.lower(): value for name, value in SECRETS.items()}
    assert environ == {"PATH": "/usr/bin", "EMPTY_TOKEN": ""}


def test_python_m_app_starts_no_helper_with_a_secret(tmp_path: Path) -> None:
    # pycryptodome's ctypes backend runs `file -b <python>` while the node's modules are
    # imported; a `file` first on PATH records the environment it was started with.
    spy = tmp_path / "bin" / "file"
    spy.parent.mkdir()
    spy.write_text(f'#!/bin/sh\ncat /proc/$$/environ > "{tmp_path}/file.environ"\n')
    spy.chmod(spy.stat().st_mode | stat.S_IXUSR)
    env = {k: v for k, v in os.environ.items() if k not in SECRETS}
    env.update(SECRETS, PATH=f"{spy.parent}:{os.environ['PATH']}", PYTHONPATH=str(Path.cwd()))
    env.update(TASKS_ROOT=str(tmp_path / "tasks"), SPLATTER_DATA_DIR=str(tmp_path / "data"))
    env.update(SPLATTER_PORT="1", SPLATTER_HOST="256.0.0.1")  # invalid: exits after importing
    done = subprocess.run([sys.executable, "-m", "app"], env=env, capture_output=True, timeout=120)
    assert done.returncode in (2, 3), done.stderr
    dump = tmp_path / "file.environ"
    if not dump.exists():
        pytest.skip("pycryptodome did not start `file` here (its cffi backend is installed)")
    assert_no_secret(read_environ(dump), "`file -b` started while the node imported")
