#!/usr/bin/env python3
"""Summarises a py-spy profile (`py-spy record -f raw --threads`): per thread group, the share of
samples spent in each function, inclusive (with what it calls) and in itself.

    .venv/bin/py-spy record -r 250 -f raw --threads -o /tmp/profile.txt -- \\
        .venv/bin/python bench/pipeline_latency.py --detectors fake --uploads 500
    .venv/bin/python bench/profile_summary.py /tmp/profile.txt --threads worker --top 25
"""

from __future__ import annotations

import argparse
import re
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from bench.common import print_table  # noqa: E402

THREAD = re.compile(r"thread \(\w+\): (?P<name>[^;]*)")
LINE_NUMBER = re.compile(r":\d+\)$")


def summarise(
    lines: list[str], thread_prefix: str, focus: str | None
) -> tuple[int, Counter[str], Counter[str]]:
    """(samples, inclusive counts, self counts) of the threads whose name starts with the prefix;
    with `focus`, only stacks through a function containing that text."""
    total, inclusive, itself = 0, Counter[str](), Counter[str]()
    for line in lines:
        stack, _, count_text = line.rpartition(" ")
        frames = stack.split(";")
        match = THREAD.match(frames[0]) if frames else None
        name = match.group("name") if match else ""
        if not name.startswith(thread_prefix):
            continue
        functions = [LINE_NUMBER.sub(")", frame) for frame in frames[2:]]
        if focus and not any(focus in f for f in functions):
            continue
        count = int(count_text)
        total += count
        for function in dict.fromkeys(functions):
            inclusive[function] += count
        if functions:
            itself[functions[-1]] += count
    return total, inclusive, itself


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile", type=Path, help="py-spy raw output")
    parser.add_argument("--threads", default="worker", help="thread name prefix (worker)")
    parser.add_argument("--focus", help="only stacks through a function containing this text")
    parser.add_argument("--top", type=int, default=25, help="rows per table")
    args = parser.parse_args()
    lines = args.profile.read_text(encoding="utf-8").splitlines()
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
