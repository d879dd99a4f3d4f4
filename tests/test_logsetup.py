"""The logging set-up the CLI, the tests and the benchmarks share: done once per service built,
it replaces only what it installed itself and keeps pytest's capture working."""

from __future__ import annotations

import logging
import logging.handlers
from pathlib import Path

import pytest

from ipcam_analysis.config import AppConfig
from ipcam_analysis.masking import MASK, SecretMaskingFilter
from ipcam_analysis.service.logsetup import configure_logging, remove_logging

SECRET = "pw-cam01-secret"


def config_in(folder: Path) -> AppConfig:
    return AppConfig.model_validate(
        {
            "detector": {"type": "local"},
            "data_dir": str(folder),
            "ftp_server": {"root_dir": str(folder / "ftp"), "users": {"cam01": SECRET}},
        }
    )


def file_handlers() -> list[logging.handlers.RotatingFileHandler]:
    root = logging.getLogger()
    return [h for h in root.handlers if isinstance(h, logging.handlers.RotatingFileHandler)]


def masking_filters(handler: logging.Handler) -> list[logging.Filter]:
    return [f for f in handler.filters if isinstance(f, SecretMaskingFilter)]


def test_configured_again_it_replaces_its_own_and_keeps_the_capture(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    others = list(logging.getLogger().handlers)  # pytest's capture
    levels = [logging.getLogger(name).level for name in ("", "ipcam_analysis", "pyftpdlib")]
    configure_logging(config_in(tmp_path / "one"), console=False, level="INFO")
    (first,) = file_handlers()
    configure_logging(config_in(tmp_path / "two"), console=False, level="INFO")
    try:
        (second,) = file_handlers()
        assert first.stream is None  # closed, not left open
        assert Path(second.baseFilename) == tmp_path / "two" / "ipcam_analysis.log"
        assert all(h in logging.getLogger().handlers for h in others)
        assert all(len(masking_filters(h)) == 1 for h in logging.getLogger().handlers)

        logging.getLogger("ipcam_analysis.test").info("camera password %s", SECRET)
        assert caplog.messages == [f"camera password {MASK}"]
        second.flush()
        logged = (tmp_path / "two" / "ipcam_analysis.log").read_text(encoding="utf-8")
        assert f"camera password {MASK}" in logged and SECRET not in logged
    finally:
        remove_logging()
    assert file_handlers() == [] and second.stream is None
    assert not any(masking_filters(h) for h in logging.getLogger().handlers)
    assert [logging.getLogger(name).level for name in ("", "ipcam_analysis", "pyftpdlib")] == levels


def test_the_log_file_rolls_over_at_its_size_and_keeps_its_backups(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ipcam_analysis.service.logsetup.LOG_FILE_BYTES", 4000)
    configure_logging(config_in(tmp_path), console=False, level="INFO")
    try:
        log = logging.getLogger("ipcam_analysis.test")
        for number in range(400):  # about 100 bytes a line: 40 000 bytes, 10 files' worth
            log.info("line %03d of a log that outgrows its file", number)
    finally:
        remove_logging()
    current = tmp_path / "ipcam_analysis.log"
    backups = sorted(tmp_path.glob("ipcam_analysis.log.*"))
    assert [path.name for path in backups] == [f"ipcam_analysis.log.{n}" for n in range(1, 6)]
    line = len(current.read_text(encoding="utf-8").splitlines()[0]) + 1
    for path in [current, *backups]:
        assert path.stat().st_size < 4000 + line  # rolled over within a line of its size
    assert "line 399" in current.read_text(encoding="utf-8")
    assert "line 399" not in backups[0].read_text(encoding="utf-8")
