"""Shared request plumbing for the routers: the state, the public URL, bounded bodies, JSON.

Bodies are read through `read_body`, which counts bytes as they arrive and answers 413 once a
limit is passed. It keeps reading (and dropping) the rest first, so the client finishes sending
and sees the 413 instead of a broken connection.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, TypeVar, cast

from fastapi import Depends, Request
from pydantic import BaseModel, ValidationError

from emulator.errors import EmulatorError, bad_request, too_large
from emulator.state import EmulatorState

JSON_BODY_MAX_BYTES = 2 * 1024 * 1024
"""Cap on JSON request bodies (DMS answers are capped at 2 MiB by the SDK; requests alike)."""

Model = TypeVar("Model", bound=BaseModel)


def get_state(request: Request) -> EmulatorState:
    """The emulator state the app was created with."""
    return cast(EmulatorState, request.app.state.emulator)


StateDep = Annotated[EmulatorState, Depends(get_state)]


def public_url(request: Request, state: EmulatorState) -> str:
    """Base URL of the services as the client sees them (configured or from the request)."""
    return state.public_url(str(request.base_url))


async def read_body(request: Request, limit: int, what: str = "request body") -> bytes:
    """The whole body; 413 naming `limit` if it is larger (limit 0 = unlimited)."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if limit <= 0 or size <= limit:
            chunks.append(chunk)
    if 0 < limit < size:
        raise too_large(f"{what} is {size} bytes; the limit is {limit}")
    return b"".join(chunks)


async def drain(request: Request) -> None:
    """Read and drop the body (before rejecting a request that carries a large one)."""
    async for _ in request.stream():
        pass


def require_json(request: Request) -> None:
    """415 unless the request says `Content-Type: application/json`."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "application/json":
        raise EmulatorError(415, "Content-Type must be application/json")


async def read_json(request: Request, model: type[Model]) -> tuple[Model, Any]:
    """The body validated as `model`, plus the raw decoded JSON (receipts are kept verbatim)."""
    require_json(request)
    raw_bytes = await read_body(request, JSON_BODY_MAX_BYTES, "JSON body")
    try:
        raw = json.loads(raw_bytes)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise bad_request(f"request body is not valid JSON: {exc}") from exc
    try:
        return model.model_validate(raw), raw
    except ValidationError as exc:
        raise bad_request(describe_validation_error(exc.errors())) from exc


def describe_validation_error(errors: Any) -> str:
    """`body.tasks.0.capability: Field required; …` from pydantic/FastAPI error dicts."""
    parts = []
    for error in errors:
        location = ".".join(str(piece) for piece in error.get("loc", ()))
        parts.append(f"{location}: {error.get('msg', 'invalid')}" if location else error["msg"])
    return "; ".join(parts) or "invalid request"
