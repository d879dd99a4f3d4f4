"""Configuration fuzz: broken and random documents through the real CLI give one line and exit 2
(or 0 when they happen to be valid), never a traceback."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from harness.endurance import REPOSITORY
from harness.service import CLI
from ipcam_analysis.cli import EXIT_CONFIG, EXIT_OK, main
from ipcam_analysis.config import AppConfig

EXAMPLE = (REPOSITORY / "config.example.yaml").read_text(encoding="utf-8")
ORIGINAL = (REPOSITORY / "tests" / "data" / "seed" / "config.original-format.yaml").read_text(
    encoding="utf-8"
)
# Every offset of the example takes 35 s in-process (IPCAM_CONFIG_CUT_STRIDE=1); every fourth
# keeps the suite short and still cuts inside every key, value and indentation.
EXAMPLE_CHAR_STRIDE = int(os.environ.get("IPCAM_CONFIG_CUT_STRIDE", "4"))


# Configuration only, nothing kept: one backend is enough.
pytestmark = pytest.mark.embedded_only


def check_config(document: str, folder: Path) -> tuple[int, str]:
    """`ipcam-analysis --check-config -c FILE` in this process: exit code and stderr."""
    path = folder / "config.yaml"
    path.write_text(document, encoding="utf-8")
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
        code = main(["--check-config", "-c", str(path)])
    return code, stderr.getvalue()


def assert_one_line_verdict(code: int, stderr: str) -> None:
    """One line saying OK or what is wrong; a valid config may be warned about first (a label
    cut short), one line each."""
    *warnings, verdict = stderr.splitlines() or [""]
    if code == EXIT_OK:
        assert verdict.startswith("Configuration OK: "), stderr
        assert all(line.startswith("Warning: ") for line in warnings), stderr
    else:
        assert code == EXIT_CONFIG, stderr
        assert verdict.startswith("Configuration error: ") and not warnings, stderr


def prefixes(text: str, stride: int) -> list[str]:
    """The text cut at every line end and at every `stride`-th character."""
    line_ends = [i + 1 for i, char in enumerate(text) if char == "\n"]
    return [text[:end] for end in sorted({*line_ends, *range(0, len(text) + 1, stride)})]


@pytest.mark.parametrize(
    ("text", "stride"), [(EXAMPLE, EXAMPLE_CHAR_STRIDE), (ORIGINAL, 1)], ids=["example", "original"]
)
def test_every_truncation_gives_one_line(tmp_path: Path, text: str, stride: int) -> None:
    verdicts = {EXIT_OK: 0, EXIT_CONFIG: 0}
    for document in prefixes(text, stride):
        code, stderr = check_config(document, tmp_path)
        assert_one_line_verdict(code, stderr)
        verdicts[code] += 1
    assert verdicts[EXIT_OK] and verdicts[EXIT_CONFIG]  # both kinds were met


@pytest.mark.parametrize(
    "document",
    [
        "[" * 5000,  # deeper than PyYAML's recursion can go
        "a: " + "{" * 3000,
        "\x00\x01",
        "labels: !!python/object/apply:os.system [true]",
        "ftp_server: {port: 1e400, users: {cam01: null}}",
        "workers: .nan",
        "time_window: {start: 25:99, end: [[]]}",
        "cameras: {cam01: {}}\nftp_server: {users: {cam01: pw}}",
        "- just\n- a list",
        "a: &a [x, x]\nb: [*a, *a]",
        '"a key\\nover two lines": 1',  # echoed in the message, escaped
    ],
    ids=[
        "deep-list",
        "deep-mapping",
        "control-chars",
        "python-tag",
        "huge-float",
        "nan",
        "bad-times",
        "camera-ok",
        "not-a-mapping",
        "aliases",
        "line-break-in-key",
    ],
)
def test_odd_documents_give_one_line(tmp_path: Path, document: str) -> None:
    assert_one_line_verdict(*check_config(document, tmp_path))


def alias_bomb(levels: int, key: str) -> str:
    """A "billion laughs": each level a list of ten aliases to the one before, 10**levels values."""
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 10)}]" for n in range(1, levels)]
    return "\n".join([*lines, f"{key}: *l{levels - 1}"]) + "\n"


@pytest.mark.parametrize("key", ["labels", "unknown_key", "filters"])
def test_an_alias_bomb_is_refused_in_one_short_line(tmp_path: Path, key: str) -> None:
    # 10**9 values once expanded: refused before anything walks them.
    code, stderr = check_config(alias_bomb(9, key), tmp_path)
    assert_one_line_verdict(code, stderr)
    assert code == EXIT_CONFIG
    assert "aliases" in stderr
    assert len(stderr) < 300


@pytest.mark.parametrize(
    ("document", "key"),
    [
        (f"workers: {'9x' * 5000}\n", "workers"),
        ("labels: [[[[[[[[a, b, c, d, e, f]]]]]]]]\n", "labels"),
    ],
)
def test_a_long_wrong_value_is_quoted_in_short(tmp_path: Path, document: str, key: str) -> None:
    code, stderr = check_config(document, tmp_path)
    assert_one_line_verdict(code, stderr)
    assert code == EXIT_CONFIG
    assert key in stderr
    assert len(stderr) < 300


def test_a_small_alias_is_still_fine(tmp_path: Path) -> None:
    document = "labels: &watched [Person, Car]\ncameras: {cam01: {labels: *watched}}\n"
    document += "ftp_server: {users: {cam01: a-long-password}}\n"
    code, stderr = check_config(document, tmp_path)
    assert code == EXIT_OK, stderr


def _field_names(model: type[BaseModel], seen: set[type[BaseModel]]) -> set[str]:
    """Every key of the configuration tree, so generated documents reach the inner validators."""
    seen.add(model)
    names = set(model.model_fields)
    for field in model.model_fields.values():
        for inner in _models(field.annotation):
            if inner not in seen:
                names |= _field_names(inner, seen)
    return names


def _models(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [model for arg in getattr(annotation, "__args__", ()) for model in _models(arg)]


KEYS = st.sampled_from(sorted(_field_names(AppConfig, set()))) | st.text(max_size=12)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=30)
    | st.sampled_from(["local", "rekognition", "cascade", "smtp", "ses", "none", "05:00", "cam01"])
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(KEYS | st.integers(), inner, max_size=5)
    ),
    max_leaves=20,
)
# Each example rewrites the same file, so one tmp_path per test is enough.
FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@FUZZ
@given(st.dictionaries(KEYS, VALUES, max_size=8))
def test_generated_mappings_give_one_line(
    tmp_path_factory: pytest.TempPathFactory, document: dict[str, Any]
) -> None:
    folder = tmp_path_factory.mktemp("mapping")
    assert_one_line_verdict(*check_config(yaml.safe_dump(document, sort_keys=False), folder))


def _paths(tree: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key path of a parsed document."""
    found = [prefix] if prefix else []
    if isinstance(tree, dict):
        for key, value in tree.items():
            found += _paths(value, (*prefix, key))
    return found


