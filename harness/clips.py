"""Clips built from real frames, in the containers cameras upload (the tests' and benchmarks')."""

from __future__ import annotations

import io
import re
import struct
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from fractions import Fraction
from pathlib import Path

import av
from av.video.codeccontext import VideoCodecContext
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
# Dahua .dav, as FFmpeg's demuxer reads it (github.com/FFmpeg/FFmpeg, libavformat/dhav.c,
# read_chunk, parse_ext, get_timeinfo, get_pts, dhav_read_packet): each frame is one record of
# a 24-byte header, extension fields, the frame's bytes and an 8-byte trailer. The header, all
# integers little-endian: `DHAV`; the record type (0xFD a video key frame, 0xFC another video
# frame, 0xF0 audio, 0xF1 private data, skipped); subtype; channel; frame sub-number; the frame
# number (u32); the record's length, header to trailer (u32); the capture date, second-exact
# (u32, below); a millisecond clock (u16, wrapping; the demuxer counts a frame's time from it
# within a second and from the date across seconds); the extension's length (u8); a checksum
# (u8, which FFmpeg skips; a public forensic parser of Dahua disks checked it as the sum of
# header bytes 0-22 on real recordings).
DHAV_HEADER = struct.Struct("<4sBBBBIIIHBB")
DHAV_TRAILER = struct.Struct("<4sI")  # `dhav`, the record's length again (read backwards)
DHAV_KEY_FRAME, DHAV_FRAME = 0xFD, 0xFC
# Extension fields, 4 bytes each here: 0x80 (a byte FFmpeg skips, width / 8, height / 8) and
# 0x81 (a skipped byte, the video codec: 2, 4 or 8 H.264, 0xC H.265; frames a second). The
# demuxer takes the stream's codec, size and rate from the first key frame's.
DHAV_SIZE, DHAV_CODEC, DHAV_H264 = 0x80, 0x81, 0x02
# When the clip starts, on the camera's clock.
DAV_START = datetime(2026, 12, 6, 10, 0, 0)


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
    """`kind`: mp4, mov, mkv, h264 or h265 (raw Annex-B), hxvs (the XMeye container) or dav
    (Dahua's); H.264 (H.265 for h265), a key frame every `key_every` seconds (a second, as most
    cameras do)."""
    if kind == "hxvs":
        return hxvs_clip(frames, fps)
    if kind == "dav":
        return dav_clip(frames, fps)
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
    records = [struct.pack("<4sII4x", b"HXVS", width, height)]
    index: list[tuple[int, int]] = []
    at = 16
    for number, packet in enumerate(_encode(codec, frames, fps)):
        milliseconds = number * 1000 // fps  # a packet a frame, in order (no B-frames)
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


def dav_clip(frames: Sequence[Image.Image], fps: int = FPS) -> bytes:
    """The `.dav` file a Dahua camera uploads (layout above): one DHAV record per frame, the
    key frames' records carrying the size, codec and rate."""
    codec = av.CodecContext.create("libx264", "w")
    _configure(codec, frames[0].size, fps, "veryfast")
    width, height = frames[0].size
    records = []
    for number, packet in enumerate(_encode(codec, frames, fps)):
        milliseconds = number * 1000 // fps  # a packet a frame, in order (no B-frames)
        taken = DAV_START + timedelta(milliseconds=milliseconds)
        extension = b""
        if packet.is_keyframe:
            extension = bytes(
                [DHAV_SIZE, 0, width // 8, height // 8, DHAV_CODEC, 0, DHAV_H264, fps]
            )
        length = DHAV_HEADER.size + len(extension) + packet.size + DHAV_TRAILER.size
        header = DHAV_HEADER.pack(
            b"DHAV",
            DHAV_KEY_FRAME if packet.is_keyframe else DHAV_FRAME,
            0,  # subtype
            0,  # channel: the camera's first
            0,  # frame sub-number
            number,
            length,
            _dhav_date(taken),
            milliseconds & 0xFFFF,
            len(extension),
            0,
        )
        header = header[:-1] + bytes([sum(header[:-1]) & 0xFF])
        records += [header, extension, bytes(packet), DHAV_TRAILER.pack(b"dhav", length)]
    return b"".join(records)


def _dhav_date(taken: datetime) -> int:
    """The DHAV date: seconds, minutes, hours, day, month and years since 2000 in 6, 6, 5, 5, 4
    and 6 bits from the lowest (FFmpeg's get_timeinfo)."""
    return (
        taken.second
        | taken.minute << 6
        | taken.hour << 12
        | taken.day << 17
        | taken.month << 22
        | (taken.year - 2000) << 26
    )


def _configure(codec: VideoCodecContext, size: tuple[int, int], fps: int, preset: str) -> None:
    codec.width, codec.height = size
    codec.pix_fmt = "yuv420p"
    codec.time_base = Fraction(1, fps)
    codec.framerate = Fraction(fps)
    codec.gop_size = fps  # a key frame a second, as cameras send
    codec.options = {"preset": preset, "bf": "0"}


def _encode(
    codec: VideoCodecContext, frames: Iterable[Image.Image], fps: int
) -> Iterable[av.Packet]:
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
