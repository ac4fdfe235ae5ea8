"""Input CIDs (protocol §2.11): which domain items an entry of ``task.inputs_cids`` names.

Accepted forms:

- a bare data id: ``<uuid>`` → ``ids=<uuid>`` in the lease domain;
- a URL or path containing ``…/domains/{d}/data[/{id}][?ids=a,b&name=n&data_type=t]``: the
  domain and query come from the URL; a path id overrides ``ids``; the first ``name`` and
  ``data_type`` win.

With ``strict_ids`` every data id must be a UUID ([NH]: "bad request (400)" otherwise).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from domain_client.errors import BadRequestError, InvalidInputError

__all__ = ["CidTarget", "is_uuid", "parse_cid"]

_DATA_PATH = re.compile(r"(?:^|/)domains/(?P<domain>[^/]+)/data(?:/(?P<id>[^/]+))?/?$")


@dataclass(frozen=True)
class CidTarget:
    """What a CID selects.

    Attributes:
        ids: data ids to list/download (empty when selecting by name/data_type).
        name, data_type: exact-match filters (only without ids).
        domain_id: the domain named by a URL CID (None for a bare id).
        host: ``scheme://host[:port]`` of a URL CID (None for a bare id or a path).
    """

    ids: tuple[str, ...] = ()
    name: str | None = None
    data_type: str | None = None
    domain_id: str | None = None
    host: str | None = None


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def parse_cid(cid: str, *, strict_ids: bool = False) -> CidTarget:
    """Parse one input CID.

    Raises:
        InvalidInputError: the CID is empty or selects nothing.
        BadRequestError: ``strict_ids`` and a data id is not a UUID.
    """
    text = cid.strip()
    if not text:
        raise InvalidInputError("empty input cid")
    parts = urlsplit(text)
    match = _DATA_PATH.search(parts.path)
    target = _from_url(parts.scheme, parts.netloc, parts.query, match) if match else None
    target = target or CidTarget(ids=(text,))
    if strict_ids:
        for data_id in target.ids:
            if not is_uuid(data_id):
                raise BadRequestError(400, detail=f"data id {data_id!r} is not a UUID")
    return target


def _from_url(scheme: str, netloc: str, query: str, match: re.Match[str]) -> CidTarget:
    params = parse_qs(query, keep_blank_values=False)
    path_id = match.group("id")
    if path_id:
        ids: tuple[str, ...] = (unquote(path_id),)
    else:
        ids = tuple(i for value in params.get("ids", []) for i in value.split(",") if i)
    name = params.get("name", [None])[0]
    data_type = params.get("data_type", [None])[0]
    if not ids and name is None and data_type is None:
        raise InvalidInputError("input cid names a data collection but selects no item")
    return CidTarget(
        ids=ids,
        name=None if ids else name,
        data_type=None if ids else data_type,
        domain_id=unquote(match.group("domain")),
        host=f"{scheme}://{netloc}" if scheme and netloc else None,
    )