EXAMPLE_TREE = yaml.safe_load(EXAMPLE)
EXAMPLE_PATHS = _paths(EXAMPLE_TREE)


@FUZZ
@given(st.sampled_from(EXAMPLE_PATHS), VALUES)
def test_the_example_with_one_value_replaced_gives_one_line(
    tmp_path: Path, path: tuple[Any, ...], value: Any
) -> None:
    document = yaml.safe_load(EXAMPLE)
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    assert_one_line_verdict(*check_config(yaml.safe_dump(document, sort_keys=False), tmp_path))


@FUZZ
@given(st.text(max_size=200))
def test_random_text_gives_one_line(
    tmp_path_factory: pytest.TempPathFactory, document: str
) -> None:
    assert_one_line_verdict(*check_config(document, tmp_path_factory.mktemp("text")))


@pytest.mark.parametrize(
    "document",
    [EXAMPLE[: EXAMPLE.index("detector:") + 12], "[" * 5000, "workers: many", EXAMPLE],
    ids=["cut-mid-key", "deep", "bad-value", "valid"],
)
def test_the_real_command_gives_one_line_too(tmp_path: Path, document: str) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(document, encoding="utf-8")
    result = subprocess.run(
        [*CLI, "--check-config", "-c", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPOSITORY / "src")},
    )
    assert "Traceback" not in result.stderr
    assert_one_line_verdict(result.returncode, result.stderr)
