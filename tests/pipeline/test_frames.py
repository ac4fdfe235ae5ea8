"""Frame extraction: exactly the model's frames, resume, and every failure named."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from pipeline.contract import Event, JobLayout, event_dict, frame_name
from pipeline.errors import MissingFramesError, UnsafeImageNameError, VideoError
from pipeline.frames import FramesConfig, check_image_name, extract_frames, parse_frame_name
from tests.pipeline.video_factories import decode_all, write_counting_video

SCAN_A, SCAN_B = "2024-01-02_03-04-05", "2024-01-02_09-10-11"


@pytest.fixture
def job(tmp_path: Path) -> JobLayout:
    layout = JobLayout(tmp_path)
    write_counting_video(layout.recording(SCAN_A), 30)
    write_counting_video(layout.recording(SCAN_B), 20, size=(48, 32))
    return layout


def names(scan: str, *indices: int) -> list[str]:
    return [frame_name(scan, i) for i in indices]


def reference_jpeg(frame: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(frame).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


def test_parse_frame_name() -> None:
    assert parse_frame_name("2024-01-02_03-04-05_000012.jpg") == ("2024-01-02_03-04-05", 12)
    assert parse_frame_name("scan_1234567.jpg") == ("scan", 1234567)
    for bad in ("scan_12.jpg", "scan_000012.png", "000012.jpg", "scan_0000012.jpg"):
        assert parse_frame_name(bad) is None


def test_extracts_exactly_the_named_frames(job: JobLayout) -> None:
    wanted = names(SCAN_A, 0, 3, 17, 29) + names(SCAN_B, 19, 1, 2)
    result = extract_frames(job.root, image_names=wanted)
    assert result.written == {SCAN_A: 4, SCAN_B: 3} and result.existing == 0
    assert sorted(p.name for p in job.frames_dir.iterdir()) == sorted(wanted)
    for scan in (SCAN_A, SCAN_B):
        reference = decode_all(job.recording(scan))
        for name in wanted:
            parsed = parse_frame_name(name)
            assert parsed is not None
            if parsed[0] == scan:
                data = (job.frames_dir / name).read_bytes()
                assert data == reference_jpeg(reference[parsed[1]]), name


def test_rerun_keeps_existing_frames_and_fills_gaps(job: JobLayout) -> None:
    wanted = names(SCAN_A, 1, 2, 3)
    extract_frames(job.root, image_names=wanted)
    (job.frames_dir / wanted[1]).unlink()
    marker = job.frames_dir / wanted[0]
    marker.write_bytes(b"kept")  # an existing file is never rewritten
    result = extract_frames(job.root, image_names=wanted)
    assert result.written == {SCAN_A: 1} and result.existing == 2
    assert marker.read_bytes() == b"kept" and (job.frames_dir / wanted[1]).stat().st_size > 100


def test_all_frames_present_needs_no_video(job: JobLayout) -> None:
    wanted = names(SCAN_A, 4)
    extract_frames(job.root, image_names=wanted)
    job.recording(SCAN_A).unlink()
    assert extract_frames(job.root, image_names=wanted).existing == 1


def test_frames_missing_from_a_video_are_listed(job: JobLayout) -> None:
    wanted = names(SCAN_B, 5, 20, 21, 35)
    with pytest.raises(MissingFramesError) as info:
        extract_frames(job.root, image_names=wanted)
    assert str(info.value) == (
        f"{job.recording(SCAN_B)} holds 20 frames (0..19), but the model needs 3 frames it lacks: "
        f"{SCAN_B}_000020.jpg, {SCAN_B}_000021.jpg, {SCAN_B}_000035.jpg"
    )
    assert info.value.missing == names(SCAN_B, 20, 21, 35)
    assert (job.frames_dir / wanted[0]).is_file()  # what exists is kept for the rerun


def test_long_lists_are_shortened(job: JobLayout) -> None:
    with pytest.raises(MissingFramesError, match=r"needs 30 frames it lacks: .*… and 22 more$"):
        extract_frames(job.root, image_names=names(SCAN_B, *range(20, 50)))


def test_recording_absent_from_datasets(job: JobLayout) -> None:
    with pytest.raises(MissingFramesError) as info:
        extract_frames(job.root, image_names=names("2030-01-01_00-00-00", 1, 2) + names(SCAN_A, 0))
    assert str(info.value) == (
        f"the model uses frames of recordings that are not in {job.datasets_dir}: "
        "2030-01-01_00-00-00 (2 frames); expected datasets/<scan>/Frames.mp4 for each"
    )


def test_names_that_name_no_recording(job: JobLayout) -> None:
    pattern = (
        r"1 model images are neither in .*Frames nor named <scan>_<index:06d>\.jpg "
        r"after a recording: IMG_0001\.png"
    )
    with pytest.raises(MissingFramesError, match=pattern):
        extract_frames(job.root, image_names=["IMG_0001.png", *names(SCAN_A, 0)])


def _truncate(video: Path, fraction: float) -> int:
    video.write_bytes(video.read_bytes()[: int(video.stat().st_size * fraction)])
    return len(decode_all(video))


def test_truncated_video_lacking_needed_frames_is_named(job: JobLayout) -> None:
    decodable = _truncate(job.recording(SCAN_A), 0.6)
    assert 0 < decodable < 30
    with pytest.raises(VideoError) as info:
        extract_frames(job.root, image_names=names(SCAN_A, 0, 29))
    message = str(info.value)
    assert message.startswith(f"cannot decode video {job.recording(SCAN_A)}: damaged or truncated")
    assert message.endswith(f"{decodable} frames decoded, and the model needs 1 frames past them")


def test_truncated_video_is_tolerated_or_not_as_configured(job: JobLayout) -> None:
    decodable = _truncate(job.recording(SCAN_A), 0.6)
    wanted = names(SCAN_A, 0, decodable - 3)
    assert extract_frames(job.root, image_names=wanted).written == {SCAN_A: 2}
    for name in wanted:
        (job.frames_dir / name).unlink()
    with pytest.raises(
        VideoError, match=rf"damaged or truncated stream \(.*\): {decodable} frames"
    ):
        extract_frames(job.root, FramesConfig(decode_errors="fail"), image_names=wanted)


def test_file_that_is_not_a_video(job: JobLayout) -> None:
    job.recording(SCAN_B).write_bytes(b"\x00\x01 definitely not an mp4" * 100)
    with pytest.raises(
        VideoError, match=f"cannot decode video {job.recording(SCAN_B)}: not a readable"
    ):
        extract_frames(job.root, image_names=names(SCAN_B, 0))


def test_reads_the_names_from_the_model_and_reports_progress(job: JobLayout) -> None:
    from pipeline.colmap import ColmapCamera, ColmapImage, ColmapModel, Points3D, write_model

    wanted = names(SCAN_A, 8, 9) + names(SCAN_B, 7)
    images = {
        i + 1: ColmapImage(i + 1, np.array([1.0, 0, 0, 0]), np.zeros(3), 1, name)
        for i, name in enumerate(wanted)
    }
    camera = ColmapCamera(1, "PINHOLE", 64, 48, (50.0, 50.0, 32.0, 24.0))
    write_model(ColmapModel({1: camera}, images, Points3D.empty()), job.model_dir)
    events: list[dict[str, Any]] = []

    class Sink:
        def emit(self, event: Event) -> None:
            events.append(event_dict(event))

        def progress(self, stage: str, pct: float, **fields: Any) -> None:
            events.append({"stage": stage, "pct": pct, **fields})

    result = extract_frames(job.root, progress=Sink())
    assert result.total_written == 3
    assert sorted(p.name for p in job.frames_dir.iterdir()) == sorted(wanted)
    assert [e["frames"] for e in events] == [1, 2, 3] and events[-1]["pct"] == 100.0
    assert {e["stage"] for e in events} == {"frames"} and events[-1]["total"] == 3


@pytest.mark.parametrize(
    "name",
    ["/etc/passwd", "../x_000001.jpg", "a/../../x.jpg", "a//b.jpg", "./x.jpg", "", "a\\..\\b.jpg",
     "x\n.jpg", "Frames/../../../outside.jpg", "a/"],
)  # fmt: skip
def test_image_names_that_leave_frames_are_refused_naming_the_image(
    job: JobLayout, name: str
) -> None:
    (job.root.parent / "outside.jpg").write_bytes(b"not a frame")
    with pytest.raises(UnsafeImageNameError, match="is not a relative path inside Frames/") as err:
        extract_frames(job.root, image_names=[*names(SCAN_A, 0), name])
    assert repr(name) in str(err.value)
    assert not job.frames_dir.exists()  # refused before anything was written


def test_image_names_in_sub_folders_stay_allowed() -> None:
    assert check_image_name("cam0/scan_000001.jpg") == "cam0/scan_000001.jpg"
