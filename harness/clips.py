"""Clips built from real frames, in the containers cameras upload (the tests' and benchmarks')."""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Iterable, Sequence
from fractions import Fraction
from pathlib import Path

import av
from PIL import Image

from ipcam_analysis.imaging.hxvs import RECORD_HEADER

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
# A person walks into an empty street: the street's median background (no people), then frames
# of the same street with people in it.
EMPTY_STREET = DATA / "opencv_vtest_median_background.jpg"
PEOPLE = [DATA / f"opencv_vtest_f{number:04d}.jpg" for number in (0, 150, 300, 750)]
FPS = 5
# kind: (muxer, encoder)
MUXERS = {
    "mp4": ("mp4", "libx264"),
    "mov": ("mov", "libx264"),
    "mkv": ("matroska", "libx264"),
    "h264": ("h264", "libx264"),
    "h265": ("hevc", "libx265"),
}
_START_CODE = re.compile(b"\x00\x00\x00?\x01")
HXFI_TABLE_BYTES = 200_000


def held(
    path: Path, seconds: float, size: tuple[int, int] | None = None, fps: int = FPS
) -> list[Image.Image]:
    """A still picture held for `seconds` (a camera looking at an unchanging scene)."""
    image = Image.open(path).convert("RGB")
    if size is not None:
        image = image.resize(size)
    return [image] * round(seconds * fps)


def person_walks_in(seconds_empty: float = 3, seconds_each: float = 1) -> list[Image.Image]:
    frames = held(EMPTY_STREET, seconds_empty)
    for path in PEOPLE:
        frames += held(path, seconds_each)
    return frames


def encode_clip(
    frames: Sequence[Image.Image],
    kind: str,
    fps: int = FPS,
    preset: str = "veryfast",
    key_every: int = 1,
) -> bytes:
    """`kind`: mp4, mov, mkv, h264 or h265 (raw Annex-B) or hxvs (the XMeye container); H.264
    (H.265 for h265), a key frame every `key_every` seconds (a second, as most cameras do)."""
    if kind == "hxvs":
        return hxvs_clip(frames, fps)
    muxer, encoder = MUXERS[kind]
    buffer = io.BytesIO()
    with av.open(buffer, "w", format=muxer) as output:
        stream = output.add_stream(encoder, rate=fps)
        _configure(stream.codec_context, frames[0].size, fps, preset)
        if encoder == "libx265":  # x265 prints its settings on stderr unless told not to
            stream.codec_context.options = {
                **stream.codec_context.options,
                "x265-params": "log-level=error",
            }
        stream.codec_context.gop_size = fps * key_every
        for packet in _encode(stream.codec_context, frames, fps):
            output.mux(packet)
    return buffer.getvalue()


def hxvs_clip(frames: Sequence[Image.Image], fps: int = FPS) -> bytes:
    """The container as XMeye cameras write it (layout in imaging/hxvs.py): a header, one
    HXVF record per NAL unit, the HXFI index of key frames."""
    codec = av.CodecContext.create("libx264", "w")
    _configure(codec, frames[0].size, fps, "veryfast")
    width, height = frames[0].size
    records, index, at = [struct.pack("<4sII4x", b"HXVS", width, height)], [], 16
    for packet in _encode(codec, frames, fps):
        milliseconds = int(packet.pts * 1000 / fps)
        for unit in _nal_units(bytes(packet)):
            if packet.is_keyframe and (not index or index[-1][1] != milliseconds):
                index.append((at, milliseconds))
            record = RECORD_HEADER.pack(b"HXVF", len(unit), milliseconds, int(packet.is_keyframe))
            records += [record, unit]
            at += len(record) + len(unit)
    table = b"".join(struct.pack("<II", offset, time) for offset, time in index)
    duration = int(len(frames) * 1000 / fps)
    records += [
        RECORD_HEADER.pack(b"HXFI", HXFI_TABLE_BYTES, duration, 0),
        table.ljust(HXFI_TABLE_BYTES, b"\0"),
    ]
    return b"".join(records)


def _configure(codec: av.CodecContext, size: tuple[int, int], fps: int, preset: str) -> None:
    codec.width, codec.height = size
    codec.pix_fmt = "yuv420p"
    codec.time_base = Fraction(1, fps)
    codec.framerate = Fraction(fps)
    codec.gop_size = fps  # a key frame a second, as cameras send
    codec.options = {"preset": preset, "bf": "0"}


def _encode(codec: av.CodecContext, frames: Iterable[Image.Image], fps: int) -> Iterable[av.Packet]:
    for number, image in enumerate(frames):
        frame = av.VideoFrame.from_image(image)
        frame.pts = number
        frame.time_base = Fraction(1, fps)
        yield from codec.encode(frame)
    yield from codec.encode(None)


def _nal_units(annex_b: bytes) -> list[bytes]:
    """Each NAL unit with its start code, as the container keeps one per record."""
    starts = [match.start() for match in _START_CODE.finditer(annex_b)]
    return [
        annex_b[start:end] for start, end in zip(starts, [*starts[1:], len(annex_b)], strict=True)
    ]
