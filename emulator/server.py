"""Run the emulator under uvicorn: in a background thread (tests, demo) or in the foreground (CLI).

The listening socket is bound before uvicorn starts, so port 0 (any free port) works and the
public URL, which tokens and leases carry, is known up front.
"""

from __future__ import annotations

import dataclasses
import socket
import threading
import time
from types import TracebackType

import uvicorn
from fastapi import FastAPI

from emulator.app import create_app, current_state
from emulator.config import EmulatorConfig
from emulator.state import EmulatorState

STARTUP_TIMEOUT_S = 15.0


def bind_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to (host, port); port 0 picks a free one."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Accepted connections inherit this; without it, uvicorn's separate header and body writes
    # meet Nagle + delayed ACK and every JSON response takes ~40 ms on loopback.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def url_for(sock: socket.socket) -> str:
    """`http://host:port` of a bound socket (IPv6 hosts in brackets). A wildcard address is
    replaced by loopback: tokens and leases must name an address clients can connect to."""
    host, port = sock.getsockname()[:2]
    host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def prepare(
    config: EmulatorConfig, host: str, port: int
) -> tuple[socket.socket, FastAPI, uvicorn.Server]:
    """Bind, fill in `public_url` if unset, and build the app and its uvicorn server."""
    sock = bind_socket(host, port)
    if config.public_url is None:
        config = dataclasses.replace(config, public_url=url_for(sock))
    app = create_app(config)
    uvicorn_config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=2)
    return sock, app, uvicorn.Server(uvicorn_config)


class EmulatorServer:
    """The emulator on a loopback port in a daemon thread; use as a context manager.

    >>> with EmulatorServer(EmulatorConfig(lease_ttl=5)) as emulator:
    ...     emulator.dms_base_url   # 'http://127.0.0.1:<port>/v1'
    """

    def __init__(
        self, config: EmulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self._sock, self._app, self._server = prepare(config or EmulatorConfig(), host, port)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    @property
    def state(self) -> EmulatorState:
        """The state being served (replaced by `reset`)."""
        return current_state(self._app)

    def reset(self, config: EmulatorConfig | None = None) -> EmulatorState:
        """Serve a fresh, empty state (with `config`, default: the current one) on the same
        port; the public URL stays. Much quicker than a new server between tests."""
        chosen = config or self.state.config
        chosen = dataclasses.replace(chosen, public_url=self.state.public_url())
        state = EmulatorState(chosen)
        self._app.state.emulator = state
        return state

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:<port>`: DDS base URL and domain server URL."""
        return self.state.public_url()

    @property
    def listen_url(self) -> str:
        """`http://127.0.0.1:<port>` where this server accepts connections: the same as
        `base_url` unless a `public_url` (e.g. a proxy in front of it) was configured."""
        return url_for(self._sock)

    @property
    def dds_base_url(self) -> str:
        """Value for the node's `DDS_BASE_URL`."""
        return self.base_url

    @property
    def dms_base_url(self) -> str:
        """Value for the node's `DMS_BASE_URL` (with the `/v1` base path)."""
        return f"{self.base_url}/v1"

    @property
    def domain_server_url(self) -> str:
        """What leases carry as `domain_server_url`."""
        return self.base_url

    def start(self) -> EmulatorServer:
        """Start serving; returns once uvicorn accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the emulator's uvicorn server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for its thread."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=STARTUP_TIMEOUT_S)
        self._sock.close()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()
