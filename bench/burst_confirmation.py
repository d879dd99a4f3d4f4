"""What `filters.confirm` (a weak detection must be seen in a second picture of its burst) does to
alerts, on bursts of three pictures built from real frames, decided as the service decides them.

Bursts: windows of three frames of the vtest surveillance sequence (people walking: every burst
should alert), the same at 320×240 (people small, detections weaker), each eval composite's
animal passing through one picture of three (its empty scene before and after: nothing to alert
on for a camera watching Person and Vehicle), and the great blue heron (which the local model calls
Person 35 %) standing in all three. Usage: python bench/burst_confirmation.py [--weak 50]"""

from __future__ import annotations

import argparse
import csv
import io
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from bench import common  # noqa: E402
from ipcam_analysis.detect.local import LocalDetector, LocalDetectorConfig  # noqa: E402
from ipcam_analysis.imaging import decode_snapshot  # noqa: E402
from ipcam_analysis.rules import FiltersConfig, decide, filter_labels  # noqa: E402
from ipcam_analysis.rules.bursts import (  # noqa: E402
    ConfirmConfig,
    confirmed_in_burst,
    matched_names,
)
from ipcam_analysis.rules.objects import one_name_per_object  # noqa: E402
from ipcam_analysis.values import MatchedLabel, WatchedLabels  # noqa: E402

LABELS = ["Person", "Vehicle"]
VTEST = [f"opencv_vtest_f{n:04d}.jpg" for n in range(0, 900, 150)]
# The empty scenes eval/build_additions.py pasted the cut-outs on, as eval/images keeps them.
SCENES = ["lomiri_picosdeeuropa", "lomiri_aitzgorri", "lomiri_life", "lomiri_seeding"]
SCENES += ["mate_greenmeadow"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--weak", type=float, default=50, help="weak_below_percent")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-bursts-") as folder:
        cache = common.MODEL_CACHE if common.MODEL_CACHE.is_dir() else Path(folder)
        detector = LocalDetector(LocalDetectorConfig(model_cache_dir=cache), 25)
        confirm = ConfirmConfig(weak_below_percent=args.weak)
        rows = [
            measure("vtest, 3 frames (people)", True, vtest_bursts(None), detector, confirm),
            measure("vtest at 320×240", True, vtest_bursts((320, 240)), detector, confirm),
            measure("an animal passes", False, passing_bursts(), detector, confirm),
            measure(
                "the heron stays", False, [[heron(q) for q in (85, 70, 80)]], detector, confirm
            ),
        ]
    common.print_table(
        ["bursts", "people in them", "n", "alerts, confirm off", f"alerts, weak < {args.weak:g} %"],
        rows,
    )
    return 0


def measure(
    kind: str,
    people: bool,
    bursts: Sequence[Sequence[bytes]],
    detector: LocalDetector,
    confirm: ConfirmConfig,
) -> list[object]:
    off = on = 0
    for burst in bursts:
        frames = [frame_matches(detector, data) for data in burst]
        alerting = [matched for matched in frames if matched]
        if not alerting:
            continue
        off += 1
        best = max(alerting, key=lambda matched: max(m.label.confidence for m in matched))
        others = frozenset().union(*(matched_names(m) for m in alerting if m is not best))
        kept, _ = confirmed_in_burst(best, others, confirm)
        on += bool(kept)
    return [kind, "yes" if people else "no", len(bursts), off, on]


def frame_matches(detector: LocalDetector, data: bytes) -> tuple[MatchedLabel, ...]:
    """What one picture matches, as the pipeline decides it before the burst."""
    filters = FiltersConfig()
    detection = detector.detect(decode_snapshot(data), WatchedLabels(tuple(LABELS)))
    detection = one_name_per_object(detection, filters, None)
    labels, _ = filter_labels(detection.labels, filters, None)
    return decide(labels, LABELS, False).matched


def jpeg(image: Image.Image, quality: int = 85) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def vtest_bursts(size: tuple[int, int] | None) -> list[list[bytes]]:
    frames = [Image.open(common.IMAGES / name).convert("RGB") for name in VTEST]
    if size:
        frames = [frame.resize(size, Image.Resampling.LANCZOS) for frame in frames]
    data = [jpeg(frame) for frame in frames]
    return [data[start : start + 3] for start in range(len(data) - 2)]


def passing_bursts() -> list[list[bytes]]:
    """Each composite between two pictures of its empty scene (found as the closest one)."""
    with (common.IMAGES / "labels.csv").open(encoding="utf-8") as file:
        composites = [row["file"] for row in csv.DictReader(file) if row["origin"] == "composite"]
    bursts = []
    for name in composites:
        picture = Image.open(common.IMAGES / name).convert("RGB")
        empty = empty_scene(picture)
        bursts.append([jpeg(empty), (common.IMAGES / name).read_bytes(), jpeg(empty, 80)])
    return bursts


def empty_scene(picture: Image.Image) -> Image.Image:
    candidates = [
        ImageOps.fit(Image.open(common.IMAGES / f"{scene}.jpg").convert("RGB"), picture.size)
        for scene in SCENES
    ]
    return min(candidates, key=lambda scene: difference(scene, picture))


def difference(first: Image.Image, second: Image.Image) -> float:
    small = [image.resize((64, 48)).convert("L").tobytes() for image in (first, second)]
    return sum(abs(a - b) for a, b in zip(*small, strict=True))


def heron(quality: int) -> bytes:
    return jpeg(Image.open(common.IMAGES / "cutout_heron_greatblue.jpg").convert("RGB"), quality)


if __name__ == "__main__":
    sys.exit(main())
