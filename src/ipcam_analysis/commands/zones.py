"""Draw a camera's ignore zones over its latest snapshot, to see what the config covers."""

from __future__ import annotations

import argparse
import io
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from ipcam_analysis.config import AppConfig
from ipcam_analysis.imaging import to_rgb
from ipcam_analysis.store import DATABASE_FILE, EventStore, open_database, open_storage

ZONE_FILL = (255, 40, 40, 90)
ZONE_EDGE = (255, 40, 40, 255)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("camera", help="the camera (FTP user) whose zones to draw")
    parser.add_argument(
        "--image", type=Path, help="draw over this picture instead of the camera's latest snapshot"
    )
    parser.add_argument(
        "--output", type=Path, help="where to write the picture (default: zones-CAMERA.jpg)"
    )


def run(args: argparse.Namespace, config: AppConfig) -> int:
    if args.camera not in config.camera_names:
        print(f"There is no camera {args.camera!r} in ftp_server.users", file=sys.stderr)
        return 1
    source = args.image or _latest_snapshot(config, args.camera)
    if source is None:
        print(
            f"No snapshot of {args.camera} yet: upload one, or pass --image PICTURE",
            file=sys.stderr,
        )
        return 1
    shown = source if isinstance(source, Path) else f"the latest snapshot of {args.camera}"
    try:
        picture = to_rgb(Image.open(source if isinstance(source, Path) else io.BytesIO(source)))
    except OSError as exc:
        print(f"Cannot read {shown}: {exc}", file=sys.stderr)
        return 1
    zones = config.camera(args.camera).filters.zones
    output = args.output or Path(f"zones-{args.camera}.jpg")
    draw_zones(picture, zones).save(output, "JPEG", quality=90)
    print(f"{len(zones)} zone(s) of {args.camera} drawn over {shown} into {output}")
    return 0


def draw_zones(picture: Image.Image, zones: list[list[tuple[float, float]]]) -> Image.Image:
    """The picture with each zone shaded and numbered as in the config (zone 1 is the first)."""
    width, height = picture.size
    overlay = Image.new("RGBA", picture.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    font = ImageFont.load_default(size=max(12, min(picture.size) // 25))
    for number, zone in enumerate(zones, start=1):
        points = [(x * width, y * height) for x, y in zone]
        draw.polygon(points, fill=ZONE_FILL, outline=ZONE_EDGE, width=max(2, width // 400))
        draw.text(points[0], f" zone {number}", fill=ZONE_EDGE, font=font)
    return Image.alpha_composite(picture.convert("RGBA"), overlay).convert("RGB")


def _latest_snapshot(config: AppConfig, camera: str) -> Path | bytes | None:
    if not config.database.url and not (config.data_dir / DATABASE_FILE).exists():
        return None  # nothing received yet: no database to create for a look
    database = open_database(config.database, config.data_dir)
    try:
        storage = open_storage(config.storage_settings(), config.data_dir)
        store = EventStore(database, storage, config.history)
        state = next((c for c in store.cameras([camera]) if c["name"] == camera), None)
        event = state and state["last_snapshot_event"]
        return store.snapshot(event) if event else None
    finally:
        database.close()
