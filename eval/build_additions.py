#!/usr/bin/env python3
"""Rebuild the pictures added to eval/images in issue 14 from the Debian packages they come from.

The packages are unpacked with `dpkg -x` into one folder (ROOT below); nothing is downloaded:

    apt-get download tuxpaint-stamps-default lomiri-wallpapers-16.04 lomiri-wallpapers-20.04 \
        mate-backgrounds palapeli-data plasma-workspace-wallpapers
    for deb in *.deb; do dpkg -x "$deb" ROOT; done
    .venv/bin/python eval/build_additions.py ROOT

Photos are scaled to fit 1280×1280 (never enlarged) and saved as JPEG quality 85. Composites
paste a real cut-out animal photo (Tux Paint's stamps, alpha-blended) onto a real empty scene,
cropped to 1280×720 (1920×1080 for the `far_` ones, whose animal is small): placements come
from a fixed seed, so the files are the same on every run. The rows are printed as CSV for
labels.csv.
"""

from __future__ import annotations

import csv
import random
import sys
from pathlib import Path

from PIL import Image, ImageOps

OUT = Path(__file__).resolve().parent / "images"
STAMPS = "usr/share/tuxpaint/stamps"
TUXPAINT = "Debian tuxpaint-stamps-default 2022.06.04-1"
LOMIRI16 = "Debian lomiri-wallpapers-16.04 20.04.0-2"
LOMIRI20 = "Debian lomiri-wallpapers-20.04 20.04.0-2"
MATE = "Debian mate-backgrounds 1.26.0-1"
PALAPELI = "Debian palapeli-data 4:22.12.3-1"
PLASMA = "Debian plasma-workspace-wallpapers 4:5.27.5-2"
BACKGROUNDS = "usr/share/backgrounds"

# file, (person, vehicle, dog, cat, bird), package, path, licence
PHOTOS = [
    (
        "lomiri_friends.jpg",
        (0, 0, 1, 0, 0),
        LOMIRI16,
        f"{BACKGROUNDS}/friends_by_Aitzol_Berasategi.jpg",
        "CC-BY-4.0 (Aitzol Berasategi)",
    ),
    (
        "lomiri_kleiber.jpg",
        (0, 0, 0, 0, 1),
        LOMIRI20,
        f"{BACKGROUNDS}/Kleiber_by_Lukas_Baubkus.jpg",
        "CC-BY-SA-3.0 (Lukas Baubkus)",
    ),
    (
        "lomiri_aitzgorri.jpg",
        (0, 0, 0, 0, 0),
        LOMIRI16,
        f"{BACKGROUNDS}/aitzgorri_by_Aitzol_Berasategi.jpg",
        "CC-BY-4.0 (Aitzol Berasategi)",
    ),
    (
        "lomiri_picosdeeuropa.jpg",
        (0, 0, 0, 0, 0),
        LOMIRI16,
        f"{BACKGROUNDS}/picosdeeuropa_by_Aitzol_Berasategi.jpg",
        "CC-BY-4.0 (Aitzol Berasategi)",
    ),
    (
        "lomiri_life.jpg",
        (0, 0, 0, 0, 0),
        LOMIRI16,
        f"{BACKGROUNDS}/life_by_Aitzol_Berasategi.jpg",
        "CC-BY-4.0 (Aitzol Berasategi)",
    ),
    (
        "lomiri_seeding.jpg",
        (0, 0, 0, 0, 0),
        LOMIRI16,
        f"{BACKGROUNDS}/seeding_by_Clements_Engelhardt.jpg",
        "CC0-1.0 (Clemens Engelhardt)",
    ),
    (
        "mate_greenmeadow.jpg",
        (0, 0, 0, 0, 0),
        MATE,
        f"{BACKGROUNDS}/mate/nature/GreenMeadow.jpg",
        "GPL-2.0-or-later",
    ),
    (
        "mate_ladybird.jpg",
        (0, 0, 0, 0, 0),
        MATE,
        f"{BACKGROUNDS}/mate/nature/LadyBird.jpg",
        "GPL-2.0-or-later",
    ),
    (
        "mate_elephants.jpg",
        (0, 0, 0, 0, 0),
        MATE,
        f"{BACKGROUNDS}/mate/abstract/Elephants.jpg",
        "GPL-2.0-or-later",
    ),
    (
        "palapeli_honey_bee.jpg",
        (0, 0, 0, 0, 0),
        PALAPELI,
        "usr/share/palapeli/collection/european-honey-bee.jpg",
        "GPL-2.0-or-later",
    ),
    (
        "palapeli_chameleon.jpg",
        (0, 0, 0, 0, 0),
        PALAPELI,
        "usr/share/palapeli/collection/panther-chameleon-female.jpg",
        "GPL-2.0-or-later",
    ),
    (
        "plasma_eveningglow.jpg",
        (0, 0, 0, 0, 0),
        PLASMA,
        "usr/share/wallpapers/EveningGlow/contents/images/2560x1440.jpg",
        "GPL-2.0-or-later",
    ),
]

