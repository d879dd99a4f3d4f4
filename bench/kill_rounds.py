#!/usr/bin/env python3
"""Random SIGKILLs: rounds in which several cameras upload over FTP to a real `ipcam-analysis`
process while the cloud is slow and the mail server takes up to half a second to answer, each
round ended by a SIGKILL at a random moment; then one last start drains the queue, and the
accepted uploads are counted against the events, e-mails and cloud calls.

Reports lost uploads (accepted with a 226 and never an event: must be 0), e-mails sent twice
(and whether each copy kept the first one's Message-ID) and cloud calls paid twice.

    .venv/bin/python bench/kill_rounds.py                  # 24 kills, 6 cameras
    .venv/bin/python bench/kill_rounds.py --kills 40 --seed 7
"""

from __future__ import annotations

import argparse
import ftplib
import json
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from harness.aws import SCRIPT, Moto, start_moto  # noqa: E402
from harness.crash import PERSON, PERSON_JPEG, CrashRig  # noqa: E402
from harness.service import upload  # noqa: E402
from harness.smtp import running_sink  # noqa: E402

RESULT = ROOT / "bench" / "results" / "kill_rounds.json"
CLOUD_SECONDS = 0.3
CAMERA_PAUSE_SECONDS = (0.5, 2.0)  # between a camera's snapshots, as motion comes and goes
MAX_MAIL_REPLY_SECONDS = 0.5
CAMERA_PASSWORD = "bench-camera-password"


def cameras_upload(
    address: tuple[str, int], cameras: list[str], round_number: int
) -> tuple[threading.Event, list[threading.Thread], list[str]]:
    """Each camera uploads one snapshot after another until stopped (or its server dies);
    returns the stop switch, the threads and the names the server acknowledged with 226."""
    stop, accepted, lock = threading.Event(), [], threading.Lock()

    def camera(name: str) -> None:
        pause = random.Random(name + str(round_number))
        for number in range(10_000):
            if stop.wait(pause.uniform(*CAMERA_PAUSE_SECONDS)):
                return
            file_name = f"r{round_number:03d}-{name}-{number:04d}.jpg"
            try:
                upload(address, name, PERSON_JPEG, file_name, password=CAMERA_PASSWORD)
            except (OSError, EOFError, ftplib.Error):
                return  # the service was killed: a camera would retry it later
            with lock:
                accepted.append(file_name)

    threads = [threading.Thread(target=camera, args=(name,), daemon=True) for name in cameras]
    for thread in threads:
        thread.start()
    return stop, threads, accepted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=24, help="rounds, each ended by SIGKILL")
    parser.add_argument("--cameras", type=int, default=6)
    parser.add_argument("--max-round-seconds", type=float, default=4.0)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    chance = random.Random(args.seed)
    cameras = [f"cam{number:02d}" for number in range(1, args.cameras + 1)]
    server, endpoint = start_moto()
    SCRIPT.labels, SCRIPT.delay_seconds = [PERSON], CLOUD_SECONDS
    accepted: list[str] = []
    started = time.monotonic()
    try:
        with running_sink(with_login=False) as sink, tempfile.TemporaryDirectory() as folder:
            sink.max_data_reply_seconds = MAX_MAIL_REPLY_SECONDS
            users = {"users": dict.fromkeys(cameras, CAMERA_PASSWORD)}
            rig = CrashRig(
                Path(folder), Moto(endpoint, SCRIPT), sink, {"ftp_server": users, "workers": 2}
            )
            try:
                for round_number in range(args.kills):
                    process = rig.start()
                    stop, threads, names = cameras_upload(process.address(), cameras, round_number)
                    time.sleep(chance.uniform(0.2, args.max_round_seconds))  # the random moment
                    process.kill()
                    stop.set()
                    for thread in threads:
                        thread.join(60)
                    accepted += names
                    print(f"round {round_number + 1}: {len(names)} accepted, killed", flush=True)
                last = rig.start()
                rig.wait_drained(timeout=600)
                last.terminate()
                tally = rig.tally()
                recorded = {
                    row[0].rpartition("/")[2]
                    for row in rig.query("SELECT original_name FROM events")
                }
            finally:
                rig.stop_all()
    finally:
        server.stop()
    lost = sorted(set(accepted) - recorded)
    result = {
        "kills": args.kills,
        "cameras": args.cameras,
        "seed": args.seed,
        "cloud_seconds": CLOUD_SECONDS,
        "camera_pause_seconds": CAMERA_PAUSE_SECONDS,
        "max_mail_reply_seconds": MAX_MAIL_REPLY_SECONDS,
        "accepted_with_226": len(accepted),
        "queued": tally.uploads,
        "lost": len(lost),
        "lost_names": lost,
        "uploads_with_more_than_one_event": sum(
            1 for count in tally.events_per_upload.values() if count > 1
        ),
        "alerts": tally.alerts,
        "emails": tally.emails,
        "duplicate_emails": tally.duplicate_emails,
        "duplicates_with_a_new_message_id": tally.duplicates_with_new_message_id,
        "cloud_calls": tally.cloud_calls,
        "extra_cloud_calls": tally.extra_cloud_calls,
        "seconds": round(time.monotonic() - started),
    }
    RESULT.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        f"kills: {args.kills}, accepted: {len(accepted)}, queued: {tally.uploads},"
        f" lost: {len(lost)}, duplicate e-mails: {tally.duplicate_emails}"
        f" (with a new Message-ID: {tally.duplicates_with_new_message_id}),"
        f" extra cloud calls: {tally.extra_cloud_calls}"
    )
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
