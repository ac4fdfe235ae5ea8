"""The MP4 box reader, checked against ffmpeg's own view of real encodes."""

from __future__ import annotations

import struct
import subprocess
from pathlib import Path

import imageio_ffmpeg
import pytest

from pipeline.mp4 import probe_mp4


def _encode(path: Path, faststart: bool, size: str = "64x48", frames: int = 12) -> Path:
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate=24", "-frames:v", str(frames),
        "-c:v", "libx264", "-pix_fmt", "yuv420p",
        *(["-movflags", "+faststart"] if faststart else []), str(path),
    ]  # fmt: skip
    subprocess.run(command, check=True, capture_output=True)
    return path


def test_reads_a_faststart_h264_file(tmp_path: Path) -> None:
    info = probe_mp4(_encode(tmp_path / "a.mp4", faststart=True))
    assert info.codec == "avc1" and (info.width, info.height) == (64, 48)
    assert info.sample_count == 12 and info.fps == pytest.approx(24.0)
    assert info.duration_s == pytest.approx(0.5)
    assert info.chroma_format == 1 and info.bit_depth == 8 and info.profile == 100
    assert info.moov_before_mdat


def test_without_faststart_moov_comes_last(tmp_path: Path) -> None:
    info = probe_mp4(_encode(tmp_path / "b.mp4", faststart=False))
    assert info.top_level.index("mdat") < info.top_level.index("moov")
    assert not info.moov_before_mdat


def test_rejects_non_mp4_and_truncated_files(tmp_path: Path) -> None:
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"\x00\x00\x00\x08free" + b"\x00\x00\x00\x40abcd")
    with pytest.raises(ValueError, match="impossible size"):
        probe_mp4(junk)
    only_ftyp = tmp_path / "ftyp.mp4"
    only_ftyp.write_bytes(struct.pack(">I4s4s", 12, b"ftyp", b"isom"))
    with pytest.raises(ValueError, match="no moov box"):
        probe_mp4(only_ftyp)
    good = _encode(tmp_path / "c.mp4", faststart=True)
    (tmp_path / "cut.mp4").write_bytes(good.read_bytes()[:200])
    with pytest.raises(ValueError):
        probe_mp4(tmp_path / "cut.mp4")
