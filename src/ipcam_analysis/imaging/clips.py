"""Video clips: recognised by content, decoded with PyAV (FFmpeg in its wheels), sampled one
frame at a time so a long clip is never held whole in memory."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import av
import av.error
from PIL import Image

from ipcam_analysis.imaging.decode import IMAGE_WORK, MAX_PIXELS
from ipcam_analysis.imaging.hxvs import HxvsError, is_hxvs, read_header, video_units

log = logging.getLogger(__name__)

# A damaged stretch of a clip costs a few packets; this many in a row and the rest is given up.
MAX_BAD_PACKETS = 50
_ANNEX_B = (b"\0\0\0\1", b"\0\0\1")
# The first NAL unit of an H.265 stream: VPS, SPS, PPS, access unit delimiter or SEI.
_HEVC_FIRST_UNITS = {32, 33, 34, 35, 39}


@dataclass
class _GroupSkip:
    """Set by the sampler once it has its frame of a group of pictures (a key frame and the
    frames that depend on it): the decoder skips the group's other packets up to the next key
    frame, as decoding every frame is most of a clip's cost."""

    until_next_key: bool = False


class UnreadableClipError(Exception):
    """A clip none of whose frames could be decoded (truncated, damaged, unknown codec)."""


@dataclass(frozen=True)
class ClipFrame:
    """One sampled frame and where it is in the clip."""

    offset_seconds: float
    image: Image.Image


def clip_format(data: bytes) -> str | None:
    """The clip's container as FFmpeg names it (`mp4`, `matroska`, `h264`, `hevc`, `hxvs`,
    `dhav`), or None when the bytes are no clip this service reads."""
    if data[4:8] == b"ftyp":
        return "mp4"  # MP4 and QuickTime MOV: one FFmpeg demuxer reads both
    if data.startswith(b"\x1a\x45\xdf\xa3"):
        return "matroska"
    if is_hxvs(data):
        return "hxvs"
    if data.startswith(b"DHAV"):
        return "dhav"  # Dahua .dav: FFmpeg's dhav demuxer
    for start in _ANNEX_B:
        if data.startswith(start) and len(data) > len(start):
            header = data[len(start)]
            hevc = header & 0x81 == 0 and (header >> 1) & 0x3F in _HEVC_FIRST_UNITS
            return "hevc" if hevc else "h264"
    return None


def clip_duration_seconds(data: bytes, container: str) -> float | None:
    """The clip's length, to spread the samples and to tell the user: what the container says,
    for raw Annex-B (no timestamps) its frames counted, undecoded, at the stream's rate, and for
    the XMeye and Dahua containers the span of their frames' timestamps."""
    if container == "hxvs":
        times = [timestamp for timestamp, _, _ in _hxvs_access_units(data)]
        return _span_seconds(times, Fraction(1, 1000))
    try:
        with av.open(io.BytesIO(data), format=_demuxer(container)) as clip:
            if container not in ("h264", "hevc", "dhav"):
                return clip.duration / av.time_base if clip.duration else None
            if not clip.streams.video:
                return None
            stream = clip.streams.video[0]
            if container == "dhav":
                # FFmpeg's dhav demuxer takes the duration from the dates of the first and last
                # records, whole seconds: a 6 s clip says 5 (and a truncated one anything).
                times = [packet.pts for packet in clip.demux(stream) if packet.size]
                return _span_seconds([time for time in times if time is not None], stream.time_base)
            frames = sum(1 for packet in clip.demux(stream) if packet.size)
            return frames / float(_frame_rate(stream)) if frames else None
    except av.error.FFmpegError as exc:
        raise UnreadableClipError(_describe(container, exc)) from None


def _span_seconds(times: list[int], time_base: Fraction | None) -> float | None:
    """From the first frame's time to the end of the last, which lasts as long as the others;
    counted in the container's units (a Dahua clip's are milliseconds since 1970, too many for
    a float to keep a clip's 6 s from becoming 5.99999995)."""
    if len(times) < 2 or time_base is None:
        return None
    span = times[-1] - times[0]
    return float((span + Fraction(span, len(times) - 1)) * time_base)


def sample_frames(
    data: bytes, container: str, every_seconds: float, max_frames: int
) -> Iterator[ClipFrame]:
    """Key frames and one frame every `every_seconds` (whichever comes first once half the
    interval has passed), at most `max_frames`; raises UnreadableClipError when no frame
    decodes. Frames are decoded one after another and only the sampled ones converted; once a
    group of pictures gave its frame, the rest of the group is not decoded, unless key frames
    are further apart than the interval or not yet seen twice (raw Annex-B, without timestamps, is decoded
    whole: its times are counted in frames)."""
    taken, due, last = 0, 0.0, None
    first_time: float | None = None
    last_key: float | None = None
    long_groups = True  # until two key frames tell how far apart they are
    skip = _GroupSkip()
    for time, key, frame in _decoded(data, container, skip):
        if first_time is None:
            first_time = time
        offset = max(0.0, time - first_time)
        if key:
            if last_key is not None:
                long_groups = offset - last_key > every_seconds * 1.5
            last_key = offset
        if offset < due and not (key and last is not None and offset - last >= every_seconds / 2):
            continue
        if frame.width * frame.height > MAX_PIXELS:
            raise UnreadableClipError(f"clip too large ({frame.width}×{frame.height} pixels)")
        with IMAGE_WORK:
            image = frame.to_image()
        yield ClipFrame(offset, image)
        taken, last, due = taken + 1, offset, offset + every_seconds
        if taken >= max_frames:
            return
        skip.until_next_key = not long_groups and container not in ("h264", "hevc")
    if first_time is None:
        raise UnreadableClipError(f"no frame of the {_NAMES[container]} clip could be decoded")


