"""Promises that tests can break: each mutant undoes one promise of the product in a copy of this
working tree, runs the tests that should notice, and says whether they did. Run it before
resolving a change to the code that keeps a promise (not part of CI: it runs the service many
times over).

    /work/main/.venv/bin/python scripts/mutate.py              # every mutant
    /work/main/.venv/bin/python scripts/mutate.py --list       # their names
    /work/main/.venv/bin/python scripts/mutate.py cooldown-outside-the-camera-lock
    /work/main/.venv/bin/python scripts/mutate.py --baseline   # the tests pass unmutated first

It prints a Markdown table and exits 1 if a mutant survived (or its tests could not run): add
the test that catches it. A snippet no longer found exactly once also fails it: the list must
follow the code.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from mutants import MUTANTS, Mutant

REPOSITORY = Path(__file__).resolve().parents[1]
# Never copied: version control, caches, the virtual environment, throw-away data.
IGNORED = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", ".mypy_cache", "*.egg-info"
)
PYTEST_TIMEOUT = 300


class SnippetError(Exception):
    """A mutant's original text is not in its file exactly once."""


@dataclass(frozen=True)
class Result:
    mutant: Mutant
    verdict: str  # caught, SURVIVED, or what kept the tests from running
    detail: str = ""

    @property
    def caught(self) -> bool:
        return self.verdict == "caught"


def apply(mutant: Mutant, tree: Path) -> None:
    for edit in mutant.edits:
        path = tree / edit.file
        text = path.read_text(encoding="utf-8")
        count = text.count(edit.original)
        if count != 1:
            raise SnippetError(f"{edit.file}: the original snippet is found {count} times")
        path.write_text(text.replace(edit.original, edit.replacement), encoding="utf-8")


def run_tests(mutant: Mutant, tree: Path) -> subprocess.CompletedProcess[str]:
    command = [
        *(sys.executable, "-m", "pytest", "-x", "-q", "--tb=line", "-p", "no:cacheprovider"),
        *("--timeout", str(PYTEST_TIMEOUT), "--backend", mutant.backend, *mutant.tests),
    ]
    return subprocess.run(command, cwd=tree, capture_output=True, text=True, check=False)


def why_it_ended(output: str) -> str:
    """The failures pytest reported (`--tb=line`: one line each) and its closing tally."""
    lines = output.strip().splitlines()
    failures = [line for line in lines if re.match(r"\S+:\d+: \w+", line)]
    return "\n".join([*failures, *lines[-1:]])


def judge(mutant: Mutant, mutate: bool = True) -> Result:
    """Run the mutant's tests in a fresh copy of the tree (mutated unless `mutate` is False)."""
    with tempfile.TemporaryDirectory(prefix="mutant-") as folder:
        tree = Path(folder) / "tree"
        shutil.copytree(REPOSITORY, tree, ignore=IGNORED, symlinks=True)
        if mutate:
            try:
                apply(mutant, tree)
            except SnippetError as exc:
                return Result(mutant, "snippet not found", str(exc))
        finished = run_tests(mutant, tree)
    output = why_it_ended(finished.stdout)
    if finished.returncode == 1:  # some test failed
        return Result(mutant, "caught" if mutate else "fails unmutated", output)
    if finished.returncode == 0:
        return Result(mutant, "SURVIVED" if mutate else "passes", output)
    return Result(mutant, f"pytest exit {finished.returncode}", output)


def table(results: list[Result]) -> str:
    lines = ["| mutant | file | tests | caught? |", "| --- | --- | --- | --- |"]
    for result in results:
        mutant = result.mutant
        files = ", ".join(sorted({f"`{edit.file}`" for edit in mutant.edits}))
        tests = "<br>".join(f"`{test}`" for test in mutant.tests)
        backend = f" ({mutant.backend})" if mutant.backend != "sqlite" else ""
        verdict = "yes" if result.caught else f"**{result.verdict}**"
        lines.append(f"| {mutant.name} | {files} | {tests}{backend} | {verdict} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="run only these mutants (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    parser.add_argument(
        "--verbose", action="store_true", help="show how each was caught, not only survivors"
    )
    parser.add_argument(
        "--tests",
        nargs="+",
        metavar="NODE_ID",
        help="run these tests instead of the mutants' own (which existing tests catch it?)",
    )
    parser.add_argument(
        "--baseline",
        action="store_true",
        help="first run each mutant's tests on the tree as it is: they must pass",
    )
    args = parser.parse_args()
    if args.list:
        for mutant in MUTANTS:
            print(f"{mutant.name}: {mutant.why}")
        return 0
    known = {mutant.name: mutant for mutant in MUTANTS}
    unknown = [name for name in args.names if name not in known]
    if unknown:
        parser.error(f"no mutant named {', '.join(unknown)} (see --list)")
    chosen = [known[name] for name in args.names] if args.names else MUTANTS
    if args.tests:
        chosen = [replace(mutant, tests=tuple(args.tests)) for mutant in chosen]
    results = []
    for mutant in chosen:
        if args.baseline:
            baseline = judge(mutant, mutate=False)
            if baseline.verdict != "passes":
                print(f"{mutant.name}: its tests do not pass unmutated\n{baseline.detail}")
                results.append(Result(mutant, f"unmutated: {baseline.verdict}"))
                continue
        result = judge(mutant)
        print(f"{mutant.name}: {result.verdict}", flush=True)
        if args.verbose or not result.caught:
            print(result.detail, flush=True)
        results.append(result)
    print()
    print(table(results))
    return 0 if all(result.caught for result in results) else 1


if __name__ == "__main__":
    sys.exit(main())
