"""The ffmpeg pipe: the production video contract, and failures that leave nothing behind."""

from __future__ import annotations

import stat
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from pipeline.mp4 import probe_mp4
from pipeline.preview.camera_path import OrbitConfig
from pipeline.video import EncodeConfig, EncodeError, VideoEncoder
from tests.pipeline.preview.video_checks import ffmpeg_describe, synthetic_frames


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_production_defaults_make_the_reference_video(tmp_path: Path) -> None:
    """Real encode of 150 frames at 1280x720, 30 fps; read back three independent ways."""
    config = OrbitConfig()
    path = tmp_path / "preview.mp4"
    with VideoEncoder(path, config.width, config.height, config.fps, config.frame_count) as video:
        for frame in synthetic_frames(config.frame_count, config.width, config.height):
            video.write(frame)
            # Frames go straight down the pipe: only the encoder's own output is on disk.
            assert set(_names(tmp_path)) <= {".preview.mp4.partial"}
        assert video.finish() == path
    assert _names(tmp_path) == ["preview.mp4"]

    boxes = probe_mp4(path)
    assert boxes.codec == "avc1" and boxes.chroma_format == 1 and boxes.bit_depth == 8
    assert (boxes.width, boxes.height) == (1280, 720)
    assert boxes.sample_count == 150 and boxes.fps == pytest.approx(30.0)
    assert boxes.duration_s == pytest.approx(5.0)
    assert boxes.moov_before_mdat

    described = ffmpeg_describe(path)
    assert (described.codec, described.pix_fmt) == ("h264", "yuv420p")
    assert (described.width, described.height, described.fps) == (1280, 720, 30.0)
    assert described.duration_s == pytest.approx(5.0)
    assert imageio_ffmpeg.count_frames_and_secs(str(path)) == (150, 5.0)


def test_command_is_the_reference_encode() -> None:
    command = VideoEncoder(Path("out/preview.mp4"), 1280, 720, 30.0, 150).command("ffmpeg")
    text = " ".join(command)
    for part in ("-c:v libx264", "-pix_fmt yuv420p", "-crf 23", "-movflags +faststart", "-an",
                 "-frames:v 150", "-framerate 30", "-s 1280x720", "-i pipe:0"):  # fmt: skip
        assert part in text
    assert command[-1].endswith(".preview.mp4.partial")


def _fake_ffmpeg(tmp_path: Path, script: str) -> str:
    path = tmp_path / "fake-ffmpeg"
    path.write_text("#!/bin/sh\n" + script + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def _encode_small(path: Path, config: EncodeConfig, frames: int = 10, total: int = 10) -> None:
    with VideoEncoder(path, 32, 18, 30.0, total, config) as video:
        for frame in synthetic_frames(frames, 32, 18):
            video.write(frame)
        video.finish()


def test_missing_ffmpeg(tmp_path: Path) -> None:
    with pytest.raises(EncodeError, match=r"ffmpeg not found at .*nowhere"):
        _encode_small(tmp_path / "preview.mp4", EncodeConfig(ffmpeg=str(tmp_path / "nowhere")))
    assert _names(tmp_path) == []


def test_ffmpeg_that_fails_at_once(tmp_path: Path) -> None:
    out = tmp_path / "out"
    fake = _fake_ffmpeg(tmp_path, 'echo "Unknown encoder: boom" >&2; exit 1')
    with pytest.raises(EncodeError, match="Unknown encoder: boom"):
        _encode_small(out / "preview.mp4", EncodeConfig(ffmpeg=fake))
    assert _names(out) == []


def test_ffmpeg_that_exits_cleanly_without_a_video(tmp_path: Path) -> None:
    out = tmp_path / "out"
    fake = _fake_ffmpeg(tmp_path, "cat > /dev/null; exit 0")
    with pytest.raises(EncodeError, match="wrote no video"):
        _encode_small(out / "preview.mp4", EncodeConfig(ffmpeg=fake))
    assert _names(out) == []


def test_real_ffmpeg_rejecting_its_options(tmp_path: Path) -> None:
    with pytest.raises(EncodeError, match=r"ffmpeg exited with code .*Encoder not found"):
        _encode_small(tmp_path / "preview.mp4", EncodeConfig(codec="libnope"))
    assert _names(tmp_path) == []


def test_incomplete_frame_sequence_publishes_nothing(tmp_path: Path) -> None:
    with pytest.raises(EncodeError, match="incomplete frame sequence: 9 of 10 frames"):
        _encode_small(tmp_path / "preview.mp4", EncodeConfig(), frames=9, total=10)
    assert _names(tmp_path) == []


def test_interrupted_encode_kills_ffmpeg_and_cleans_up(tmp_path: Path) -> None:
    class StopEncodingError(Exception):
        pass

    with (
        pytest.raises(StopEncodingError),
        VideoEncoder(tmp_path / "preview.mp4", 32, 18, 30, 10) as video,
    ):
        video.write(next(synthetic_frames(1, 32, 18)))
        process = video._process
        raise StopEncodingError
    assert process is not None and process.poll() is not None
    assert _names(tmp_path) == []


def test_frames_are_checked(tmp_path: Path) -> None:
    with VideoEncoder(tmp_path / "preview.mp4", 32, 18, 30, 1) as video:
        with pytest.raises(
            ValueError, match=r"frame 0 is \(18, 32, 3\) float32, expected \(18, 32, 3\) uint8"
        ):
            video.write(np.zeros((18, 32, 3), np.float32))
        with pytest.raises(ValueError, match=r"frame 0 is \(32, 18, 3\) uint8, expected"):
            video.write(np.zeros((32, 18, 3), np.uint8))
        video.write(np.zeros((18, 32, 3), np.uint8))
        with pytest.raises(EncodeError, match="more than the 1 frames"):
            video.write(np.zeros((18, 32, 3), np.uint8))
        video.finish()
    assert probe_mp4(tmp_path / "preview.mp4").sample_count == 1


def test_stale_partial_file_is_replaced(tmp_path: Path) -> None:
    (tmp_path / ".preview.mp4.partial").write_bytes(b"stale")
    _encode_small(tmp_path / "preview.mp4", EncodeConfig())
    assert _names(tmp_path) == ["preview.mp4"]
