#!/usr/bin/env python3
"""Side by side with the original: alerts per second and 226 → alert e-mail latency of the
original ipcam_analysis.py and of this service (one process, and `worker_processes: 2`), one
after the other in one run, under the same load: 4 cameras uploading 40 snapshots each at once
over real FTP (ftplib, a new session per upload as cameras do), a cloud answering a person with
a box after 0.2 s, every upload alerting and e-mailed through SES.

Both systems run as real processes against the same moto server (the AWS mock, over HTTP on
loopback, in its own process): DetectLabels answers after --cloud-seconds, SES takes the
e-mails, and each alert e-mail is timestamped as moto records it. Both read one config file in
the original's format (its keys and values, no time window); ours gets four keys more
(data_dir, workers (--workers, the service's default), worker_processes, web.enabled: false). Every
upload is a different picture (neither system drops repeated frames by default; distinct
pictures make sure of it). Before each timed load, one untimed upload per camera warms each
system up. --rounds repeats the three systems, in a rotated order each round, against the
drift of this shared machine.

The original is not in this repository (GPL-3.0, another provenance). Pass a checkout of
https://github.com/aquaticus/ipcam_analysis at commit 14c1c5f2 (its only commit) with
--original; it runs unchanged in a venv of its own (--venv), made on first use from PyPI with
Pillow 9.5.0, pyftpdlib 1.5.6, PyYAML and boto3 (see bench/original.py):

    git clone https://github.com/aquaticus/ipcam_analysis /tmp/original-ipcam
    .venv/bin/python bench/side_by_side.py --original /tmp/original-ipcam --rounds 3

alerts/s = alert e-mails / (the first upload's start → the last alert e-mail recorded by moto);
latency = a camera's k-th 226 → its k-th alert e-mail, both in time order (e-mails carry no
upload name); "from start" = from the upload's start instead (the original's camera waits for
its 226 while another upload is analysed, so its wait comes before the 226). Where the time goes, over the same window: "cores" = CPU seconds the system used
(its process and its children) / the window; "CPU wait" = the time its threads were runnable
but found no free core (Linux schedstat); moto's cores; how busy the whole machine was and how
many cores others used meanwhile (this VM is shared); for ours, how often all its workers were
busy while uploads waited, how long an upload took in a worker (Little's law over the sampled
queue), and its own timing of the cloud call. Meanwhile a probe (its own process, its own
loopback address) logs in over FTP every 0.1 s: how long a camera's login waits.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import socket
import statistics
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageOps

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from bench import common, observe, original  # noqa: E402
from bench.camera_load import Load, probed_logins, run_load  # noqa: E402
from bench.moto_mail import Mail, MotoMail, moto  # noqa: E402
from ipcam_analysis.config import AppConfig  # noqa: E402

# Issue 24: ≥ 10× the original's alerts per second with one process, ≥ 12× with two, every
# upload alerted, and a login never waiting more than 0.2 s meanwhile.
GOAL_RATIOS = {1: 10.0, 2: 12.0}
GOAL_LOGIN_MS = 200.0
ALERT_SUBJECT = "⚡ $camera: detected new objects"  # the original's own; names the camera
PERSON_BOX = (0.42, 0.30, 0.12, 0.45)  # left, top, width, height
ORIGINAL = "original"
PORT_ATTEMPTS = 5
WAIT_SECONDS = 300.0  # for a load's e-mails: the original takes ~0.3 s per upload


@dataclass(frozen=True)
class System:
    name: str
    processes: int  # worker_processes; 0 for the original


@dataclass(frozen=True)
class Setup:
    """What every case shares."""

    checkout: Path
    interpreter: Path
    passwords: dict[str, str]
    pictures: list[bytes]
    uploads: int
    workers: int  # ours' analysis threads per process
    logs: Path | None  # where to keep each case's log file
    profiles: Path | None  # where to write each case's py-spy profile
    mail: MotoMail
    moto_pid: int


def main() -> int:
    args = parse_args()
    common.exit_on_sigterm()
    try:
        original.check_checkout(args.original)
        interpreter, versions = original.ensure_venv(args.venv, args.python)
    except original.OriginalUnavailable as exc:
        print(f"The original cannot be run: {exc}", file=sys.stderr)
        return 2
    systems = [System(ORIGINAL, 0), *(System(f"ours ×{n}", n) for n in args.processes)]
    names = common.camera_names(args.cameras)
    passwords = {name: f"{name}-pw-{index:04d}" for index, name in enumerate(names, 1)}
    pictures = distinct_pictures(args.cameras * (args.uploads + args.warmup), args.size)
    load_before = common.load_average()
    person = [label_person()]
    with moto(person, args.cloud_seconds) as (mail, moto_pid):
        setup = Setup(
            args.original, interpreter, passwords, pictures, args.uploads,
            args.workers, args.logs, args.profiles, mail, moto_pid,
        )  # fmt: skip
        results = []
        for round_number in range(1, args.rounds + 1):
            shift = (round_number - 1) % len(systems)
            for system in systems[shift:] + systems[:shift]:
                results.append(measure(system, round_number, setup))
        recorded = mail.recorded_by_moto()
    summary = summarise(results, systems)
    print_results(results, summary)
    settings = {
        "cameras": args.cameras,
        "uploads_per_camera": args.uploads,
        "warmup_per_camera": args.warmup,
        "cloud_seconds": args.cloud_seconds,
        "size": args.size,
        "workers": args.workers,
        "original_versions": f"Pillow pyftpdlib boto3: {versions}",
        "original_commit": original.COMMIT,
        "emails_in_moto": recorded,
        "emails_seen": mail.total(),
        "load_before": load_before,
        "load_after": common.load_average(),
    }
    payload = {"settings": settings, "summary": summary, "results": results}
    common.write_results("side_by_side", payload, args.output)
    return 0


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--original", type=Path, required=True, help=f"a checkout of {original.URL}"
    )
    parser.add_argument("--venv", type=Path, default=Path("/tmp/original-venv"))
    parser.add_argument(
        "--python",
        default=getattr(sys, "_base_executable", sys.executable),
        help="the interpreter the original's venv is made with (≤ 3.11: pyftpdlib 1.5.6)",
    )
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--uploads", type=int, default=40, help="timed uploads per camera")
    parser.add_argument("--warmup", type=int, default=1, help="untimed uploads per camera")
    parser.add_argument("--cloud-seconds", type=float, default=0.2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--workers",
        type=int,
        default=AppConfig.model_fields["workers"].default,
        help="ours' analysis threads per process (default: ours' default, %(default)s)",
    )
    parser.add_argument("--size", default="800x488", help="snapshot size")
    parser.add_argument("--logs", type=Path, help="keep each system's log file in this folder")
    parser.add_argument(
        "--profiles",
        type=Path,
        help="py-spy (in .venv/bin) samples each system's processes on CPU during the timed"
        " load into this folder (raw format, for bench/profile_summary.py)",
    )
    parser.add_argument("--output", type=Path, help="JSON file (default bench/results/...)")
    return parser.parse_args()


def distinct_pictures(count: int, size: str) -> list[bytes]:
    """`count` different snapshots of people: the eval photo cropped at shifting places."""
    width, height = common.parse_size(size)
    pictures = []
    with Image.open(common.IMAGES / common.PERSON_PHOTO) as photo:
        rgb = photo.convert("RGB")
        for index in range(count):
            centre = (index / max(1, count - 1), 1 - index / max(1, count - 1))
            scaled = (int(rgb.width * 0.9), int(rgb.height * 0.9))
            crop = ImageOps.fit(rgb, scaled, Image.Resampling.BILINEAR, centering=centre)
            buffer = io.BytesIO()
            crop.resize((width, height), Image.Resampling.LANCZOS).save(buffer, "JPEG", quality=85)
            pictures.append(buffer.getvalue())
    return pictures


def label_person() -> dict[str, Any]:
    from harness.aws import label

    return label("Person", 97.0, boxes=(PERSON_BOX,))


# ---- one system under the load ----------------------------------------------------------------


def measure(system: System, round_number: int, setup: Setup) -> dict[str, Any]:
    """A fresh system: started, warmed up, the timed load, its e-mails awaited, stopped."""
    case = f"round{round_number}-{system.processes or 'original'}"
    timed = setup.uploads * len(setup.passwords)
    with (
        tempfile.TemporaryDirectory(prefix="side-by-side-") as folder,
        started(system, Path(folder), setup) as (pid, port),
    ):
        load_before = common.load_average()
        mark = setup.mail.count()
        warm = run_load(port, setup.passwords, setup.pictures[timed:], first_number=timed)
        awaited(setup.mail, mark, warm.accepted, system)

        def load_and_wait() -> tuple[Load, list[Mail]]:
            start = setup.mail.count()
            load = run_load(port, setup.passwords, setup.pictures[:timed])
            return load, awaited(setup.mail, start, load.accepted, system)

        database = common.database_of(Path(folder)) if system.processes else None
        profile = kept_file(setup.profiles, f"{case}.txt")
        probe_user = next(iter(setup.passwords))
        with probed_logins(port, probe_user, setup.passwords[probe_user]) as logins:
            observed = observe.observe(pid, setup.moto_pid, load_and_wait, database, profile)
        cloud_calls_ms = common.percentiles(observe.cloud_call_times(database, setup.uploads))
        if log := kept_file(setup.logs, f"{case}.log"):
            shutil.copyfile(Path(folder) / "ipcam_analysis.log", log)
    result = {
        "system": system.name,
        "worker_processes": system.processes or None,
        "round": round_number,
        "uploads": timed,
        **observed.figures(),
        "probe_login_ms": logins,
        "load_before": load_before,
        "load_after": common.load_average(),
    }
    if system.processes:
        result["workers_busy"] = observe.workers_busy(observed, system.processes * setup.workers)
        result["cloud_call_ms"] = cloud_calls_ms
    print(
        f"{case}: {result['alerts']} alerts in {result['seconds']:.2f} s ="
        f" {result['alerts_per_second']}/s, {result['cores']} cores, load {load_before}",
        file=sys.stderr,
    )
    return result


def kept_file(folder: Path | None, name: str) -> Path | None:
    if folder is None:
        return None
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name


@contextmanager
def started(system: System, work: Path, setup: Setup) -> Iterator[tuple[int, int]]:
    """The system as a real process on a free port: (its PID, the port); on another port when
    someone took the free one before the system could (other tests share this machine)."""
    for attempt in range(1, PORT_ATTEMPTS + 1):
        port = wildcard_free_port()
        with ExitStack() as stack:
            try:
                pid = stack.enter_context(_started_on(port, system, work, setup))
            except RuntimeError as exc:
                if "Address already in use" in str(exc) and attempt < PORT_ATTEMPTS:
                    continue
                raise
            yield pid, port
            return


def wildcard_free_port() -> int:
    """A port free on every address: both systems listen on all of them, where a connection
    of an earlier case in TIME_WAIT can hold a port still free on 127.0.0.1 alone."""
    with socket.socket() as probe:
        probe.bind(("", 0))
        return int(probe.getsockname()[1])


@contextmanager
def _started_on(port: int, system: System, work: Path, setup: Setup) -> Iterator[int]:
    settings = original.config(work, port, setup.passwords, setup.checkout, ALERT_SUBJECT)
    if system.processes == 0:
        config_file = original.write_config(settings, work)
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        with original.running(setup.interpreter, setup.checkout, config_file, port, env) as pid:
            yield pid
        return
    settings.update(
        data_dir=str(work / "data"),
        workers=setup.workers,
        worker_processes=system.processes,
        web={"enabled": False},
    )
    with common.service_process(settings, work) as pid:
        common.wait_for(
            lambda: analysis_ready(pid, system.processes, setup.workers),
            common.CHILD_START_SECONDS,
            "the worker processes",
            poll=0.1,
        )
        yield pid


def analysis_ready(pid: int, processes: int, workers: int) -> bool:
    """With worker processes: each child runs (more threads than its workers); otherwise the
    main process started its workers before its FTP listener."""
    if processes == 1:
        return True
    children = [
        child for child in common.process_tree(pid)[1:] if common.thread_count(child) > workers
    ]
    return len(children) >= processes


def awaited(mail: MotoMail, mark: int, expected: int, system: System) -> list[Mail]:
    """The alert e-mails since `mark`, once `expected` have come (or what came in time)."""
    try:
        common.wait_for(lambda: mail.count() - mark >= expected, WAIT_SECONDS, "the e-mails")
    except TimeoutError:
        print(f"{system.name}: {mail.count() - mark} of {expected} e-mails", file=sys.stderr)
    return mail.since(mark)


# ---- the figures --------------------------------------------------------------------------------


def summarise(results: list[dict[str, Any]], systems: list[System]) -> dict[str, Any]:
    """Per system: the median alerts/s over the rounds, p50/p99 over every latency, and the
    ratio to the original's rate in the same round."""
    by_round = {(r["round"], r["system"]): r for r in results}
    summary: dict[str, Any] = {}
    for system in systems:
        own = [r for r in results if r["system"] == system.name]
        rates = [r["alerts_per_second"] for r in own]
        entry: dict[str, Any] = {
            "alerts_per_second_median": round(statistics.median(rates), 2),
            "alerts_per_second": rates,
            "latency_p50_ms_median": round(
                statistics.median(r["latency_ms"].get("p50", 0) for r in own), 1
            ),
            "latency_p99_ms_median": round(
                statistics.median(r["latency_ms"].get("p99", 0) for r in own), 1
            ),
            "from_start_p50_ms_median": round(
                statistics.median(r["latency_from_start_ms"].get("p50", 0) for r in own), 1
            ),
            "from_start_p99_ms_median": round(
                statistics.median(r["latency_from_start_ms"].get("p99", 0) for r in own), 1
            ),
            "cores_median": round(statistics.median(r["cores"] or 0 for r in own), 2),
        }
        if system.processes:
            ratios = [
                r["alerts_per_second"] / base
                for r in own
                if (base := by_round[(r["round"], ORIGINAL)]["alerts_per_second"])
            ]
            entry["ratio_to_original"] = [round(ratio, 2) for ratio in ratios]
            entry["ratio_to_original_median"] = round(statistics.median(ratios), 2)
            entry["probe_login_max_ms"] = max(r["probe_login_ms"].get("max", 0.0) for r in own)
            entry["every_upload_alerted"] = all(r["alerts"] == r["uploads"] for r in own)
            entry["goal_met"] = (
                statistics.median(ratios) >= GOAL_RATIOS.get(system.processes, 0.0)
                and entry["probe_login_max_ms"] <= GOAL_LOGIN_MS
                and entry["every_upload_alerted"]
            )
        summary[system.name] = entry
    return summary


