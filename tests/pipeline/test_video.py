"""Video decoding (exact frame selection) and encoding through imageio-ffmpeg's ffmpeg."""

from __future__ import annotations

import subprocess
from pathlib import Path

import imageio_ffmpeg
import numpy as np
import pytest

from pipeline.errors import VideoError
from pipeline.video import DecodeReport, decode_frames, encode_video
from tests.pipeline.video_factories import counting_frame, decode_all, write_counting_video


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_counting_video(tmp_path_factory.mktemp("video") / "Frames.mp4", 30)


def test_decodes_exactly_the_wanted_frames(video: Path) -> None:
    reference = decode_all(video)
    assert len(reference) == 30
    report = DecodeReport()
    got = list(decode_frames(video, [17, 0, 3, 3, 29], report))
    assert [index for index, _ in got] == [0, 3, 17, 29]
    for index, frame in got:
        np.testing.assert_array_equal(frame, reference[index])
    assert report.frames_decoded == 30 and not report.errors


def test_stops_after_the_last_wanted_frame(video: Path) -> None:
    report = DecodeReport()
    assert [i for i, _ in decode_frames(video, [2, 5], report)] == [2, 5]
    assert report.frames_decoded == 6 and not report.reached_end


def test_frames_past_the_end_are_not_yielded(video: Path) -> None:
    report = DecodeReport()
    assert [i for i, _ in decode_frames(video, [28, 30, 31], report)] == [28]
    assert report.frames_decoded == 30 and report.reached_end


def test_to_end_decodes_the_whole_stream(video: Path) -> None:
    report = DecodeReport()
    assert [i for i, _ in decode_frames(video, [1], report, to_end=True)] == [1]
    assert report.frames_decoded == 30 and report.reached_end


def test_encoded_video_keeps_size_count_and_content(tmp_path: Path) -> None:
    frames = [counting_frame(i, 34, 18) for i in range(7)]
    assert encode_video(tmp_path / "v.mp4", frames, (34, 18), fps=5, crf=0) == 7
    decoded = decode_all(tmp_path / "v.mp4")
    assert len(decoded) == 7 and decoded[0].shape == (18, 34, 3)  # no resizing to 16-multiples
    # Lossless x264 still goes through yuv420p: colours survive to within chroma subsampling.
    assert np.abs(decoded[4].astype(int) - frames[4].astype(int)).mean() < 6
    data = (tmp_path / "v.mp4").read_bytes()
    assert data.index(b"moov") < data.index(b"mdat")  # +faststart


def test_encoder_rejects_odd_sizes_and_wrong_frames(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="even frame sizes, got 33x18"):
        encode_video(tmp_path / "a.mp4", [], (33, 18), fps=5)
    with pytest.raises(ValueError, match=r"frame 1 is \(18, 32, 3\) uint8, expected \(18, 34, 3\)"):
        encode_video(
            tmp_path / "b.mp4",
            [counting_frame(0, 34, 18), counting_frame(1, 32, 18)],
            (34, 18),
            fps=5,
        )


def test_missing_file_and_non_video_are_named(tmp_path: Path) -> None:
    with pytest.raises(
        VideoError, match=f"cannot decode video {tmp_path}/nope.mp4: file not found"
    ):
        list(decode_frames(tmp_path / "nope.mp4", [0]))
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"this is not a video" * 50)
    with pytest.raises(VideoError) as info:
        list(decode_frames(junk, [0]))
    assert str(info.value).startswith(f"cannot decode video {junk}: not a readable video: ")


def test_cut_file_without_index_is_unreadable(tmp_path: Path) -> None:
    # Without +faststart the index (moov) is at the end: a cut file cannot be opened at all.
    video = write_counting_video(tmp_path / "Frames.mp4", 20, faststart=False)
    video.write_bytes(video.read_bytes()[: video.stat().st_size // 2])
    with pytest.raises(VideoError, match=r"not a readable video: moov atom not found"):
        list(decode_frames(video, [0, 1]))


def _write_variable_rate_video(path: Path, count: int) -> None:
    """Counting frames with irregular timestamps (gaps of 1, 3 and 7 ticks of 1/30 s), as
    phone recordings have: a constant-rate reading would duplicate frames to fill the gaps."""
    gaps = "if(lt(N,8),N,if(lt(N,16),8+(N-8)*3,32+(N-16)*7))"
    command = [
        imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "64x48", "-framerate", "30", "-i", "pipe:0",
        "-vf", f"setpts='({gaps})/30/TB'", "-fps_mode", "vfr",
        "-c:v", "libx264", "-crf", "0", "-pix_fmt", "yuv420p", str(path),
    ]  # fmt: skip
    frames = b"".join(counting_frame(i).tobytes() for i in range(count))
    subprocess.run(command, input=frames, check=True)


def test_frame_index_is_the_decoded_picture_count_whatever_the_timestamps(
    tmp_path: Path,
) -> None:
    """pipeline-reference.md §1.3 step 1: ``<scan>_<index:06d>.jpg`` is the index-th picture
    OpenCV's ``VideoCapture.read`` returns (0-based, no frame-rate assumption), so a
    variable-rate recording must neither gain duplicated nor lose dropped frames."""
    video = tmp_path / "Frames.mp4"
    _write_variable_rate_video(video, 24)
    report = DecodeReport()
    got = dict(decode_frames(video, range(100), report))
    assert report.frames_decoded == 24 and sorted(got) == list(range(24))
    truth = [counting_frame(i).astype(int) for i in range(24)]
    for index, frame in got.items():
        errors = [np.abs(frame.astype(int) - t).mean() for t in truth]
        assert int(np.argmin(errors)) == index and errors[index] < 6


def test_a_failed_encode_publishes_nothing(tmp_path: Path) -> None:
    frames = [counting_frame(0, 34, 18), counting_frame(1, 32, 18)]
    with pytest.raises(ValueError, match="frame 1 is"):
        encode_video(tmp_path / "v.mp4", frames, (34, 18), fps=5)
    assert list(tmp_path.iterdir()) == []  # neither the video nor its partial file
