"""The HiSilicon/XMeye `.h264`/`.264` container, taken apart into its video's NAL units.

Layout, all integers little-endian (as read by FFmpeg's `libavformat/hxvs.c` (FFmpeg 8.1),
VLC's `modules/demux/hx.c` and github.com/francescovannini/ipcam26Xconvert):

- a 16-byte file header: `HXVS` (H.264) or `HXVT` (H.265), width, height, 4 bytes of padding;
- records, each a 16-byte header (tag, payload bytes, timestamp in ms, flags) and its payload:
  `HXVF` video, one NAL unit with its Annex-B start code (flags 1 on a key frame's units);
  `HXAF` audio (G.711 A-law behind a 4-byte fake start code), skipped here;
- `HXFI`, the index of key frames at the end (16-byte header and a 200 000-byte table), where
  reading stops.

FFmpeg reads this format itself from 8.1, but the PyAV wheels of older Pythons bundle older
FFmpeg: stripping the records to Annex-B works with every decoder.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

HEADER_SIZE = 16
RECORD_HEADER = struct.Struct("<4sIII")  # tag, payload bytes, timestamp (ms), flags
# As FFmpeg names its decoders.
HxvsCodec = Literal["h264", "hevc"]
CODECS: dict[bytes, HxvsCodec] = {b"HXVS": "h264", b"HXVT": "hevc"}


class HxvsError(Exception):
    """The file starts like the container but its records do not follow its layout."""


@dataclass(frozen=True)
class HxvsHeader:
    codec: HxvsCodec
    width: int
    height: int


@dataclass(frozen=True)
class HxvsUnit:
    """One video record: a NAL unit in Annex-B form and when it was captured."""

    timestamp_ms: int
    key: bool
    annex_b: bytes


def is_hxvs(data: bytes) -> bool:
    return data[:4] in CODECS


def read_header(data: bytes) -> HxvsHeader:
    if len(data) < HEADER_SIZE or not is_hxvs(data):
        raise HxvsError("no HXVS/HXVT header")
    width, height = struct.unpack_from("<II", data, 4)
    return HxvsHeader(CODECS[data[:4]], width, height)


def video_units(data: bytes) -> Iterator[HxvsUnit]:
    """The video records in file order, up to the index or the end of a truncated file.

    A record cut short by the end of the file ends the clip (a camera that lost power mid-write
    leaves such a file); a record whose tag is unknown is a damaged file."""
    at = HEADER_SIZE
    while at + RECORD_HEADER.size <= len(data):
        tag, size, timestamp, flags = RECORD_HEADER.unpack_from(data, at)
        if tag == b"HXFI":
            return
        if tag not in (b"HXVF", b"HXAF"):
            raise HxvsError(f"unknown record {tag!r} at byte {at}")
        start = at + RECORD_HEADER.size
        at = start + size
        if at > len(data):
            return
        if tag == b"HXVF":
            yield HxvsUnit(timestamp, flags == 1, data[start:at])
