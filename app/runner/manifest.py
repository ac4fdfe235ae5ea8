"""The input manifest's ``dataIDs``, read in a child process: never on the event loop, never
able to take the node down.

The manifest is untrusted domain data of up to ``SPLATTER_MAX_MANIFEST_BYTES`` (16 MiB).
``json.loads`` holds the GIL for the whole document, so a thread does not help: 9 MiB of small
JSON values took 350 ms here, during which neither ``/health`` nor a heartbeat could run; and
200,000 nested brackets crashed a process that parsed them in a worker thread (C stack). So a
short-lived Python child (isolated mode, allow-listed environment: no secret) parses it with
:func:`extract_data_ids` and sends back only the ``dataIDs`` strings, a flat list that is cheap
to read; a crash or a runaway child is a clear JSON error of the job.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import sys
from pathlib import Path
from typing import Any

from app.runner.errors import SplatterJobError
from pipeline.contract import child_environment

__all__ = ["extract_data_ids", "read_data_ids"]


def extract_data_ids(raw: bytes, max_count: int) -> dict[str, Any]:
    """``{"ids": [...]}``: the ``dataIDs`` strings of a JSON manifest, in order (non-strings
    skipped; not an object or no list → none); ``{"error": "count", "count": N}`` over
    ``max_count`` entries; ``{"error": "json"}`` when ``raw`` is no JSON. Self-contained: it
    is also the child's code (it uses only ``json``)."""
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        return {"error": "json"}
    values = document.get("dataIDs") if isinstance(document, dict) else None
    if not isinstance(values, list):
        return {"ids": []}
    if len(values) > max_count:
        return {"error": "count", "count": len(values)}
    return {"ids": [value for value in values if isinstance(value, str)]}


_CHILD = (
    "from __future__ import annotations\nimport json\nimport sys\n"
    + inspect.getsource(extract_data_ids)
    + "with open(sys.argv[1], 'rb') as f:\n"
    + "    sys.stdout.write(json.dumps(extract_data_ids(f.read(), int(sys.argv[2]))))\n"
)


async def read_data_ids(path: Path, max_count: int, cid: str) -> list[str]:
    """The manifest's ``dataIDs`` (duplicates kept; see :func:`extract_data_ids`).

    Raises:
        SplatterJobError: ``parse input cid <cid> as JSON``, or ``manifest lists N dataIDs;
            at most M are accepted (SPLATTER_MAX_DATA_IDS)``.
    """
    result = await _in_child(path, max_count, cid)
    if result.get("error") == "json":
        raise SplatterJobError(f"parse input cid {cid} as JSON")
    if result.get("error") == "count":
        raise SplatterJobError(
            f"manifest lists {result['count']} dataIDs; at most {max_count} are accepted "
            "(SPLATTER_MAX_DATA_IDS)"
        )
    ids: list[str] = result["ids"]
    return ids


async def _in_child(path: Path, max_count: int, cid: str) -> dict[str, Any]:
    child = await asyncio.create_subprocess_exec(
        sys.executable, "-I", "-c", _CHILD, str(path), str(max_count),
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=child_environment(),
    )  # fmt: skip
    out, err = await child.communicate()
    if child.returncode != 0:
        detail = err.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise SplatterJobError(f"parse input cid {cid} as JSON: {detail[0][:200]}")
    parsed: dict[str, Any] = await asyncio.to_thread(json.loads, out)
    return parsed