def _decoded(
    data: bytes, container: str, skip: _GroupSkip
) -> Iterator[tuple[float, bool, av.VideoFrame]]:
    """The decoded frames as (seconds, key frame, frame), in order, but those `skip` passes."""
    if container == "hxvs":
        yield from _decoded_hxvs(data, skip)
        return
    try:
        clip = av.open(io.BytesIO(data), "r", format=_demuxer(container))
    except av.error.FFmpegError as exc:
        raise UnreadableClipError(_describe(container, exc)) from None
    with clip:
        if not clip.streams.video:
            raise UnreadableClipError(f"the {_NAMES[container]} file holds no video")
        stream = clip.streams.video[0]
        index, bad = 0, 0
        packets = clip.demux(stream)
        while True:
            try:
                packet = next(packets)
                if packet.is_keyframe:
                    skip.until_next_key = False
                if skip.until_next_key and packet.size:  # an empty packet flushes: always
                    continue
                frames = packet.decode()
                bad = 0
            except StopIteration:
                return
            except av.error.FFmpegError as exc:
                bad += 1
                if bad > MAX_BAD_PACKETS:
                    log.info("Clip given up after %d damaged packets: %s", bad, exc)
                    return
                continue
            for frame in frames:
                yield _frame_time(frame, index, stream), frame.key_frame, frame
                index += 1


def _decoded_hxvs(data: bytes, skip: _GroupSkip) -> Iterator[tuple[float, bool, av.VideoFrame]]:
    codec = av.CodecContext.create(read_header(data).codec, "r")
    units = _hxvs_access_units(data)
    bad = 0
    for timestamp, key, payload in [*units, (0, False, None)]:
        skip.until_next_key = skip.until_next_key and not key
        if skip.until_next_key and payload is not None:
            continue
        packet = av.Packet(payload) if payload is not None else None
        if packet is not None:
            packet.pts = packet.dts = timestamp
            packet.time_base = Fraction(1, 1000)
        try:
            frames = codec.decode(packet)
            bad = 0
        except av.error.FFmpegError:
            bad += 1
            if bad > MAX_BAD_PACKETS:
                return
            continue
        for frame in frames:
            yield (frame.pts or 0) / 1000, frame.key_frame, frame


def _hxvs_access_units(data: bytes) -> list[tuple[int, bool, bytes]]:
    """The container's NAL units joined per timestamp: one frame's parameter sets and slices
    (the compressed clip, a tenth or less of its decoded size), and whether it is a key frame."""
    units: list[tuple[int, bool, bytes]] = []
    try:
        read_header(data)
        for unit in video_units(data):
            if units and units[-1][0] == unit.timestamp_ms:
                _, key, joined = units[-1]
                units[-1] = (unit.timestamp_ms, key or unit.key, joined + unit.annex_b)
            else:
                units.append((unit.timestamp_ms, unit.key, unit.annex_b))
    except HxvsError as exc:
        raise UnreadableClipError(f"damaged XMeye/HiSilicon clip ({exc})") from None
    return units


def _frame_time(frame: av.VideoFrame, index: int, stream: av.VideoStream) -> float:
    if frame.pts is not None and frame.time_base is not None:
        return float(frame.pts * frame.time_base)
    return index / float(_frame_rate(stream))


def _frame_rate(stream: av.VideoStream) -> Fraction | int:
    # Raw Annex-B has no timestamps: the rate its SPS states (known once decoding has begun),
    # else FFmpeg's guess, else 25 frames a second.
    return stream.codec_context.framerate or stream.guessed_rate or 25


def _demuxer(container: str) -> str | None:
    return None if container == "mp4" else container  # FFmpeg's name is "mov,mp4,..."


# The name a kept clip gets: the dashboard plays an MP4 and offers the others for download.
CLIP_SUFFIXES = {
    "mp4": ".mp4",
    "matroska": ".mkv",
    "h264": ".h264",
    "hevc": ".h265",
    "hxvs": ".264",
    "dhav": ".dav",
}
_NAMES = {
    "mp4": "MP4/MOV",
    "matroska": "MKV",
    "h264": "H.264",
    "hevc": "H.265",
    "hxvs": "XMeye/HiSilicon",
    "dhav": "Dahua DAV",
}


def _describe(container: str, exc: av.error.FFmpegError) -> str:
    why = exc.strerror or type(exc).__name__
    return f"truncated or damaged {_NAMES[container]} clip ({why})"
