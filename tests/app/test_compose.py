"""docker/compose.yaml gives a stopping node the time its own settings say it needs."""

from __future__ import annotations

import re

from app import PROJECT_ROOT
from app.lease import HANDLER_GRACE_SLACK_S

#: uvicorn's ``timeout_graceful_shutdown`` (app/__main__.py): open connections first.
HTTP_SHUTDOWN_S = 5.0


def compose_value(pattern: str) -> float:
    text = (PROJECT_ROOT / "docker" / "compose.yaml").read_text()
    match = re.search(pattern, text, re.MULTILINE)
    assert match is not None, pattern
    return float(match.group(1))


def test_the_stop_grace_period_covers_drain_checkpoint_and_recording_the_end() -> None:
    drain = compose_value(r'^\s+SHUTDOWN_DRAIN_SECS: "(\d+)"')
    grace = compose_value(r'^\s+CANCEL_GRACE_SECS: "(\d+)"')
    stop_grace = compose_value(r"^\s+stop_grace_period: (\d+)s$")
    assert (drain, grace, stop_grace) == (10, 20, 45)
    assert HTTP_SHUTDOWN_S + drain + grace + HANDLER_GRACE_SLACK_S < stop_grace
