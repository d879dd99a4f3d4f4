#!/usr/bin/env python3
"""Cost of each CPU step of one alert, with the project's own functions, in milliseconds (median
of --repeat calls, interleaved so that a burst of load hits every step alike): what the pipeline
does between the upload and the e-mail, and a thumbnail as the dashboard draws it on request.

    .venv/bin/python bench/stages.py
    .venv/bin/python bench/stages.py --sizes 1920x1080 --repeat 50
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from bench import common  # noqa: E402
from ipcam_analysis.imaging import (  # noqa: E402
    THUMBNAIL_WIDTH,
    decode_snapshot,
    draw_boxes,
    encode_jpeg,
    perceptual_hash,
    thumbnail_jpeg,
)
from ipcam_analysis.notify.email import EmailConfig, build_alert_email  # noqa: E402
from ipcam_analysis.values import Alert, MatchedLabel  # noqa: E402

MATCHED = (MatchedLabel(common.PERSON, "Person"),)
EMAIL = EmailConfig(
    transport="none", sender_email="bench@example.com", recipients=["owner@example.com"]
)


def steps(data: bytes) -> dict[str, Callable[[], Any]]:
    """Each step as the pipeline and the e-mail notifier call it."""
    snapshot = decode_snapshot(data)
    image = snapshot.image
    annotated = draw_boxes(image, MATCHED)
    jpeg = encode_jpeg(annotated)
    alert = Alert("cam01", datetime.now().astimezone(), MATCHED, jpeg, annotated.size, "a.jpg")
    return {
        "decode and validate (imaging)": lambda: decode_snapshot(data),
        "perceptual hash (imaging)": lambda: perceptual_hash(image),
        "draw boxes (annotate)": lambda: draw_boxes(image, MATCHED),
        "encode the alert JPEG (annotate)": lambda: encode_jpeg(annotated),
        "build the e-mail, as bytes (notify/email)": lambda: build_alert_email(
            alert, EMAIL
        ).as_bytes(),
        # Not an alert's any more: drawn when a page first shows it (web/thumbnails.py).
        "a thumbnail on request: decode small, box, encode (web)": lambda: thumbnail_jpeg(
            decode_snapshot(data, at_least_width=THUMBNAIL_WIDTH), MATCHED
        ),
    }


def measure(size: str, repeat: int) -> list[dict[str, Any]]:
    data = common.snapshot_jpeg(common.SIZES[size])
    todo = steps(data)
    timings: dict[str, list[float]] = {name: [] for name in todo}
    for _ in range(repeat):
        for name, step in todo.items():
            started = time.perf_counter()
            step()
            timings[name].append((time.perf_counter() - started) * 1000)
    return [
        {
            "size": size,
            "step": name,
            "median_ms": round(statistics.median(values), 2),
            "min_ms": round(min(values), 2),
        }
        for name, values in timings.items()
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sizes", nargs="+", choices=list(common.SIZES), default=["800x488", "1920x1080"]
    )
    parser.add_argument("--repeat", type=int, default=30, help="calls per step (30)")
    parser.add_argument("--output", type=Path, help="JSON file (default bench/results/...)")
    args = parser.parse_args()
    load_before = common.load_average()
    results = [row for size in args.sizes for row in measure(size, args.repeat)]
    common.print_table(
        ["step", "size", "median ms", "min ms"],
        [[r["step"], r["size"], r["median_ms"], r["min_ms"]] for r in results],
    )
    print(f"load {load_before} → {common.load_average()}")
    payload = {"settings": {"repeat": args.repeat}, "results": results}
    common.write_results("stages", payload | {"load_before": load_before}, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
