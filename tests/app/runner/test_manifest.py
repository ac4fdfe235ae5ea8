"""The manifest's dataIDs, parsed in a child: the same answer as a plain reference on random
documents (padded or not), errors named, hostile nesting contained."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from app.runner import SplatterJobError
from app.runner.manifest import read_data_ids

pytestmark = pytest.mark.anyio


def reference(document: Any) -> list[str]:
    if not isinstance(document, dict) or not isinstance(document.get("dataIDs"), list):
        return []
    return [v for v in document["dataIDs"] if isinstance(v, str)]


def random_document(rng: random.Random) -> Any:
    pool: list[Any] = ["a", "refined_scan_x", 3, None, {"k": 1}, ["n"], "é/../☃", ""]
    ids = [rng.choice(pool) for _ in range(rng.randint(0, 40))]
    return rng.choice([{"dataIDs": ids, "other": 1}, {"dataIDs": "text"}, ids, "s", {"x": ids}])


def padded(document: Any) -> bytes:
    """The document padded to over 1 MiB with whitespace (the same JSON value)."""
    return json.dumps(document).encode() + b" " * (1024 * 1024 + 1)


@pytest.mark.parametrize("seed", range(6))
async def test_both_paths_agree_with_the_reference(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    for i in range(5):
        document = random_document(rng)
        small, large = tmp_path / f"s{i}.json", tmp_path / f"l{i}.json"
        small.write_bytes(json.dumps(document).encode())
        large.write_bytes(padded(document))
        expected = reference(document)
        assert await read_data_ids(small, 100, "cid") == expected
        assert await read_data_ids(large, 100, "cid") == expected


@pytest.mark.parametrize("size", ["small", "large"])
async def test_errors_name_the_cid_and_the_limit(tmp_path: Path, size: str) -> None:
    pad = b" " * (1024 * 1024 + 1) if size == "large" else b""
    broken, many = tmp_path / "broken", tmp_path / "many"
    broken.write_bytes(b'{"dataIDs": [' + pad)
    many.write_bytes(json.dumps({"dataIDs": ["x"] * 11}).encode() + pad)
    with pytest.raises(SplatterJobError, match=r"^parse input cid c1 as JSON$"):
        await read_data_ids(broken, 10, "c1")
    with pytest.raises(SplatterJobError) as failure:
        await read_data_ids(many, 10, "c2")
    assert str(failure.value) == (
        "manifest lists 11 dataIDs; at most 10 are accepted (SPLATTER_MAX_DATA_IDS)"
    )


async def test_deep_nesting_is_a_json_error_not_a_crash_of_the_node(tmp_path: Path) -> None:
    deep = tmp_path / "deep"
    deep.write_bytes(b"[" * 200_000 + b"]" * 200_000)
    with pytest.raises(SplatterJobError, match="as JSON"):
        await read_data_ids(deep, 10, "c3")
