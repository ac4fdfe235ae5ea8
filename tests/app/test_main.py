"""``python -m app`` as operators run it: configuration errors, serving, SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from app import PROJECT_ROOT, __version__
from demo import free_port


def node_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SPLATTER_", "REG_", "SECP"))}
    env.update(
        TASKS_ROOT=str(tmp_path / "tasks"),
        SPLATTER_DATA_DIR=str(tmp_path / "data"),
        MIN_FREE_DISK_MB="0",
        PYTHONPATH=str(PROJECT_ROOT),
    )
    env.update(extra)
    return env


def run_node(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=PROJECT_ROOT,
    )


def test_a_non_loopback_address_without_a_token_is_refused(tmp_path: Path) -> None:
    result = run_node(node_env(tmp_path, SPLATTER_HOST="0.0.0.0"))
    assert result.returncode == 2
    assert "splatter-node: invalid configuration" in result.stderr
    assert "refusing to listen on non-loopback address '0.0.0.0' without SPLATTER_API_TOKEN" in (
        result.stderr
    )


def test_configuration_errors_name_the_variable_and_never_echo_secrets(tmp_path: Path) -> None:
    result = run_node(
        node_env(
            tmp_path,
            REG_SECRET="reg-secret-value",
            SECP256K1_PRIVHEX="zz-secret-key-zz",
            DISABLE_TASKS_CLEANUP="maybe",
        )
    )
    assert result.returncode == 2
    assert "SECP256K1_PRIVHEX: must be 32 bytes of hex" in result.stderr
    assert "DISABLE_TASKS_CLEANUP: expected one of 1/true/yes/on or 0/false/no/off" in (
        result.stderr
    )
    assert "zz-secret-key-zz" not in result.stderr and "reg-secret-value" not in result.stderr


def test_the_node_serves_health_logs_json_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app"],
        env=node_env(tmp_path, SPLATTER_PORT=str(port), SPLATTER_API_TOKEN="tok-abcdef"),
        stderr=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                response = httpx.get(f"http://127.0.0.1:{port}/health", timeout=1)
                break
            except httpx.TransportError:
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.1)
        assert response.status_code == 200
        jobs = httpx.get(f"http://127.0.0.1:{port}/jobs", timeout=5)
        assert jobs.status_code == 401
        begin = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        # uvicorn finishes its graceful shutdown, then re-raises SIGTERM (status -15).
        assert proc.wait(timeout=20) in (0, -signal.SIGTERM)
        assert time.monotonic() - begin < 15
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.stderr is not None
    entries = [json.loads(line) for line in proc.stderr.read().splitlines() if line.startswith("{")]
    messages = [e["message"] for e in entries]
    assert "node started" in messages and "node stopped" in messages
    assert all({"ts", "level", "logger", "message"} <= set(e) for e in entries)
    assert "tok-abcdef" not in json.dumps(entries)


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m app ARGS`` in an empty folder (the default TASKS_ROOT and data dir are
    relative: nothing may appear there)."""
    env = node_env(tmp_path)
    for name in ("TASKS_ROOT", "SPLATTER_DATA_DIR"):
        del env[name]
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )  # fmt: skip


def test_help_and_version_print_and_exit_without_starting_anything(tmp_path: Path) -> None:
    helped = run_cli(tmp_path, "--help")
    assert helped.returncode == 0
    assert helped.stdout.startswith("usage: splatter-node [-h] [--version] COMMAND")
    assert "serve" in helped.stdout and "environment variables" in helped.stdout
    version = run_cli(tmp_path, "--version")
    assert (version.returncode, version.stdout.strip()) == (0, f"splatter-node {__version__}")
    assert run_cli(tmp_path, "serve", "--help").returncode == 0
    assert list(tmp_path.iterdir()) == []  # no data/ or tasks/ written


@pytest.mark.parametrize("args", [["--port", "9"], ["start"], ["serve", "extra"], ["-x"]])
def test_unknown_arguments_exit_2_before_anything_starts(tmp_path: Path, args: list[str]) -> None:
    result = run_cli(tmp_path, *args)
    assert result.returncode == 2
    assert "usage: splatter-node" in result.stderr and "error:" in result.stderr
    assert list(tmp_path.iterdir()) == []
