#!/usr/bin/env python3
"""Rebuild the GCompris photos of eval/images (issue 21) from Debian's gcompris-qt-data.

The photos live inside Qt resource files (`usr/share/gcompris-qt/rcc/*.rcc`); this script reads
their names tree, so each picture keeps its GCompris name, and the README that GCompris ships
beside the photos in each folder, for the photographer and the licence. Nothing is downloaded:

    apt-get download gcompris-qt-data    # 3.1-2 in bookworm
    dpkg -x gcompris-qt-data_3.1-2_all.deb ROOT
    .venv/bin/python eval/build_gcompris.py ROOT    # ROOT=/ when the package is installed

Photos are WebP: decoded, scaled to fit 1280×1280 (never enlarged: they are 1024 and 320 pixels
wide) and saved as JPEG quality 85, like the issue-14 additions. The rows are printed as CSV for
labels.csv.
"""

from __future__ import annotations

import csv
import io
import re
import struct
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

from PIL import Image

OUT = Path(__file__).resolve().parent / "images"
RCC = "usr/share/gcompris-qt/rcc"
PACKAGE = "Debian gcompris-qt-data 3.1-2"
ACTIVITIES = "/gcompris/src/activities"

# rcc file, the folders inside it whose photos are taken (the letters and digits are drawings)
FOLDERS = {
    "explore_farm_animals.rcc": ["explore_farm_animals/resource/animals"],
    "explore_world_animals.rcc": ["explore_world_animals/resource/animals"],
    "categorization.rcc": [
        f"categorization/resource/images/{kind}"
        for kind in ("fishes", "monuments", "others", "renewable", "tools")
    ],
}

# Every picture was looked at full size, zoomed in on small objects (notes in README.md);
# those not listed hold none of the five classes. (person, vehicle, dog, cat, bird)
TRUTH = {
    "dog": (0, 0, 1, 0, 0),
    "cat": (0, 0, 0, 1, 0),
    "chicken": (0, 0, 0, 0, 1),
    "duck": (0, 0, 0, 0, 1),
    "owl": (0, 0, 0, 0, 1),
    "scarlet_macaw": (0, 0, 0, 0, 1),
    "bayterek": (0, 0, 0, 0, 1),  # one small bird flying by the tower
    "india_gate": (1, 0, 0, 0, 0),
    "arc_de_triomphe": (1, 0, 0, 0, 0),
    "brandenburg_gate": (1, 0, 0, 0, 0),
    "colosseum": (1, 1, 0, 0, 0),
    "eiffel_tower": (1, 0, 0, 0, 0),
    "great_wall": (1, 0, 0, 0, 0),
    "le_musee": (1, 0, 0, 0, 0),
    "leaning_tower_of_pisa": (1, 0, 0, 0, 0),
    "monument1": (1, 0, 0, 0, 0),
    "monument3": (1, 1, 0, 0, 0),
    "us_capitol": (1, 0, 0, 0, 0),
    "dam2": (1, 0, 0, 0, 0),
    "windmill4": (1, 0, 0, 0, 0),
}
NONE = (0, 0, 0, 0, 0)
# A file name the README spells differently from the resource it describes
README_TYPOS = {"screDriver.webp": "screwDriver.webp"}
LICENCES = {"Public Domain": "public-domain", "CC0-1.0": "CC0-1.0", "GPLv2+": "GPL-2.0-or-later"}


def main() -> int:
    root = Path(sys.argv[1])
    rows = []
    for rcc_name, folders in FOLDERS.items():
        files = dict(rcc_files((root / RCC / rcc_name).read_bytes()))
        for folder in folders:
            credits = readme_credits(files[f"{ACTIVITIES}/{folder}/README"].decode())
            for path in sorted(p for p in files if p.startswith(f"{ACTIVITIES}/{folder}/")):
                if path.endswith(".webp"):
                    rows.append(photo(files[path], f"{RCC}/{rcc_name}:{path}", credits))
    names = [row[0] for row in rows]
    assert len(set(names)) == len(names), "two photos would get the same file name"
    assert set(TRUTH) <= {name[len("gcompris_") : -len(".jpg")] for name in names}
    csv.writer(sys.stdout, lineterminator="\n").writerows(rows)
    return 0


def photo(data: bytes, source_path: str, credits: dict[str, str]) -> list[object]:
    webp = source_path.rsplit("/", 1)[1]
    stem = snake_case(webp.removesuffix(".webp"))
    name = f"gcompris_{stem}.jpg"
    image = Image.open(io.BytesIO(data)).convert("RGB")
    image.thumbnail((1280, 1280), Image.Resampling.LANCZOS)
    image.save(OUT / name, "JPEG", quality=85)
    return [name, *TRUTH.get(stem, NONE), PACKAGE, source_path, credits[webp], "photo"]


def snake_case(name: str) -> str:
    """`leaningTowerOfPisa` -> `leaning_tower_of_pisa`, `IndiaGate` -> `india_gate`."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", name).lower()


def rcc_files(blob: bytes) -> Iterator[tuple[str, bytes]]:
    """The files of a Qt resource file (format 1–3): path from its names tree, and content."""
    if blob[:4] != b"qres":
        raise ValueError("not a Qt resource file")
    version, tree, data, names = struct.unpack(">4I", blob[4:20])
    node_size = 22 if version >= 2 else 14  # format 2 added a modification time per node

    def name(offset: int) -> str:
        (length,) = struct.unpack(">H", blob[names + offset : names + offset + 2])
        start = names + offset + 6  # after the length and the name's hash
        return blob[start : start + 2 * length].decode("utf-16-be")

    def walk(index: int, prefix: str) -> Iterator[tuple[str, bytes]]:
        node = tree + index * node_size
        name_offset, flags = struct.unpack(">IH", blob[node : node + 6])
        path = f"{prefix}/{name(name_offset)}" if index else ""
        if flags & 2:  # a directory: its children are numbered consecutively
            count, first = struct.unpack(">II", blob[node + 6 : node + 14])
            for child in range(first, first + count):
                yield from walk(child, path)
            return
        (offset,) = struct.unpack(">I", blob[node + 10 : node + 14])
        (size,) = struct.unpack(">I", blob[data + offset : data + offset + 4])
        content = blob[data + offset + 4 : data + offset + 4 + size]
        if flags & 4:
            raise ValueError(f"{path}: zstd-compressed resources are not supported")
        yield path, zlib.decompress(content[4:]) if flags & 1 else content

    yield from walk(0, "")


def readme_credits(text: str) -> dict[str, str]:
    """File name -> "licence (photographer)" from a GCompris README's paragraphs."""
    credits = {}
    for paragraph in re.split(r"\n\s*\n", text):
        fields = dict(re.findall(r"^(Copyright|License): *(.+)$", paragraph, re.MULTILINE))
        listed = paragraph.split("Files:", 1)[1].split() if "Files:" in paragraph else []
        for file in listed:
            if file.endswith(".webp"):
                credits[README_TYPOS.get(file, file)] = (
                    f"{LICENCES[fields['License']]} ({fields['Copyright']})"
                )
    return credits


if __name__ == "__main__":
    sys.exit(main())
