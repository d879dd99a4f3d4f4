#!/usr/bin/env python3
"""A video clip through the local detector: seconds and peak memory to analyse one, by length
(10 s, 60 s) and resolution (640×360, 1920×1080), and whether the person is found.

Each clip is built from the vtest street frames (the street empty for the first third, then the
frames with people, a second each), H.264 at 15 frames a second with a key frame a second, in
MP4. Each is analysed in a fresh process (`analyse_clip`, the service's own step, with the
default sampling and LocalDetector's default settings) once the model is loaded and has run once;
the memory is the process's resident size before (the model loaded, the clip's bytes received)
and its peak during the analysis (Linux's VmHWM, reset through /proc/self/clear_refs first).

`--recall`: what the sampling (a frame a second) costs in recall: 10 s clips at 640×360 in which
a person is in view only briefly (0.2 to 2 s, starting at 4 phases within a second), each
analysed once; found or missed.

    .venv/bin/python bench/clips.py
    .venv/bin/python bench/clips.py --lengths 10 --sizes 640x360
    .venv/bin/python bench/clips.py --recall
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from bench import common  # noqa: E402
from harness.clips import EMPTY_STREET, PEOPLE, encode_clip, held  # noqa: E402
from ipcam_analysis.config import AppConfig  # noqa: E402
from ipcam_analysis.detect.local import LocalDetector, LocalDetectorConfig  # noqa: E402
from ipcam_analysis.imaging import decode_snapshot  # noqa: E402
from ipcam_analysis.imaging.clips import clip_format  # noqa: E402
from ipcam_analysis.service.clip_analysis import MAX_LOCAL_FRAMES, analyse_clip  # noqa: E402

FPS = 15
SIZES = {"640x360": (640, 360), "1920x1080": (1920, 1080)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[10, 60], help="seconds")
    parser.add_argument("--sizes", nargs="+", choices=list(SIZES), default=list(SIZES))
    parser.add_argument("--output", type=Path, help="JSON file (default bench/results/...)")
    parser.add_argument("--recall", action="store_true", help="brief appearances instead")
    args = parser.parse_args()
    if args.recall:
        return recall(args.output)
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-clips-") as folder:
        cache = common.MODEL_CACHE if common.MODEL_CACHE.is_dir() else Path(folder)
        for seconds in args.lengths:
            for size in args.sizes:
                clip = street_clip(seconds, SIZES[size])
                with common.SPAWN.Pool(1, maxtasksperchild=1) as pool:
                    found = pool.apply(analyse_in_child, (clip, size, cache))
                result = {"seconds": seconds, "size": size, "clip_bytes": len(clip), **found}
                print(result, file=sys.stderr)
                results.append(result)
    common.print_table(
        ["clip", "size", "MB", "frames", "seconds", "ms/frame", "RSS before", "RSS peak", "seen"],
        [
            [
                f"{r['seconds']} s",
                r["size"],
                round(r["clip_bytes"] / 1e6, 1),
                r["frames"],
                round(r["elapsed_s"], 1),
                round(r["elapsed_s"] * 1000 / r["frames"]),
                f"{r['rss_before_mb']} MB",
                f"{r['rss_peak_mb']} MB",
                r["seen"],
            ]
            for r in results
        ],
    )
    settings = {"fps": FPS, "max_frames": MAX_LOCAL_FRAMES, "container": "mp4"}
    common.write_results("clips", {"settings": settings, "results": results}, args.output)
    return 0


def recall(output: Path | None) -> int:
    """A person in view for `shown` seconds from 4.0, 4.25, 4.5 or 4.75 s of a 10 s clip."""
    size, results = SIZES["640x360"], []
    with tempfile.TemporaryDirectory(prefix="bench-clips-") as folder:
        cache = common.MODEL_CACHE if common.MODEL_CACHE.is_dir() else Path(folder)
        for shown in (0.2, 0.5, 1.0, 2.0):
            for start in (4.0, 4.25, 4.5, 4.75):
                frames = held(EMPTY_STREET, start, size, FPS) + held(PEOPLE[0], shown, size, FPS)
                frames += held(EMPTY_STREET, 10 - start - shown, size, FPS)
                clip = encode_clip(frames, "mp4", FPS, preset="ultrafast")
                with common.SPAWN.Pool(1, maxtasksperchild=1) as pool:
                    found = pool.apply(analyse_in_child, (clip, "640x360", cache))
                results.append({"shown_s": shown, "start_s": start, "seen": found["seen"]})
                print(results[-1], file=sys.stderr)
    common.print_table(
        ["in view", "found", "of"],
        [
            [f"{shown} s", sum("Person" in r["seen"] for r in rows), len(rows)]
            for shown in dict.fromkeys(r["shown_s"] for r in results)
            for rows in [[r for r in results if r["shown_s"] == shown]]
        ],
    )
    settings = {"fps": FPS, "clip_seconds": 10, "size": "640x360"}
    common.write_results("clips_recall", {"settings": settings, "results": results}, output)
    return 0


def street_clip(seconds: int, size: tuple[int, int]) -> bytes:
    """The empty street for a third of the clip, then the frames with people, a second each."""
    empty = seconds // 3
    frames = held(EMPTY_STREET, empty, size, FPS)
    for second in range(seconds - empty):
        frames += held(PEOPLE[second % len(PEOPLE)], 1, size, FPS)
    return encode_clip(frames, "mp4", FPS, preset="ultrafast")


def analyse_in_child(clip: bytes, size: str, cache: Path) -> dict[str, Any]:
    config = {"labels": ["Person"], "detector": {"type": "local"}}
    camera = AppConfig.model_validate(config).camera("bench")
    detector = LocalDetector(LocalDetectorConfig(model_cache_dir=cache), 25)
    detector.detect(decode_snapshot(common.snapshot_jpeg(SIZES[size])))
    before = _status_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # the peak starts again from here
    started = time.perf_counter()
    analysis = analyse_clip(
        clip,
        clip_format(clip) or "",
        camera,
        lambda snapshot: detector.detect(snapshot, camera.watched),
    )
    elapsed = time.perf_counter() - started
    return {
        "frames": analysis.frames_analysed,
        "elapsed_s": elapsed,
        "rss_before_mb": before,
        "rss_peak_mb": _status_mb("VmHWM"),
        "seen": analysis.describe(),
        "load_before": common.load_average(),
    }


def _status_mb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) // 1024
    raise LookupError(field)


if __name__ == "__main__":
    sys.exit(main())
