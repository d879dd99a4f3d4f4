"""Time and peak memory of decode_snapshot on each file of the malformed-input corpus.

Each file is decoded in a fresh process; the memory figure is the kernel's high-water mark
(VmHWM, reset just before, which needs Linux and the process's own /proc) above the resident
memory the file and the program already took. `--revision REV` decodes with imaging.py as it was at that git revision instead,
to compare before and after a change.

    .venv/bin/python scripts/decode_costs.py [--revision HEAD~1]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

REPOSITORY = Path(__file__).resolve().parents[1]


def imaging_module(revision: str | None) -> ModuleType:
    if revision is None:
        import ipcam_analysis.imaging

        return ipcam_analysis.imaging
    source = subprocess.run(
        ["git", "show", f"{revision}:src/ipcam_analysis/imaging.py"],
        cwd=REPOSITORY,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "imaging_at_revision.py"
    path.write_text(source, encoding="utf-8")
    spec = importlib.util.spec_from_file_location("imaging_at_revision", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def decode_one(name: str, revision: str | None) -> dict[str, object]:
    from tests.test_malformed_input import corpus

    imaging = imaging_module(revision)
    data = corpus()[name][0]
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM back to the current VmRSS
    before = status_mb("VmRSS")
    started = time.perf_counter()
    try:
        imaging.decode_snapshot(data)
        outcome = "image"
    except Exception as exc:
        outcome = type(exc).__name__
    return {
        "file": name,
        "seconds": round(time.perf_counter() - started, 3),
        "peak_mb": round(status_mb("VmHWM") - before, 1),
        "outcome": outcome,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--revision", help="decode with imaging.py as of this git revision")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # the per-file child process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(decode_one(args.one, args.revision)))
        return 0
    from tests.test_malformed_input import corpus

    print(f"{'file':32} {'seconds':>8} {'+MB peak':>8}  outcome")
    for name in corpus():
        command = [sys.executable, __file__, "--one", name]
        if args.revision:
            command += ["--revision", args.revision]
        child = subprocess.run(command, capture_output=True, text=True, timeout=600, check=True)
        row = json.loads(child.stdout)
        print(f"{name:32} {row['seconds']:8.2f} {row['peak_mb']:8.0f}  {row['outcome']}")
    return 0


if __name__ == "__main__":
    sys.path[:0] = [str(REPOSITORY), str(REPOSITORY / "src")]
    sys.exit(main())
