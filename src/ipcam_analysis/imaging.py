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
    """RGB from any mode: greyscale IR shots, palette, 16-bit, and transparency over white."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # 16-bit greyscale: scale into 8 bits before the usual conversion.
        image = image.point(lambda value: value / 256).convert("L")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        image = image.convert("RGBA")
        background = Image.new("RGB", image.size, "white")
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")
