"""Image validation by content: a fully decoded RGB snapshot, or a clear reason why not."""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

from ipcam_analysis.models import Snapshot

# Far beyond any camera (a 12 MP sensor is 4000×3000), small enough to keep memory bounded.
MAX_PIXELS = 40_000_000
ACCEPTED_FORMATS = {"JPEG": "JPEG", "MPO": "JPEG", "PNG": "PNG"}


class NotAnImageError(Exception):
    """The upload is not a JPEG or PNG (a camera's FTP "Test" file, a video, a text file...)."""


class CorruptImageError(Exception):
    """The upload claims to be a JPEG or PNG but cannot be decoded whole (truncated, damaged)."""


def decode_snapshot(data: bytes) -> Snapshot:
    """Decode every pixel (so truncation is caught) and return an RGB snapshot."""
    if not data:
        raise NotAnImageError("empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, Image.DecompressionBombWarning, Image.DecompressionBombError):
        raise NotAnImageError("not a JPEG or PNG image") from None
    kind = ACCEPTED_FORMATS.get(image.format or "")
    if kind is None:
        raise NotAnImageError(f"unsupported image format {image.format}")
    width, height = image.size
    if width * height > MAX_PIXELS:
        raise NotAnImageError(f"image too large ({width}×{height} pixels)")
    try:
        image.load()
        rgb = to_rgb(ImageOps.exif_transpose(image))
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise CorruptImageError(f"truncated or corrupt {kind} ({exc})") from None
    return Snapshot(data=data, format=kind, image=rgb)


def to_rgb(image: Image.Image) -> Image.Image:
    """A new RGB image from any mode: 16-bit greyscale rescaled, transparency flattened on white."""
    if image.mode.startswith("I;16") or image.mode in ("I", "F"):
        # A plain conversion clips 16-bit values at 255, which turns most pixels white.
        image = image.convert("I").point(lambda value: value / 256).convert("L")
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        flattened = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        flattened.alpha_composite(rgba)
        return flattened.convert("RGB")
    return image.convert("RGB")


HASH_SIDE = 16  # a 256-bit hash: fine enough to see a small person on a wide surveillance view


def perceptual_hash(image: Image.Image) -> int:
    """A 256-bit difference hash: re-encoding a frame changes a few bits, a person walking into
    a wide view changes fifteen or more."""
    small = image.convert("L").resize((HASH_SIDE + 1, HASH_SIDE), Image.Resampling.BILINEAR)
    pixels = small.tobytes()
    bits = 0
    for row in range(HASH_SIDE):
        for column in range(HASH_SIDE):
            index = row * (HASH_SIDE + 1) + column
            bits = (bits << 1) | (pixels[index] > pixels[index + 1])
    return bits


def hash_distance(first: int, second: int) -> int:
    return (first ^ second).bit_count()
