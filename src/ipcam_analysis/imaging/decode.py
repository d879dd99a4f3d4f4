"""Image validation by content: a fully decoded RGB snapshot, or a clear reason why not."""

from __future__ import annotations

import io
import re
import threading
import warnings

from PIL import Image, ImageOps

from ipcam_analysis.values import Snapshot

# Far beyond any camera (a 12 MP sensor is 4000×3000), small enough to keep memory bounded.
MAX_PIXELS = 40_000_000
ACCEPTED_FORMATS = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG"}
# A file that starts like this but cannot be opened is a damaged image, not a foreign file.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SIGNATURES = {b"\xff\xd8\xff": "JPEG", PNG_SIGNATURE: "PNG"}
# Pixel work (decoding, hashing, drawing, encoding) is done by one thread at a time. It is
# mostly CPU under the interpreter lock, so more at once is hardly faster, while the FTP thread
# waits behind every busy worker for its turn: with 8 workers busy, FTP accepted 25 uploads/s
# instead of 104 (bench/throughput.py, 0 s detector). It also bounds memory: decoding peaks at
# about 9 bytes a pixel (a 36 MP PNG with transparency: 330 MB), never for two pictures at once.
IMAGE_WORK = threading.Lock()
# Pillow walks a file's structure in Python: one step per PNG chunk, per JPEG header segment
# and per byte of junk between those. Millions of tiny chunks or 50 MB of junk take it 3 to 30 s;
# real files take a few dozen steps (a 100 MB PNG in 8 KB chunks: 12 800).
MAX_PARSE_STEPS = 65536
_JPEG_MARKER = re.compile(rb"\xff+([^\xff])", re.DOTALL)
_JPEG_MARKERS_WITHOUT_LENGTH = frozenset({0x01, *range(0xD0, 0xD9)})


class NotAnImageError(Exception):
    """The upload is not a JPEG or PNG (a camera's FTP "Test" file, a video, a text file...)."""


class CorruptImageError(Exception):
    """The upload claims to be a JPEG or PNG but cannot be decoded whole (truncated, damaged)."""


def decode_snapshot(data: bytes, at_least_width: int | None = None) -> Snapshot:
    """Decode every pixel (so truncation is caught) and return an RGB snapshot.

    With `at_least_width`, a JPEG is decoded at the smallest of libjpeg's scales (1/2, 1/4,
    1/8) still that wide: a thumbnail of a 1920×1080 picture took 4.9 ms instead of 10.9."""
    if not data:
        raise NotAnImageError("empty file")
    if parse_steps(data) > MAX_PARSE_STEPS:
        looks_like = "PNG" if data.startswith(PNG_SIGNATURE) else "JPEG"
        raise CorruptImageError(
            f"truncated or corrupt {looks_like} (too many parts where pixels belong)"
        )
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise NotAnImageError(f"image too large (over {Image.MAX_IMAGE_PIXELS} pixels)") from None
    except MemoryError:
        raise
    except Exception as exc:
        # Pillow's readers raise all sorts (OSError, ValueError, struct.error...) on a damaged
        # header, and UnidentifiedImageError on one they give up on.
        claimed = next((kind for sign, kind in SIGNATURES.items() if data.startswith(sign)), None)
        if claimed is None:
            raise NotAnImageError("not a JPEG or PNG image") from None
        raise CorruptImageError(f"truncated or corrupt {claimed} ({exc})") from None
    kind = ACCEPTED_FORMATS.get(image.format or "")
    if kind is None:
        raise NotAnImageError(f"unsupported image format {image.format}")
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise NotAnImageError(f"image too large ({width}×{height} pixels)")
    if at_least_width is not None and kind == "JPEG":
        image.draft("RGB", (at_least_width, 1))
    try:
        with IMAGE_WORK:
            image.load()
            # In place: the opened file's image is ours, and a copy of every pixel costs 1 ms
            # at 1080p.
            ImageOps.exif_transpose(image, in_place=True)
            rgb = image if image.mode == "RGB" else to_rgb(image)
    except MemoryError:
        raise
    except Exception as exc:  # as above: whatever a damaged file makes the decoders raise
        raise CorruptImageError(f"truncated or corrupt {kind} ({exc})") from None
    return Snapshot(data=data, format=kind, image=rgb)


def parse_steps(data: bytes) -> int:
    """The steps Pillow's reader would take through this file's structure, counted (by jumping
    over each part rather than reading it) up to a little past MAX_PARSE_STEPS."""
    if data.startswith(PNG_SIGNATURE):
        return _png_chunks(data)
    if data.startswith(b"\xff\xd8"):
        return _jpeg_header_steps(data)
    return 0


def _png_chunks(data: bytes) -> int:
    chunks, at = 0, len(PNG_SIGNATURE)
    while chunks <= MAX_PARSE_STEPS and at + 8 <= len(data):
        chunks += 1
        if data[at + 4 : at + 8] == b"IEND":
            break
        at += 12 + int.from_bytes(data[at : at + 4], "big")  # length, type, data, CRC
    return chunks


def _jpeg_header_steps(data: bytes) -> int:
    """One step per segment up to the image data, and one per byte in no segment."""
    steps, at = 0, 2  # after the start-of-image marker
    while steps <= MAX_PARSE_STEPS:
        # find() runs at memory speed; a regex search would try every position of a long run.
        start = data.find(b"\xff", at)
        found = _JPEG_MARKER.match(data, start) if start >= 0 else None
        if found is None:
            return steps + len(data) - at
        steps += found.end() - 1 - at  # one for the marker, one per byte skipped to reach it
        at = found.end()
        marker = found.group(1)[0]
        if marker == 0xDA:  # start of scan: the image data follows
            break
        if marker != 0x00 and marker not in _JPEG_MARKERS_WITHOUT_LENGTH:
            at += int.from_bytes(data[at : at + 2], "big")
    return steps


def to_rgb(image: Image.Image) -> Image.Image:
    """A new RGB image from any mode: 16-bit greyscale rescaled, transparency flattened on white."""
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        # A plain conversion clips 16-bit values at 255, which turns most pixels white.
        image = image.convert("I").point(lambda value: value / 256).convert("L")
    if image.has_transparency_data:
        rgba = image if image.mode == "RGBA" else image.convert("RGBA")
        # Pasting through the alpha onto white is compositing over an opaque background, with
        # half the memory of alpha_composite (no RGBA copy of the result).
        flattened = Image.new("RGB", rgba.size, (255, 255, 255))
        flattened.paste(rgba, mask=rgba.getchannel("A"))
        return flattened
    return image.convert("RGB")
