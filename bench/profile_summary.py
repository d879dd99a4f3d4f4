#!/usr/bin/env python3
"""Summarises a py-spy profile (`py-spy record -f raw --threads`, `--subprocesses` too): per
thread group, the share of samples spent in each function, inclusive (with what it calls) and in
itself; with --parts, the share of each part of the work (the AWS SDK, pictures, e-mail, ...).

    .venv/bin/py-spy record -r 250 -f raw --threads -o /tmp/profile.txt -- \\
        .venv/bin/python bench/pipeline_latency.py --detectors fake --uploads 500
    .venv/bin/python bench/profile_summary.py /tmp/profile.txt --threads worker --top 25
    .venv/bin/python bench/profile_summary.py /tmp/profiles/round1-1.txt --threads "" --parts
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from bench.common import print_table  # noqa: E402

THREAD = re.compile(r"thread \(\w+\): (?P<name>[^;]*)")
LINE_NUMBER = re.compile(r":\d+\)$")
# The parts of the work, by where a sample's innermost known frame is (first match wins).
PARTS = {
    "AWS SDK (botocore, urllib3, http.client)": ("botocore/", "boto3/", "urllib3/", "http/"),
    "e-mail (email package, notify/)": ("email/", "ipcam_analysis/notify/"),
    "pictures (Pillow, imaging/)": ("PIL/", "ipcam_analysis/imaging/"),
    "database (sqlite3, store/, queue, gates)": (
        "sqlite3",
        "ipcam_analysis/store/",
        "ipcam_analysis/store/queue.py",
        "ipcam_analysis/service/decisions.py",
    ),
    "FTP (pyftpdlib, ingest/)": ("pyftpdlib/", "ipcam_analysis/ingest/"),
    "logging": ("logging/",),
}


def stacks(lines: list[str], thread_prefix: str) -> Iterator[tuple[list[str], int]]:
    """(functions, outermost first; samples) of each stack of the threads whose name starts
    with the prefix."""
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        frames = stack.split(";")
        if frames and frames[0].startswith("process "):  # --subprocesses
            frames = frames[1:]
        match = THREAD.match(frames[0]) if frames else None
        name = match.group("name") if match else ""
        if name.startswith(thread_prefix):
            yield [LINE_NUMBER.sub(")", frame) for frame in frames[1:]], int(count_text)


def summarise(
    lines: list[str], thread_prefix: str, focus: str | None
) -> tuple[int, Counter[str], Counter[str]]:
    """(samples, inclusive counts, self counts) of the threads whose name starts with the prefix;
    with `focus`, only stacks through a function containing that text."""
    total, inclusive, itself = 0, Counter[str](), Counter[str]()
    for functions, count in stacks(lines, thread_prefix):
        if focus and not any(focus in f for f in functions):
            continue
        total += count
        for function in dict.fromkeys(functions):
            inclusive[function] += count
        if functions:
            itself[functions[-1]] += count
    return total, inclusive, itself


def part_of(functions: list[str]) -> str:
    """The part of the work (PARTS) of a stack's innermost frame that belongs to one."""
    for function in reversed(functions):
        for name, places in PARTS.items():
            if any(place in function for place in places):
                return name
    return "other"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", type=Path, help="py-spy raw output")
    parser.add_argument("--threads", default="worker", help="thread name prefix (worker)")
    parser.add_argument("--focus", help="only stacks through a function containing this text")
    parser.add_argument("--top", type=int, default=25, help="rows per table")
    parser.add_argument("--parts", action="store_true", help="the share of each part of the work")
    args = parser.parse_args()
    lines = args.profile.read_text(encoding="utf-8").splitlines()
    if args.parts:
        shares = Counter[str]()
        for functions, count in stacks(lines, args.threads):
            shares[part_of(functions)] += count
        total = sum(shares.values())
        rows = [[part, n, round(n * 100 / total, 1)] for part, n in shares.most_common()]
        print_table(["part of the work", "samples", "%"], rows)
        return 0
    total, inclusive, itself = summarise(lines, args.threads, args.focus)
    if not total:
        print(f"no samples from threads named {args.threads}*", file=sys.stderr)
        return 1
    print(f"{total} samples in threads {args.threads}*")
    for title, counts in (("inclusive", inclusive), ("self", itself)):
        rows = [[f, n, round(n * 100 / total, 1)] for f, n in counts.most_common(args.top)]
        print_table([f"function ({title})", "samples", "%"], rows)
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
