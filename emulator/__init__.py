"""An emulator of the three Auki services a compute node talks to, on loopback.

One FastAPI app plays DDS (`/internal/v1/...`), DMS (`/v1/...`, so `DMS_BASE_URL=<base>/v1`) and
a domain server (`/api/v1/...`), following docs/protocol.md from the server side, plus an admin
API under `/_emulator` for tests and the demo.

- `create_app(config)` / `EmulatorState`: in-process use (httpx.ASGITransport).
- `EmulatorServer(config)`: uvicorn on a free loopback port in a background thread.
- `python -m emulator --port 8765`: standalone.
"""

from emulator.app import create_app
from emulator.config import EmulatorConfig
from emulator.server import EmulatorServer
from emulator.state import EmulatorState

__all__ = ["EmulatorConfig", "EmulatorServer", "EmulatorState", "create_app"]
