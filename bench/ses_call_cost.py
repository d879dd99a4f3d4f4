#!/usr/bin/env python3
"""What one AWS call costs the caller's CPU (boto3 building, signing and sending it; moto
answering in its own process): SES's SendRawEmail (the v1 query API, which the original and
ours use) against SESv2's SendEmail with the same raw alert e-mail, and DetectLabels with the
picture. bench/side_by_side.py found the SES call to be the largest part of an alert's CPU.

    .venv/bin/python bench/ses_call_cost.py
    .venv/bin/python bench/ses_call_cost.py --size 1920x1080 --calls 50
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from email import policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT)]

from bench import common  # noqa: E402
from bench.moto_mail import moto  # noqa: E402
from harness.aws import REGION, label  # noqa: E402

SENDER, RECIPIENT = "sender@example.com", "your_email@example.com"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="800x488", help="snapshot size")
    parser.add_argument("--calls", type=int, default=30, help="timed calls of each kind")
    parser.add_argument("--output", type=Path, help="JSON file (default bench/results/...)")
    args = parser.parse_args()
    picture = common.snapshot_jpeg(common.parse_size(args.size))
    raw = alert_email(picture)
    with moto([label("Person", 97.0, boxes=((0.42, 0.30, 0.12, 0.45),))], 0.0) as (_mail, _pid):
        results = [{"call": name, **timed(call, args.calls)} for name, call in calls(raw, picture)]
    common.print_table(
        ["call", "client CPU ms", "wall ms"],
        [[r["call"], r["cpu_ms"], r["wall_ms"]] for r in results],
    )
    settings = {"size": args.size, "calls": args.calls, "email_kb": round(len(raw) / 1024, 1)}
    common.write_results("ses_call_cost", {"settings": settings, "results": results}, args.output)
    return 0


def alert_email(picture: bytes) -> bytes:
    """An alert-like e-mail: text and HTML parts, the picture attached."""
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = SENDER, RECIPIENT, "cam01: Person"
    message.set_content("Person 97%")
    message.add_alternative("<p><b>Person</b>: 97%</p>", subtype="html")
    message.add_attachment(picture, "image", "jpeg", filename="cam01.jpg")
    return message.as_bytes(policy=policy.SMTP)


def calls(raw: bytes, picture: bytes) -> list[tuple[str, Callable[[], Any]]]:
    import boto3

    ses = boto3.client("ses", region_name=REGION)
    sesv2 = boto3.client("sesv2", region_name=REGION)
    rekognition = boto3.client("rekognition", region_name=REGION)
    return [
        (
            "ses SendRawEmail (v1, query API)",
            lambda: ses.send_raw_email(
                Source=SENDER, Destinations=[RECIPIENT], RawMessage={"Data": raw}
            ),
        ),
        (
            "sesv2 SendEmail, Raw (JSON API)",
            lambda: sesv2.send_email(
                FromEmailAddress=SENDER,
                Destination={"ToAddresses": [RECIPIENT]},
                Content={"Raw": {"Data": raw}},
            ),
        ),
        (
            "rekognition DetectLabels",
            lambda: rekognition.detect_labels(Image={"Bytes": picture}, MinConfidence=85),
        ),
    ]


def timed(call: Callable[[], Any], count: int) -> dict[str, float]:
    """Mean CPU time of this process and wall time per call, after one untimed call."""
    call()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(count):
        call()
    return {
        "cpu_ms": round((time.process_time() - cpu) * 1000 / count, 1),
        "wall_ms": round((time.perf_counter() - wall) * 1000 / count, 1),
    }


if __name__ == "__main__":
    sys.exit(main())
