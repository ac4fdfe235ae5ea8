"""atomic_path: a file appears complete or not at all."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.atomic import atomic_path, partial_path


def test_publishes_on_success(tmp_path: Path) -> None:
    final = tmp_path / "sub" / "out.bin"
    with atomic_path(final) as temp:
        assert temp == partial_path(final) and temp.parent == final.parent
        temp.write_bytes(b"new")
        assert not final.exists()
    assert final.read_bytes() == b"new"
    assert sorted(p.name for p in final.parent.iterdir()) == ["out.bin"]


def test_failure_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path) -> None:
    final = tmp_path / "out.bin"
    final.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt), atomic_path(final) as temp:
        temp.write_bytes(b"half")
        raise KeyboardInterrupt
    assert final.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.bin"]
