"""Structured logs: one JSON object per line (or plain text on request), secrets redacted.

Redaction happens in a logging filter on the root handler, so nothing that reaches the output
carries a bearer token, a JWT, a wallet signature, a private key or a configured secret, whether
it sits in the message, its arguments or an ``extra`` field. Keys that name secrets
(``token``, ``secret``, ``signature``, ``authorization``, ``privhex``, ``password``) have their
values replaced whatever they contain.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal, TextIO

__all__ = [
    "JsonFormatter",
    "LogFormat",
    "RedactingFilter",
    "configure_logging",
    "log_context",
    "redact_text",
    "redact_value",
]

REDACTED = "[REDACTED]"

_SECRET_KEY = re.compile(r"token|secret|signature|authorization|privhex|password", re.IGNORECASE)
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # "Bearer <anything>" in headers or messages.
    (re.compile(r"(?i)\b(bearer\s+)[^\s\"',;]+"), r"\1" + REDACTED),
    # JWT-shaped tokens (base64url header.payload.signature).
    (re.compile(r"\beyJ[\w-]*\.[\w-]+\.[\w-]*"), REDACTED),
    # 65-byte wallet signatures and 32-byte private keys in hex.
    (re.compile(r"\b0x[0-9a-fA-F]{130}\b"), REDACTED),
    (re.compile(r"\b(?:0x)?[0-9a-fA-F]{64}\b"), REDACTED),
    # key=value / "key": "value" pairs whose key names a secret.
    (
        re.compile(
            r"(?i)((?:access_token|token|secret|signature|privhex|password|reg_secret)"
            r"[\"']?\s*[:=]\s*[\"']?)[^\s\"',;&}]+"
        ),
        r"\1" + REDACTED,
    ),
)
# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD_ATTRS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


# Extras never written: uvicorn's ``color_message`` repeats the message with ANSI escapes.
_DROPPED = frozenset({"color_message"})

# An immutable default: each log_context() block sets a fresh dict.
_context: ContextVar[Mapping[str, str] | None] = ContextVar("splatter_log_context", default=None)


@contextmanager
def log_context(**fields: str) -> Iterator[None]:
    """Adds ``fields`` (e.g. ``job``, ``task_id``) to every record logged inside the block,
    including from tasks and callbacks started there."""
    token = _context.set({**(_context.get() or {}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


def redact_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with known secrets and secret-shaped substrings replaced by ``[REDACTED]``."""
    for secret in secrets:
        if len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_value(value: Any, secrets: Iterable[str] = (), key: str = "") -> Any:
    """Redacts a JSON-like value recursively; values under secret-naming keys are dropped."""
    secrets = tuple(secrets)
    if key and _SECRET_KEY.search(key) and value not in (None, "", [], {}):
        return REDACTED
    if isinstance(value, str):
        return redact_text(value, secrets)
    if isinstance(value, Mapping):
        return {k: redact_value(v, secrets, str(k)) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(v, secrets) for v in value]
    return value


class RedactingFilter(logging.Filter):
    """Rewrites each record in place so that every handler sees redacted content."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        super().__init__()
        self.secrets = tuple(secrets)

    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in (_context.get() or {}).items():
            if not hasattr(record, name):
                setattr(record, name, value)
        record.msg = redact_text(record.getMessage(), self.secrets)
        record.args = None
        for name in _extra_names(record):
            setattr(record, name, redact_value(getattr(record, name), self.secrets, name))
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact_text(_format_exception(record), self.secrets)
            record.exc_info = None
        return True


class JsonFormatter(logging.Formatter):
    """``{"ts", "level", "logger", "message", ...extra}`` on one line."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _extra_names(record):
            entry[name] = getattr(record, name)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return json.dumps(entry, default=str, ensure_ascii=False)


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = " ".join(f"{n}={getattr(record, n)!r}" for n in _extra_names(record))
        return f"{line} {extras}" if extras else line


LogFormat = Literal["auto", "json", "text"]


def configure_logging(
    fmt: LogFormat = "auto",
    level: str = "info",
    secrets: Iterable[str] = (),
    stream: TextIO | None = None,
) -> logging.Handler:
    """Installs one redacting handler on the root logger (replacing earlier ones).

    ``auto`` writes readable text to a terminal and JSON lines to anything else.
    """
    stream = stream or sys.stderr
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter(secrets))
    if fmt == "json" or (fmt == "auto" and not _is_terminal(stream)):
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(_TextFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        # uvicorn's loggers propagate to ours instead of printing their own format.
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True
    return handler


def _extra_names(record: logging.LogRecord) -> list[str]:
    return [
        n
        for n in vars(record)
        if n not in _STANDARD_ATTRS and n not in _DROPPED and not n.startswith("_")
    ]


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed
        return False


def _format_exception(record: logging.LogRecord) -> str:
    return logging.Formatter().formatException(record.exc_info) if record.exc_info else ""
