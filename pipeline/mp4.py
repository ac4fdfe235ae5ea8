"""Reading back an MP4's structure from its boxes (ISO/IEC 14496-12), without ffprobe.

Enough to check what the preview promises: top-level box order (``moov`` before ``mdat`` is
what ``+faststart`` buys), the video track's sample entry (``avc1``), its size, chroma format
and bit depth (from ``avcC``), timescale, duration and per-sample durations (``stts``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

__all__ = ["Mp4Info", "probe_mp4"]

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl"}
_HIGH_PROFILES = {100, 110, 122, 144}  # avcC carries chroma format / bit depth for these


@dataclass(frozen=True)
class Mp4Info:
    """What :func:`probe_mp4` found.

    Attributes:
        top_level: top-level box types in file order (e.g. ``["ftyp", "moov", "mdat"]``).
        codec: sample-entry type of the first video track (``"avc1"`` for H.264).
        width: coded width from the sample entry, pixels.
        height: coded height, pixels.
        timescale: media timescale of the video track, ticks per second.
        duration: media duration in ``timescale`` ticks.
        sample_deltas: ``stts`` runs as ``(sample_count, ticks_per_sample)``.
        profile: H.264 profile_idc from ``avcC`` (100 = High), or ``None``.
        chroma_format: 1 = 4:2:0, 2 = 4:2:2, 3 = 4:4:4 (``avcC``; implied 1 below High).
        bit_depth: luma bit depth (8 unless ``avcC`` says otherwise).
    """

    top_level: list[str]
    codec: str
    width: int
    height: int
    timescale: int
    duration: int
    sample_deltas: list[tuple[int, int]]
    profile: int | None
    chroma_format: int
    bit_depth: int

    @property
    def sample_count(self) -> int:
        """Number of video frames."""
        return sum(count for count, _ in self.sample_deltas)

    @property
    def duration_s(self) -> float:
        """Media duration of the video track, seconds."""
        return self.duration / self.timescale

    @property
    def fps(self) -> float | None:
        """Frame rate if every frame lasts the same, else ``None``."""
        deltas = {delta for _, delta in self.sample_deltas}
        return self.timescale / deltas.pop() if len(deltas) == 1 else None

    @property
    def moov_before_mdat(self) -> bool:
        """Exactly one ``moov`` and one ``mdat``, ``moov`` first (playable while streaming)."""
        boxes = self.top_level
        return (
            boxes.count("moov") == 1
            and boxes.count("mdat") == 1
            and boxes.index("moov") < boxes.index("mdat")
        )


def probe_mp4(path: Path) -> Mp4Info:
    """Parse ``path``'s boxes; raises ``ValueError`` if it is not an MP4 with a video track."""
    with path.open("rb") as f:
        top_level, moov = _scan_top_level(f, path.stat().st_size)
    if moov is None:
        raise ValueError(f"{path.name}: no moov box")
    for trak in _children(moov, b"trak"):
        info = _video_track(trak, top_level)
        if info is not None:
            return info
    raise ValueError(f"{path.name}: no video track")


def _scan_top_level(f: BinaryIO, file_size: int) -> tuple[list[str], bytes | None]:
    top_level: list[str] = []
    moov = None
    offset = 0
    while offset < file_size:
        f.seek(offset)
        box_type, header, size = _read_header(f.read(16), file_size - offset)
        top_level.append(box_type.decode("latin-1"))
        if box_type == b"moov":
            f.seek(offset + header)
            moov = f.read(size - header)
        offset += size
    return top_level, moov


def _read_header(raw: bytes, remaining: int) -> tuple[bytes, int, int]:
    """``(type, header_length, box_size)`` from the first bytes of a box."""
    if len(raw) < 8:
        raise ValueError("truncated box header")
    size, box_type = struct.unpack(">I4s", raw[:8])
    header = 8
    if size == 1:
        if len(raw) < 16:
            raise ValueError("truncated 64-bit box header")
        (size,) = struct.unpack(">Q", raw[8:16])
        header = 16
    elif size == 0:
        size = remaining
    if size < header or size > remaining:
        raise ValueError(f"box {box_type!r} has impossible size {size}")
    return box_type, header, size


