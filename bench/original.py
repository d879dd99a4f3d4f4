"""The original ipcam_analysis.py (2020, GPL-3.0) as a real process, for bench/side_by_side.py.

Its code is not in this repository (a different licence and provenance): the benchmark takes
a checkout of https://github.com/aquaticus/ipcam_analysis at commit 14c1c5f2 (its only
commit), e.g. `git clone https://github.com/aquaticus/ipcam_analysis /tmp/original-ipcam`.
It runs, unchanged, in a venv of its own with the versions it was written for: Pillow 9.5
(it calls `font.getsize`, removed in Pillow 10), pyftpdlib 1.5.6 (asyncore: Python ≤ 3.11),
PyYAML and boto3 (≥ 1.28 honours AWS_ENDPOINT_URL, so it talks to moto unchanged).
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

from bench import common

URL = "https://github.com/aquaticus/ipcam_analysis"
COMMIT = "14c1c5f2"
FILES = ("ipcam_analysis.py", "process.py", "config.py", "log_config.yaml")
REQUIREMENTS = ("Pillow==9.5.0", "pyftpdlib==1.5.6", "PyYAML", "boto3")
EXPECTED_VERSIONS = ["9.5.0", "1.5.6"]  # Pillow, pyftpdlib: what the probe below prints
VERSIONS_PROBE = (
    "import PIL, pyftpdlib, yaml, boto3;"
    " print(PIL.__version__, pyftpdlib.__ver__, boto3.__version__)"
)
START_SECONDS = 60.0


class OriginalUnavailable(RuntimeError):
    """The original cannot be run here; the message says why and where to get it."""


def check_checkout(checkout: Path) -> None:
    missing = [name for name in FILES if not (checkout / name).is_file()]
    if missing:
        raise OriginalUnavailable(
            f"{checkout} is not a checkout of the original (no {', '.join(missing)}): "
            f"git clone {URL} (commit {COMMIT})"
        )


def ensure_venv(venv: Path, python: str) -> tuple[Path, str]:
    """The venv's interpreter and its `Pillow pyftpdlib boto3` versions; made (from PyPI) when
    missing or holding other versions, reused otherwise."""
    interpreter = venv / "bin" / "python"
    versions = _versions(interpreter)
    if versions[:2] != EXPECTED_VERSIONS:
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        pip = [str(interpreter), "-m", "pip", "install", "--quiet", *REQUIREMENTS]
        if subprocess.run(pip).returncode != 0:
            raise OriginalUnavailable(f"pip could not install {' '.join(REQUIREMENTS)}")
        versions = _versions(interpreter)
        if versions[:2] != EXPECTED_VERSIONS:
            raise OriginalUnavailable(f"{venv} holds Pillow/pyftpdlib {versions}, not 9.5.0/1.5.6")
    return interpreter, " ".join(versions)


def _versions(interpreter: Path) -> list[str]:
    if not interpreter.exists():
        return []
    probe = subprocess.run(
        [str(interpreter), "-c", VERSIONS_PROBE], capture_output=True, text=True, check=False
    )
    return probe.stdout.split() if probe.returncode == 0 else []


def config(
    work: Path, port: int, passwords: dict[str, str], checkout: Path, subject: str
) -> dict[str, Any]:
    """A config in the original's own format (its config.yaml's keys and values), every upload
    in scope: no time window, files removed, e-mail through SES in one region."""
    return {
        "new_labels_only": False,
        "labels": ["Person", "Animal", "Vehicle"],
        "log_configuration_file": str(checkout / "log_config.yaml"),  # logs to CWD, as shipped
        "aws_region": "eu-west-1",
        "ftp_server": {
            "root_dir": str(work / "ftp"),
            "port": port,
            "remove_files": True,
            "users": dict(passwords),
        },
        "email": {
            "sender_email": "sender@example.com",
            "sender_name": "Ipcam Analysis",
            "message_html": "<p>List of objects:</p>$list<p>$image</p>",
            "subject": subject,
            "recipients": ["your_email@example.com"],
        },
        "rekognition": {
            "max_labels": 10,
            "min_confidence_percent": 85,
            "image_resize_percent": 100,
        },
    }


def write_config(settings: dict[str, Any], work: Path) -> Path:
    path = work / "config.yaml"
    path.write_text(yaml.safe_dump(settings, allow_unicode=True), encoding="utf-8")
    return path


@contextmanager
def running(
    interpreter: Path, checkout: Path, config_file: Path, port: int, env: dict[str, str]
) -> Iterator[int]:
    """`ipcam_analysis.py -c config.yaml` started from the config's folder (its log file goes
    there); yields its PID once its FTP port answers."""
    work = config_file.parent
    with (work / "console.log").open("wb") as console:
        process = subprocess.Popen(
            [str(interpreter), str(checkout / "ipcam_analysis.py"), "-c", str(config_file)],
            cwd=work,
            env=env,
            stdout=console,
            stderr=subprocess.STDOUT,
        )
        try:
            _wait_listening(process, port, work)
            yield process.pid
        finally:
            process.terminate()  # no handler: SIGTERM ends it at once, as systemd would
            process.wait(30)


def _wait_listening(process: subprocess.Popen[bytes], port: int, work: Path) -> None:
    def listening() -> bool:
        if process.poll() is not None:
            output = (work / "console.log").read_text(errors="replace")
            raise OriginalUnavailable(f"the original exited ({process.returncode}):\n{output}")
        try:
            socket.create_connection((common.LOOPBACK, port), timeout=1).close()
        except OSError:
            return False
        return True

    common.wait_for(listening, START_SECONDS, "the original's FTP listener", poll=0.05)
