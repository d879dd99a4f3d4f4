"""Times the dashboard's events page over HTTP on a database of synthetic events (100 000 by default).

Fills a fresh SQLite database in a temporary folder (bulk insert, the real schema), serves it with
the real dashboard (uvicorn on a loopback port), then requests the first page, a deep page and
each filter several times. Prints a table and writes the numbers as JSON to bench/results/.

    .venv/bin/python bench/bench_events_page.py            # 100 000 events, 20 requests each
    .venv/bin/python bench/bench_events_page.py --events 1000000 --repeat 10
    .venv/bin/python bench/bench_events_page.py --writers 8 --repeat 200   # pages while 8 workers write
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sqlite3
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from ipcam_analysis.config import AppConfig
from ipcam_analysis.metrics import Metrics
from ipcam_analysis.store import EventRecord, EventStore, LocalStorage, SqliteDatabase
from ipcam_analysis.store.queue import UploadQueue
from ipcam_analysis.values import Detection, Label, Upload
from ipcam_analysis.web import DashboardContext, WebServer, create_app

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_MS = 300
CAMERAS = [f"cam{number:02d}" for number in range(1, 9)]
# (label, share of events that have it): common, middling and rare, to test each plan.
LABELS = [("Person", 0.30), ("Car", 0.20), ("Tree", 0.50), ("Dog", 0.05), ("Bicycle", 0.002)]
OUTCOMES = [("no_match", 0.70), ("alert", 0.18), ("outside_window", 0.08), ("error", 0.004)]
DAYS = 30
# Under write load only the pages people open most are timed (the run is long enough already).
WRITE_LOAD_CASES = ("first page", "label, common (Person)", "API, first page")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000, help="events to create")
    parser.add_argument("--repeat", type=int, default=20, help="timed requests per case")
    parser.add_argument("--seed", type=int, default=4, help="random seed of the synthetic data")
    parser.add_argument(
        "--writers",
        type=int,
        default=0,
        help="threads that queue, claim, record and finish uploads as workers do, while timing",
    )
    parser.add_argument(
        "--output", type=Path, help="JSON file (default: bench/results/events_page-TIME.json)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-events-") as folder:
        data_dir = Path(folder)
        started = time.perf_counter()
        first_day = fill(data_dir / "ipcam_analysis.db", args.events, random.Random(args.seed))
        fill_seconds = time.perf_counter() - started
        print(f"{args.events} events written in {fill_seconds:.1f} s", file=sys.stderr)
        chosen = cases(args.events, first_day)
        if args.writers:
            chosen = [case for case in chosen if case[0] in WRITE_LOAD_CASES]
        results = measure(data_dir, chosen, args.repeat, args.writers)
    report = {
        "benchmark": "events page over HTTP",
        "when": datetime.now().astimezone().isoformat(timespec="seconds"),
        "events": args.events,
        "repeat": args.repeat,
        "writers": args.writers,
        "fill_seconds": round(fill_seconds, 2),
        "target_ms": TARGET_MS,
        "machine": {
            "python": platform.python_version(),
            "sqlite": sqlite3.sqlite_version,
            "platform": platform.platform(),
            "processor": platform.machine(),
        },
        "results": results,
    }
    print_table(results)
    output = args.output or RESULTS / f"events_page-{datetime.now():%Y%m%d-%H%M%S}.json"
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"Written to {output}", file=sys.stderr)
    return 0 if all(r["median_ms"] < TARGET_MS for r in results) else 1


def fill(path: Path, count: int, rng: random.Random) -> date:
    """`count` events over the last DAYS days, oldest first; returns the first day."""
    SqliteDatabase(path).close()  # the real schema, by the real migrations
    start = time.time() - DAYS * 86400
    step = DAYS * 86400 / count
    label_rows: list[tuple[int, str, float, int]] = []

    def event_rows() -> Iterator[tuple[Any, ...]]:
        for row, labels in events(count, start, step, rng):
            label_rows.extend(labels)
            yield row

    connection = sqlite3.connect(path)
    with connection:
        connection.executemany(
            "INSERT INTO events (id, camera, received_at, original_name, file_size, width,"
            " height, outcome, detector, detector_ms, cloud_calls, labels, triggered,"
            " snapshot, thumbnail) VALUES (?, ?, ?, ?, ?, 1280, 720, ?, 'rekognition', 180,"
            " 1, ?, ?, ?, ?)",
            event_rows(),
        )
        connection.executemany(
            "INSERT INTO event_labels (event_id, name, confidence, triggered) VALUES (?, ?, ?, ?)",
            label_rows,
        )
        connection.executemany(
            "INSERT INTO cameras (name, last_upload) VALUES (?, ?)",
            [(camera, time.time()) for camera in CAMERAS],
        )
    connection.close()
    return datetime.fromtimestamp(start).date()


def events(
    count: int, start: float, step: float, rng: random.Random
) -> Iterator[tuple[tuple[Any, ...], list[tuple[int, str, float, int]]]]:
    """(event row, its label rows) for each synthetic event, deterministic for one seed."""
    for number in range(1, count + 1):
        received = start + number * step
        outcome = _pick(OUTCOMES, rng, "corrupt")
        names = [name for name, share in LABELS if rng.random() < share]
        triggered = (
            [n for n in names if n in ("Person", "Car", "Dog")] if outcome == "alert" else []
        )
        labels = [
            {"name": n, "confidence": 90.0, "instances": [], "parents": [], "aliases": []}
            for n in names
        ]
        day = datetime.fromtimestamp(received).strftime("%Y-%m-%d")
        row = (
            number,
            CAMERAS[number % len(CAMERAS)],
            received,
            f"{day}/001/jpg/{number}.jpg",
            150_000,
            outcome,
            json.dumps(labels),
            json.dumps(triggered),
            f"{day}/{number}.jpg",
            f"{day}/{number}_thumb.jpg",
        )
        yield row, [(number, n, 90.0, int(n in triggered)) for n in names]


def _pick(choices: list[tuple[str, float]], rng: random.Random, otherwise: str) -> str:
    roll = rng.random()
    for value, share in choices:
        if roll < share:
            return value
        roll -= share
    return otherwise


def cases(count: int, first_day: date) -> list[tuple[str, str]]:
    middle = (first_day + timedelta(days=DAYS // 2)).isoformat()
    deep = max(1, count // 10)
    return [
        ("first page", "/"),
        ("deep page (before_id, 90% down)", f"/?before_id={deep}"),
        ("camera", "/?camera=cam03"),
        ("label, common (Person)", "/?label=Person"),
        ("label, rare (Bicycle)", "/?label=Bicycle"),
        ("outcome, common (alert)", "/?outcome=alert"),
        ("outcome, rare (error)", "/?outcome=error"),
        ("one day (since = until)", f"/?since={middle}&until={middle}"),
        ("since a date", f"/?since={middle}"),
        ("camera + label + outcome", "/?camera=cam03&label=Dog&outcome=alert"),
        ("label, deep page", f"/?label=Person&before_id={deep}"),
        ("API, first page", "/api/events"),
        ("API, label + deep page", f"/api/events?label=Car&before_id={deep}"),
    ]


def measure(
    data_dir: Path, requests: list[tuple[str, str]], repeat: int, writers: int = 0
) -> list[dict[str, Any]]:
    config = AppConfig.model_validate(
        {
            "data_dir": str(data_dir),
            "ftp_server": {"users": {camera: "bench-password" for camera in CAMERAS}},
            "detector": {"type": "local"},
        }
    )
    database = SqliteDatabase(data_dir / "ipcam_analysis.db")
    queue = UploadQueue(database)
    store = EventStore(database, LocalStorage(data_dir), config.history)
    context = DashboardContext(config, store, queue, Metrics(queue.depth), dict)
    server = WebServer(create_app(context), "127.0.0.1", 0)
    server.start()
    results = []
    stop_writing = threading.Event()
    written = [0] * writers
    threads = [
        threading.Thread(target=write_like_a_worker, args=(queue, store, stop_writing, written, n))
        for n in range(writers)
    ]
    for thread in threads:
        thread.start()
    try:
        with httpx.Client(base_url=server.url.rstrip("/"), timeout=60) as client:
            for name, path in requests:
                for _ in range(2):  # warm the page cache and the connection
                    client.get(path).raise_for_status()
                timings = []
                for _ in range(repeat):
                    began = time.perf_counter()
                    response = client.get(path)
                    timings.append((time.perf_counter() - began) * 1000)
                    response.raise_for_status()
                shown = (
                    response.text.count('class="card')
                    if "/api/" not in path
                    else len(response.json()["events"])
                )
                timings.sort()
                results.append(
                    {
                        "case": name,
                        "path": path,
                        "events_shown": shown,
                        "median_ms": round(statistics.median(timings), 1),
                        "p95_ms": round(timings[max(0, round(len(timings) * 0.95) - 1)], 1),
                        "p99_ms": round(timings[max(0, round(len(timings) * 0.99) - 1)], 1),
                        "max_ms": round(timings[-1], 1),
                    }
                )
    finally:
        stop_writing.set()
        for thread in threads:
            thread.join()
        server.stop()
        database.close()
    if writers:
        print(f"{sum(written)} uploads written by {writers} writer threads", file=sys.stderr)
    return results


def write_like_a_worker(
    queue: UploadQueue, store: EventStore, stop: threading.Event, written: list[int], number: int
) -> None:
    """The database writes of one analysis worker per upload: put, claim, detection, event, finish."""
    detection = Detection("local", (Label("Person", 80.0),), 20.0)
    while not stop.is_set():
        upload = Upload(
            f"cam{number % 8 + 1:02d}", Path("/nonexistent.jpg"), datetime.now().astimezone()
        )
        queue.put(upload)
        item = queue.claim()
        if item is None:
            continue
        queue.save_detection(item.id, detection)
        store.record(EventRecord(item.id, item.upload, "no_match", detection=detection))
        queue.finish(item.id, "no_match")
        written[number] += 1


def print_table(results: list[dict[str, Any]]) -> None:
    width = max(len(r["case"]) for r in results)
    print(
        f"{'case':<{width}}  {'shown':>5}  {'median ms':>9}  {'p95 ms':>7}  {'p99 ms':>7}"
        f"  {'max ms':>7}"
    )
    for r in results:
        print(
            f"{r['case']:<{width}}  {r['events_shown']:>5}  {r['median_ms']:>9.1f}"
            f"  {r['p95_ms']:>7.1f}  {r['p99_ms']:>7.1f}  {r['max_ms']:>7.1f}"
        )


if __name__ == "__main__":
    sys.exit(main())
