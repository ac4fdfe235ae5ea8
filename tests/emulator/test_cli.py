"""`python -m emulator` as a user starts it: banner, serving, clean stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from emulator.__main__ import build_parser, config_from_args, main
from emulator.server import bind_socket, url_for

ROOT = Path(__file__).resolve().parents[2]


def _start(*args: str) -> subprocess.Popen[str]:
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "emulator", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _banner(process: subprocess.Popen[str]) -> dict[str, str]:
    assert process.stdout is not None
    lines: dict[str, str] = {}
    while "ADMIN_URL" not in lines:
        line = process.stdout.readline()
        assert line, f"emulator exited early: {process.stderr.read() if process.stderr else ''}"
        key, sep, value = line.strip().partition("=")
        if sep:
            lines[key] = value
    return lines


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    """The CLI on a free port with a data dir and a short lease TTL."""
    process = _start(
        "--port", "0", "--lease-ttl", "7", "--data-dir", str(tmp_path), "--no-multipart"
    )
    try:
        yield process, _banner(process)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_banner_and_service(running: tuple[subprocess.Popen[str], dict[str, str]]) -> None:
    process, banner = running
    base = banner["DDS_BASE_URL"]
    assert base.startswith("http://127.0.0.1:") and not base.endswith(":0")
    assert banner["DMS_BASE_URL"] == f"{base}/v1"
    assert banner["DOMAIN_SERVER_URL"] == base
    assert banner["REG_SECRET"] == "emulator-reg-secret"
    assert banner["APP_TOKEN"] == "emulator-app-token"
    info = httpx.get(f"{base}/_emulator/info").json()
    assert info["config"]["lease_ttl"] == 7.0 and info["config"]["multipart_enabled"] is False
    assert httpx.get(f"{base}/api/v1/info").json()["upload"]["multipart"]["enabled"] is False
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=15) == 0


def test_busy_port_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["--port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err


def test_help_lists_the_options(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    for option in (
        "--port",
        "--data-dir",
        "--lease-ttl",
        "--token-ttl",
        "--rotate",
        "--reg-secret",
    ):
        assert option in text


def test_options_map_onto_the_config() -> None:
    args = build_parser().parse_args(
        [
            "--public-url",
            "http://node.test:1/",
            "--rotate",
            "always",
            "--allow-duplicate-names",
            "--empty-list-404",
            "--max-attempts",
            "5",
            "--revoke-superseded-tokens",
        ]
    )
    config = config_from_args(args)
    assert config.public_url == "http://node.test:1" and config.rotate == "always"
    assert config.unique_names is False and config.empty_list_404 is True
    assert config.default_max_attempts == 5 and config.revoke_superseded_tokens is True


def test_wildcard_host_is_published_as_loopback() -> None:
    sock = bind_socket("0.0.0.0", 0)
    try:
        assert url_for(sock) == f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        sock.close()