# The table's columns: header, and the cell of one result.
COLUMNS: list[tuple[str, Callable[[dict[str, Any]], Any]]] = [
    ("round", lambda r: r["round"]),
    ("system", lambda r: r["system"]),
    ("alerts", lambda r: f"{r['alerts']}/{r['uploads']}"),
    ("seconds", lambda r: r["seconds"]),
    ("alerts/s", lambda r: r["alerts_per_second"]),
    ("p50 ms", lambda r: r["latency_ms"].get("p50", "")),
    ("p99 ms", lambda r: r["latency_ms"].get("p99", "")),
    ("from start p50", lambda r: r["latency_from_start_ms"].get("p50", "")),
    ("p99", lambda r: r["latency_from_start_ms"].get("p99", "")),
    ("e-mail KB", lambda r: r["email_kb"]),
    ("cores", lambda r: r["cores"]),
    ("CPU ms/alert", lambda r: r["cpu_ms_per_alert"]),
    ("CPU wait ms/alert", lambda r: r["cpu_wait_ms_per_alert"]),
    ("moto cores", lambda r: r["moto_cores"]),
    ("machine busy", lambda r: f"{r['machine_busy_share']:.0%}"),
    ("others' cores", lambda r: r["others_cores"]),
    (
        "workers all busy",
        lambda r: r.get("workers_busy", {}).get("all_busy_uploads_waiting_share", "-"),
    ),
    (
        "s/upload in a worker",
        lambda r: r.get("workers_busy", {}).get("seconds_per_upload_in_a_worker", "-"),
    ),
    ("cloud call p50 ms", lambda r: r.get("cloud_call_ms", {}).get("p50", "-")),
    ("login p50 ms", lambda r: r["probe_login_ms"].get("p50", "-")),
    ("login max ms", lambda r: r["probe_login_ms"].get("max", "-")),
    ("load before", lambda r: " ".join(map(str, r["load_before"]))),
]


def print_results(results: list[dict[str, Any]], summary: dict[str, Any]) -> None:
    rows = [[cell(result) for _, cell in COLUMNS] for result in results]
    common.print_table([header for header, _ in COLUMNS], rows)
    for name, entry in summary.items():
        ratio = entry.get("ratio_to_original_median")
        print(
            f"{name}: {entry['alerts_per_second_median']} alerts/s (median), p50"
            f" {entry['latency_p50_ms_median']} ms, p99 {entry['latency_p99_ms_median']} ms"
            + (f", {ratio}× the original ({entry['ratio_to_original']})" if ratio else "")
            + (
                f"; probe login max {entry['probe_login_max_ms']} ms; goal met: {entry['goal_met']}"
                if ratio
                else ""
            )
        )


if __name__ == "__main__":
    sys.exit(main())
