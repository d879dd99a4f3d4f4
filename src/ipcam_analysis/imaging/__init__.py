"""Pixels: decode and validate an upload, hash it, draw the boxes, encode JPEG."""

from ipcam_analysis.imaging.annotate import (
    THUMBNAIL_WIDTH,
    draw_boxes,
    encode_jpeg,
    event_pictures,
    pixel_rect,
    thumbnail,
    thumbnail_jpeg,
)
from ipcam_analysis.imaging.decode import (
    IMAGE_WORK,
    CorruptImageError,
    NotAnImageError,
    decode_snapshot,
    to_rgb,
)
from ipcam_analysis.imaging.hash import hash_distance, perceptual_hash, region_fingerprint

__all__ = [
    "IMAGE_WORK",
    "THUMBNAIL_WIDTH",
    "CorruptImageError",
    "NotAnImageError",
    "decode_snapshot",
    "draw_boxes",
    "encode_jpeg",
    "event_pictures",
    "hash_distance",
    "perceptual_hash",
    "pixel_rect",
    "region_fingerprint",
    "thumbnail",
    "thumbnail_jpeg",
    "to_rgb",
]