def _boxes(data: bytes) -> list[tuple[bytes, bytes]]:
    """Direct child boxes of ``data`` as ``(type, payload)``."""
    out = []
    offset = 0
    while offset < len(data):
        box_type, header, size = _read_header(data[offset : offset + 16], len(data) - offset)
        out.append((box_type, data[offset + header : offset + size]))
        offset += size
    return out


def _children(data: bytes, wanted: bytes) -> list[bytes]:
    return [payload for box_type, payload in _boxes(data) if box_type == wanted]


def _find(data: bytes, path: list[bytes]) -> bytes | None:
    """Payload of the first box along ``path`` (container types only in between)."""
    for box_type, payload in _boxes(data):
        if box_type == path[0]:
            if len(path) == 1:
                return payload
            if box_type in _CONTAINERS:
                found = _find(payload, path[1:])
                if found is not None:
                    return found
    return None


def _video_track(trak: bytes, top_level: list[str]) -> Mp4Info | None:
    hdlr = _find(trak, [b"mdia", b"hdlr"])
    if hdlr is None or hdlr[8:12] != b"vide":
        return None
    mdhd, stsd, stts = (
        _find(trak, [b"mdia", b"mdhd"]),
        _find(trak, [b"mdia", b"minf", b"stbl", b"stsd"]),
        _find(trak, [b"mdia", b"minf", b"stbl", b"stts"]),
    )
    if mdhd is None or stsd is None or stts is None:
        raise ValueError("video track lacks mdhd, stsd or stts")
    timescale, duration = _parse_mdhd(mdhd)
    codec, width, height, avcc = _parse_stsd(stsd)
    profile, chroma, depth = _parse_avcc(avcc)
    return Mp4Info(
        top_level=top_level, codec=codec, width=width, height=height, timescale=timescale,
        duration=duration, sample_deltas=_parse_stts(stts), profile=profile,
        chroma_format=chroma, bit_depth=depth,
    )  # fmt: skip


def _parse_mdhd(payload: bytes) -> tuple[int, int]:
    if payload[0] == 1:
        timescale, duration = struct.unpack(">IQ", payload[20:32])
    else:
        timescale, duration = struct.unpack(">II", payload[12:20])
    return int(timescale), int(duration)


def _parse_stsd(payload: bytes) -> tuple[str, int, int, bytes | None]:
    """First sample entry: ``(type, width, height, avcC payload or None)``."""
    entries = _boxes(payload[8:])  # skip version/flags and entry_count
    if not entries:
        raise ValueError("stsd has no sample entry")
    entry_type, entry = entries[0]
    # VisualSampleEntry: 6 reserved, data_reference_index, 16 bytes pre_defined/reserved,
    # width, height, resolutions, frame count, compressor name, depth: 78 bytes of payload.
    width, height = struct.unpack(">HH", entry[24:28])
    avcc = next((p for t, p in _boxes(entry[78:]) if t == b"avcC"), None)
    return entry_type.decode("latin-1"), int(width), int(height), avcc


def _parse_avcc(avcc: bytes | None) -> tuple[int | None, int, int]:
    """``(profile_idc, chroma_format_idc, luma bit depth)`` from an avcC record."""
    if avcc is None or len(avcc) < 7:
        return None, 1, 8
    profile = avcc[1]
    offset = 6
    for _ in range(avcc[5] & 0x1F):  # sequence parameter sets
        offset += 2 + struct.unpack(">H", avcc[offset : offset + 2])[0]
    n_pps = avcc[offset]
    offset += 1
    for _ in range(n_pps):
        offset += 2 + struct.unpack(">H", avcc[offset : offset + 2])[0]
    if profile in _HIGH_PROFILES and len(avcc) >= offset + 3:
        return profile, avcc[offset] & 0x03, 8 + (avcc[offset + 1] & 0x07)
    return profile, 1, 8


def _parse_stts(payload: bytes) -> list[tuple[int, int]]:
    (count,) = struct.unpack(">I", payload[4:8])
    runs = struct.unpack(f">{2 * count}I", payload[8 : 8 + 8 * count])
    return [(int(runs[2 * i]), int(runs[2 * i + 1])) for i in range(count)]
