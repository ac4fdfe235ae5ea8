"""Domain server (protocol §2.2–§2.7) under `/api/v1`.

Every route but `/info` needs `Authorization: Bearer <domain token>` valid for the path's domain
(401 otherwise). Route order matters: the `data/multipart` routes come before `data/{data_id}`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse

from emulator.deps import StateDep, drain, public_url, read_body, read_json
from emulator.errors import EmulatorError, bad_request
from emulator.grants import bearer_from_header
from emulator.models import UploadComplete, UploadInitiate
from emulator.multipart import (
    MULTIPART_FORM_DATA,
    MultipartError,
    boundary_from_content_type,
    encode_download,
    new_boundary,
    parse_form_data,
)
from emulator.state import EmulatorState
from emulator.storage import DataItem

router = APIRouter(prefix="/api/v1", tags=["domain server"])
DATA = "/domains/{domain_id}/data"
AuthorizationHeader = Annotated[str | None, Header(alias="Authorization")]


async def authorize(
    domain_id: str, request: Request, state: StateDep, authorization: AuthorizationHeader = None
) -> None:
    """401 unless the bearer is a live domain token for `domain_id` at this server's URL.

    A rejected request's body is read and dropped first, so an uploading client gets the 401
    rather than a connection reset.
    """
    try:
        bearer = bearer_from_header(authorization)
        with state.lock:
            state.queue.sweep()  # an expired lease's token is revoked (if revocation is on)
            state.domain_tokens.check(bearer, domain_id, public_url(request, state))
    except EmulatorError:
        await drain(request)
        raise


Authorized = Depends(authorize)


@router.get("/info")
async def info(state: StateDep) -> dict[str, Any]:
    """Upload limits and whether chunked uploads are enabled (no auth)."""
    return state.data.info()


# ---------------------------------------------------------------- list and download


@router.get(DATA, dependencies=[Authorized], response_model=None)
async def list_data(domain_id: str, request: Request, state: StateDep) -> Response:
    """Metadata as JSON, or content as multipart/form-data, by the request's Accept header."""
    query = request.query_params
    ids = [piece.strip() for value in query.getlist("ids") for piece in value.split(",")]
    with state.lock:
        items = state.data.query(
            domain_id, [i for i in ids if i], query.get("name"), query.get("data_type")
        )
        if _wants_multipart(request.headers.get("accept")):
            return _multipart_response(state, items)
    return JSONResponse({"data": [item.to_json() for item in items]})


def _wants_multipart(accept: str | None) -> bool:
    """True if multipart/form-data is named in Accept before application/json."""
    for entry in (accept or "").split(","):
        media_type = entry.split(";")[0].strip().lower()
        if media_type in (MULTIPART_FORM_DATA, "application/json"):
            return media_type == MULTIPART_FORM_DATA
    return False


def _multipart_response(state: EmulatorState, items: list[DataItem]) -> StreamingResponse:
    boundary = state.config.download_boundary or new_boundary()
    parts: list[tuple[Any, Iterable[bytes]]] = [
        (item.download_part(), state.data.chunks(item)) for item in items
    ]
    return StreamingResponse(
        encode_download(parts, boundary), media_type=f"{MULTIPART_FORM_DATA}; boundary={boundary}"
    )


@router.get(DATA + "/{data_id}", dependencies=[Authorized], response_model=None)
async def get_data(
    domain_id: str, data_id: str, state: StateDep, raw: str | None = None
) -> Response:
    """`?raw=true`: the content, streamed; otherwise the item's metadata."""
    with state.lock:
        item = state.data.item(domain_id, data_id)
        if raw is not None and raw.lower() in ("true", "1"):
            chunks = state.data.chunks(item)
            headers = {"Content-Length": str(item.size)}
            return StreamingResponse(chunks, media_type="application/octet-stream", headers=headers)
    return JSONResponse(item.to_json())


# ---------------------------------------------------------------- single-request uploads


async def _form_parts(request: Request, state: EmulatorState) -> list[Any]:
    limit = state.config.request_max_bytes
    try:
        boundary = boundary_from_content_type(request.headers.get("content-type"))
    except MultipartError as exc:
        await drain(request)
        raise bad_request(str(exc)) from exc
    body = await read_body(request, limit, "upload request body")
    try:
        return parse_form_data(body, boundary)
    except MultipartError as exc:
        raise bad_request(str(exc)) from exc


@router.post(DATA, dependencies=[Authorized])
async def create_data(domain_id: str, request: Request, state: StateDep) -> dict[str, Any]:
    """Create one item per part (`name` + `data-type` params): `{"data": [Metadata…]}`."""
    parts = await _form_parts(request, state)
    with state.lock:
        items = state.data.create(domain_id, parts)
    return {"data": [item.to_json() for item in items]}


@router.put(DATA, dependencies=[Authorized])
async def update_data(domain_id: str, request: Request, state: StateDep) -> dict[str, Any]:
    """Replace the content of the item named by each part's `id` param."""
    parts = await _form_parts(request, state)
    with state.lock:
        items = state.data.update(domain_id, parts)
    return {"data": [item.to_json() for item in items]}


# ---------------------------------------------------------------- chunked uploads


@router.post(DATA + "/multipart", dependencies=[Authorized])
async def initiate_or_complete(domain_id: str, request: Request, state: StateDep) -> Any:
    """`?uploads` starts an upload; `?uploadId=…` completes one."""
    query = request.query_params
    if "uploads" in query:
        initiate, _ = await read_json(request, UploadInitiate)
        with state.lock:
            return state.data.initiate(domain_id, initiate)
    upload_id = query.get("uploadId")
    if upload_id is None:
        await drain(request)
        raise bad_request("POST data/multipart needs ?uploads (start) or ?uploadId=… (complete)")
    complete, _ = await read_json(request, UploadComplete)
    with state.lock:
        return state.data.complete_upload(domain_id, upload_id, complete.parts).to_json()


@router.put(DATA + "/multipart", dependencies=[Authorized])
async def upload_part(domain_id: str, request: Request, state: StateDep) -> dict[str, str]:
    """Store part `partNumber` of upload `uploadId`: `{"etag": …}`."""
    upload_id, number = request.query_params.get("uploadId"), request.query_params.get("partNumber")
    if upload_id is None or number is None or not number.isdigit():
        await drain(request)
        raise bad_request("PUT data/multipart needs ?uploadId=…&partNumber=<integer>")
    content = await read_body(request, state.config.effective_part_size(), "part")
    with state.lock:
        return {"etag": state.data.put_part(domain_id, upload_id, int(number), content)}


@router.delete(DATA + "/multipart", dependencies=[Authorized], status_code=204)
async def abort_upload(domain_id: str, state: StateDep, uploadId: str | None = None) -> None:
    """Abort an upload and drop its parts."""
    if uploadId is None:
        raise bad_request("DELETE data/multipart needs ?uploadId=…")
    with state.lock:
        state.data.abort(domain_id, uploadId)


@router.delete(DATA + "/{data_id}", dependencies=[Authorized], status_code=204)
async def delete_data(domain_id: str, data_id: str, state: StateDep) -> None:
    """Delete an item."""
    with state.lock:
        state.data.delete(domain_id, data_id)
