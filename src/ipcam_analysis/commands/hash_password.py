"""Hash a dashboard password (read from standard input) for the config's web.password_hash."""

from __future__ import annotations

import argparse
import getpass
import sys

from ipcam_analysis.config import AppConfig
from ipcam_analysis.web.auth import hash_password

# It is how a config gets its password_hash, so it must run before that config is valid.
NEEDS_CONFIG = False


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.epilog = (
        "Type the password when asked, or pipe it in: "
        "printf '%s' \"$PASSWORD\" | ipcam-analysis hash-password. "
        "Paste the printed line as web.password_hash, next to web.username."
    )


def run(args: argparse.Namespace, config: AppConfig | None) -> int:
    """Print the hash on standard output; 0 on success, 1 when no usable password was given."""
    if sys.stdin.isatty():
        password = getpass.getpass("Dashboard password: ")
        if getpass.getpass("Same password again: ") != password:
            return _refuse("the two passwords differ")
    else:
        # One line: the newline `echo` adds is not part of the password.
        password = sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    if not password:
        return _refuse("the password is empty")
    print(hash_password(password))
    return 0


def _refuse(problem: str) -> int:
    # Printed here rather than raised: logging is not set up for a command without a config.
    print(f"Error: {problem}; nothing was hashed", file=sys.stderr)
    return 1
