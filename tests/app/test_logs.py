"""Structured logs: JSON lines with extras, text on request, secrets redacted everywhere."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Literal

import pytest

from app.logs import REDACTED, configure_logging, redact_text, redact_value

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJkZHMifQ.c2lnbmF0dXJl"
SIGNATURE = "0x" + "ab" * 65
PRIVHEX = "4c0883a69102937d6231471b5dbb6204fe5129617082798ce3f4fdf2548b6f90"


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    buffer = io.StringIO()
    yield buffer
    root.handlers[:] = saved[0]
    root.setLevel(saved[1])


def lines(buffer: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_json_lines_carry_level_logger_message_and_extras(stream: io.StringIO) -> None:
    configure_logging("json", "info", stream=stream)
    logging.getLogger("app.test").info("job %s started", "j1", extra={"task_id": "t1", "n": 3})
    (entry,) = lines(stream)
    assert entry["level"] == "info" and entry["logger"] == "app.test"
    assert entry["message"] == "job j1 started"
    assert (entry["task_id"], entry["n"]) == ("t1", 3)
    assert str(entry["ts"]).endswith("+00:00")


def test_text_format_on_request(stream: io.StringIO) -> None:
    configure_logging("text", "info", stream=stream)
    logging.getLogger("app.test").warning("careful", extra={"job": "j1"})
    text = stream.getvalue()
    assert "WARNING app.test: careful job='j1'" in text


def test_the_level_filters(stream: io.StringIO) -> None:
    configure_logging("json", "warning", stream=stream)
    logging.getLogger("app.test").info("hidden")
    assert stream.getvalue() == ""


def test_secrets_are_redacted_from_messages_arguments_extras_and_tracebacks(
    stream: io.StringIO,
) -> None:
    configure_logging("json", "info", secrets=["console-registration-secret"], stream=stream)
    log = logging.getLogger("app.test")
    log.info("headers: Authorization: Bearer %s", "abc.def")
    log.info("lease token %s sig %s key %s", JWT, SIGNATURE, PRIVHEX)
    log.info(
        "registering",
        extra={
            "registration_credentials": "console-registration-secret",
            "body": {"access_token": "t-1", "task": "ok"},
        },
    )
    try:
        raise RuntimeError("failed with console-registration-secret")
    except RuntimeError:
        log.exception("boom")
    output = stream.getvalue()
    for secret in ("abc.def", JWT, SIGNATURE, PRIVHEX, "console-registration-secret", "t-1"):
        assert secret not in output
    entries = lines(stream)
    assert entries[0]["message"] == f"headers: Authorization: Bearer {REDACTED}"
    assert entries[2]["body"] == {"access_token": REDACTED, "task": "ok"}
    assert REDACTED in str(entries[3]["exception"])


def test_redaction_leaves_ordinary_text_and_ids_alone() -> None:
    text = "task 6f1c2b1e-4a7d-4b8e-9d0a-3c2b1a0f9e8d uploaded refined_splat_2025-01-02"
    assert redact_text(text) == text
    assert redact_value({"name": "x", "items": [1, "two"]}) == {"name": "x", "items": [1, "two"]}


@pytest.mark.parametrize(
    "text",
    ['{"access_token": "tok-123"}', "token=tok-123&x=1", "secret: tok-123", "Bearer tok-123"],
)
def test_key_value_shapes_are_redacted(text: str) -> None:
    assert "tok-123" not in redact_text(text)


def test_log_context_fields_reach_records_from_any_logger(stream: io.StringIO) -> None:
    from app.logs import log_context

    configure_logging("json", "info", stream=stream)
    with log_context(job="j-1", task_id="t-1"):
        logging.getLogger("app.runner.inputs").info("downloaded", extra={"job": "explicit"})
    logging.getLogger("app").info("outside")
    inside, outside = lines(stream)
    assert (inside["job"], inside["task_id"]) == ("explicit", "t-1")
    assert "task_id" not in outside


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("fmt", ["json", "text", "auto"])
def test_uvicorns_colour_copy_of_the_message_never_reaches_the_output(
    stream: io.StringIO, fmt: Literal["json", "text", "auto"]
) -> None:
    configure_logging(fmt, "info", stream=stream)
    colored = "Uvicorn running on \x1b[1mhttp://127.0.0.1:8080\x1b[0m"
    logging.getLogger("app.test.uvicorn").info(  # uvicorn attaches color_message so
        "Uvicorn running on http://127.0.0.1:8080", extra={"color_message": colored}
    )
    assert "\x1b" not in stream.getvalue() and "color_message" not in stream.getvalue()
    assert "Uvicorn running on http://127.0.0.1:8080" in stream.getvalue()


def test_auto_writes_text_to_a_terminal_and_json_elsewhere(stream: io.StringIO) -> None:
    terminal = _Terminal()
    configure_logging("auto", "info", stream=terminal)
    logging.getLogger("app.test").info("to a person", extra={"n": 1})
    assert terminal.getvalue().rstrip().endswith("INFO app.test: to a person n=1")
    configure_logging("auto", "info", stream=stream)
    logging.getLogger("app.test").info("to a collector")
    assert lines(stream)[0]["message"] == "to a collector"