# Empty real scenes the cut-outs are pasted on: path, the part of the height where the ground is.
SCENES = [
    (f"{BACKGROUNDS}/picosdeeuropa_by_Aitzol_Berasategi.jpg", LOMIRI16, (0.55, 0.95)),
    (f"{BACKGROUNDS}/aitzgorri_by_Aitzol_Berasategi.jpg", LOMIRI16, (0.6, 0.95)),
    (f"{BACKGROUNDS}/life_by_Aitzol_Berasategi.jpg", LOMIRI16, (0.5, 0.95)),
    (f"{BACKGROUNDS}/seeding_by_Clements_Engelhardt.jpg", LOMIRI16, (0.5, 0.95)),
    (f"{BACKGROUNDS}/mate/nature/GreenMeadow.jpg", MATE, (0.3, 0.95)),
]

BIRDS = [
    "adelaide-rosella",
    "albino_peahen",
    "blackbird",
    "chicken_profile",
    "crow",
    "crowned_crane",
    "cuckoo",
    "drake",
    "duck",
    "gander",
    "guineafowl",
    "helmeted_guineafowl",
    "hen",
    "heron_greatblue",
    "heron_greatblue_flying",
    "lark",
    "little-penguin",
    "magellanic_penguin",
    "magpie",
    "nandou",
    "ostrich",
    "owl",
    "peacock",
    "pelican",
    "penguin",
    "pigeon",
    "pink_flamingo",
    "quetzal",
    "rainbow-lorikeet",
    "rooster",
    "seagull",
    "silver-gull",
    "tucan",
    "turkey",
    "vulture",
]
# stamp path, truth: a dingo is a dog; a fox, a lion and a tiger are none of the five
OTHERS = [
    ("animals/mammals/dogs/dog.png", (0, 0, 1, 0, 0)),
    ("animals/mammals/dogs/dingo.png", (0, 0, 1, 0, 0)),
    ("animals/mammals/dogs/fox.png", (0, 0, 0, 0, 0)),
    ("animals/mammals/cats/tiger.png", (0, 0, 0, 0, 0)),
]
# Small birds and a dog on large frames: what tiles are for (stamp, height in pixels).
FAR = [
    ("animals/birds/blackbird.png", 70),
    ("animals/birds/pigeon.png", 60),
    ("animals/birds/magpie.png", 80),
    ("animals/mammals/dogs/dog.png", 90),
]


def main() -> int:
    root = Path(sys.argv[1])
    rows = [photo(root, *entry) for entry in PHOTOS]
    rng = random.Random(14)
    stamps = [(f"animals/birds/{name}.png", (0, 0, 0, 0, 1)) for name in BIRDS] + OTHERS
    for index, (stamp, truth) in enumerate(stamps):
        share = rng.uniform(0.15, 0.45)
        rows.append(composite(root, stamp, truth, index, (1280, 720), share, rng))
    for index, (stamp, height) in enumerate(FAR):
        truth = (0, 0, 1, 0, 0) if "dogs" in stamp else (0, 0, 0, 0, 1)
        rows.append(composite(root, stamp, truth, index, (1920, 1080), height / 1080, rng, "far"))
    csv.writer(sys.stdout, lineterminator="\n").writerows(rows)
    return 0


def photo(
    root: Path, name: str, truth: tuple[int, ...], package: str, path: str, licence: str
) -> list[object]:
    image = ImageOps.exif_transpose(Image.open(root / path)).convert("RGB")
    image.thumbnail((1280, 1280), Image.Resampling.LANCZOS)
    image.save(OUT / name, "JPEG", quality=85)
    return [name, *truth, package, path, licence, "photo"]


def composite(
    root: Path,
    stamp: str,
    truth: tuple[int, ...],
    index: int,
    size: tuple[int, int],
    share: float,
    rng: random.Random,
    prefix: str = "cutout",
) -> list[object]:
    scene_path, package, (ground_top, ground_bottom) = SCENES[index % len(SCENES)]
    scene = ImageOps.fit(
        Image.open(root / scene_path).convert("RGB"), size, Image.Resampling.LANCZOS
    )
    animal = Image.open(root / STAMPS / stamp).convert("RGBA")
    height = max(8, round(size[1] * share))
    animal = animal.resize(
        (max(8, round(animal.width * height / animal.height)), height), Image.Resampling.LANCZOS
    )
    left = rng.randint(0, max(0, size[0] - animal.width))
    bottom = rng.uniform(ground_top, ground_bottom) * size[1]
    top = int(min(max(0, bottom - animal.height), size[1] - animal.height))
    scene.paste(animal, (left, top), animal)
    name = f"{prefix}_{Path(stamp).stem.replace('-', '_')}.jpg"
    scene.save(OUT / name, "JPEG", quality=85)
    return [
        name,
        *truth,
        f"{TUXPAINT} on {package}",
        f"{STAMPS}/{stamp} on {scene_path}",
        "GPL-2.0-or-later (stamp) on the scene's licence (see README)",
        "composite",
    ]


if __name__ == "__main__":
    sys.exit(main())
