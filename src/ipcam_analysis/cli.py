"""The command line: the original's flags, sub-commands for the tools, one line per error."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import yaml

from ipcam_analysis import __version__
from ipcam_analysis.config import AppConfig, load_config
from ipcam_analysis.config.warnings import config_warnings
from ipcam_analysis.errors import ConfigError, UserError
from ipcam_analysis.service.instance_lock import AlreadyRunningError
from ipcam_analysis.values import ROLES

log = logging.getLogger("ipcam_analysis")

LOG_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
EXIT_OK, EXIT_FAILURE, EXIT_CONFIG = 0, 1, 2

EPILOG = """exit codes: 0 success, 1 a failure at run time (a test failed, a port in use, ...),
2 a bad configuration or command line.
License: GNU GPLv3 or later."""


def _subcommands() -> dict[str, ModuleType]:
    """Every sub-command, by name; each module has add_arguments(parser) and run(args, config)."""
    from ipcam_analysis.commands import detect, evaluate, hash_password, zones

    return {
        "detect": detect,
        "evaluate": evaluate,
        "hash-password": hash_password,
        "zones": zones,
    }


def _add_common_options(parser: argparse.ArgumentParser, *, defaults: bool) -> None:
    # Sub-commands accept the same options so they may come before or after the command name.
    def default(value: object) -> object:
        return value if defaults else argparse.SUPPRESS

    parser.add_argument(
        "-c",
        "--config",
        default=default("config.yaml"),
        help="configuration file (default: config.yaml)",
    )
    parser.add_argument(
        "-n",
        "--enable-console-log",
        action="store_true",
        default=default(False),
        help="also log to the console",
    )
    parser.add_argument(
        "-l",
        "--log-level",
        choices=LOG_LEVELS,
        default=default("INFO"),
        help="log level of ipcam_analysis (default: INFO)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ipcam-analysis",
        description="FTP server for IP cameras: analyses every snapshot and notifies you "
        "when the objects you care about appear.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_common_options(parser, defaults=True)
    parser.add_argument(
        "-t",
        "--test-aws",
        action="store_true",
        help="test AWS credentials, Rekognition and the e-mail settings, then exit",
    )
    parser.add_argument(
        "--check-config",
        action="store_true",
        help="validate the configuration, print it with secrets masked, and exit",
    )
    parser.add_argument(
        "--role",
        type=_roles,
        default=ROLES,
        metavar="ROLES",
        help="what this node runs, comma-separated: ingest (the listeners cameras send to),"
        " worker (the analysis), web (the dashboard); default: all three. Nodes sharing a"
        " PostgreSQL database (database.url) can each run some",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module in _subcommands().items():
        sub = commands.add_parser(name, help=module.__doc__, description=module.__doc__)
        _add_common_options(sub, defaults=False)
        module.add_arguments(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _run(args)
    except ConfigError as exc:
        print(f"Configuration error: {one_line(exc)}", file=sys.stderr)
        return EXIT_CONFIG
    except UserError as exc:
        # "Another ipcam-analysis is already running ..." is no error of this run: it says all.
        prefix = "" if isinstance(exc, AlreadyRunningError) else "Error: "
        print(f"{prefix}{one_line(exc)}", file=sys.stderr)
        log.error("%s", exc)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return EXIT_FAILURE
    except Exception as exc:
        log.debug("Unexpected error", exc_info=True)
        print(
            f"Unexpected error: {type(exc).__name__}: {one_line(exc)}"
            " (run with -l DEBUG for details)",
            file=sys.stderr,
        )
        return EXIT_FAILURE


def one_line(exc: BaseException) -> str:
    """The message with line breaks and other control characters escaped: a file name or a key
    in it may hold any character, and the promise is one line."""
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in str(exc))


def _run(args: argparse.Namespace) -> int:
    command = _subcommands()[args.command] if args.command else None
    if command is not None and not getattr(command, "NEEDS_CONFIG", True):
        return int(command.run(args, None))  # e.g. hash-password, which helps write the config
    config_path = Path(args.config)
    config = _load_for(args, config_path)
    warnings = config_warnings(config)
    if args.check_config:
        print(yaml.safe_dump(config.masked_dump(), sort_keys=False, allow_unicode=True), end="")
        for warning in warnings:
            print(f"Warning: {warning}", file=sys.stderr)
        print(f"Configuration OK: {config_path.resolve()}", file=sys.stderr)
        return EXIT_OK

    if command is None and not args.test_aws:
        return _serve(config, args, config_path, warnings)
    from ipcam_analysis.service.logsetup import configure_logging

    configure_logging(config, console=args.enable_console_log, level=args.log_level)
    _log_loaded(config_path, warnings)
    if command is not None:
        return int(command.run(args, config))
    from ipcam_analysis.commands import check_aws

    return check_aws.run(config)


def _log_loaded(path: Path, warnings: list[str]) -> None:
    log.info("Loading configuration from %s", path.resolve())
    for warning in warnings:
        log.warning("%s", warning)


def _load_for(args: argparse.Namespace, path: Path) -> AppConfig:
    """The service needs its config; the tools work without one, with the local detector."""
    if args.command and not path.exists() and args.config == "config.yaml":
        return AppConfig.model_validate({"detector": {"type": "local"}, "data_dir": "data"})
    return load_config(path)


def _roles(text: str) -> tuple[str, ...]:
    roles = tuple(role.strip() for role in text.split(",") if role.strip())
    unknown = [role for role in roles if role not in ROLES]
    if unknown or not roles:
        raise argparse.ArgumentTypeError(
            f"{', '.join(unknown) or 'nothing'}: the roles are {', '.join(ROLES)}"
        )
    return roles


def _serve(
    config: AppConfig, args: argparse.Namespace, config_path: Path, warnings: list[str]
) -> int:
    from ipcam_analysis.net.limits import raise_open_files_limit
    from ipcam_analysis.service.app import build_service

    service = build_service(
        config, roles=args.role, console=args.enable_console_log, log_level=args.log_level
    )
    _log_loaded(config_path, warnings)
    raise_open_files_limit()
    listening = service.run_until_signalled(
        on_started=lambda: print("IP Camera Analysis started", flush=True)
    )
    return EXIT_OK if listening else EXIT_FAILURE  # else a listener closed: to be restarted


if __name__ == "__main__":
    sys.exit(main())
