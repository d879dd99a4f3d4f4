#!/usr/bin/env python3
"""What the user sees, measured and photographed: a crowded street (OpenCV's vtest.avi, frame
150) through FTP → local detector → SMTP, then the e-mail's size, its SpamAssassin score (local
rules), axe-core's violations on every dashboard page, and screenshots of the alert picture, the
e-mail rendered in chromium (phone width) and the event page, into docs/screenshots/.

    .venv/bin/python bench/user_view.py                       # this checkout: "-after" files
    git archive <commit> src | tar -x -C /tmp/before           # an older version's code...
    .venv/bin/python bench/user_view.py --source /tmp/before/src --label before

Needs what the tests need: Debian's chromium and spamassassin, and axe-core
(scripts/install-system-packages).
"""

from __future__ import annotations

import argparse
import email
import email.policy
import re
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "docs" / "screenshots"
AXE = ROOT / ".cache" / "axe-core" / "node_modules" / "axe-core" / "axe.min.js"
FRAME = ROOT / "tests" / "data" / "opencv_vtest_f0150.jpg"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"]
# Every page, an error page and a missing event; cam02 never uploads (a "no snapshot" card).
PAGES = ("/", "/cameras", "/usage", "/config", "/?limit=many", "/events/999999")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="after", help="suffix of the files written")
    parser.add_argument("--source", type=Path, help="import ipcam_analysis from this src folder")
    parser.add_argument("--output", type=Path, help="the JSON file (default bench/results/)")
    args = parser.parse_args()
    sys.path[:0] = [str(args.source or ROOT / "src"), str(ROOT)]
    from bench import common

    common.exit_on_sigterm()
    with tempfile.TemporaryDirectory() as folder:
        figures = measure(Path(folder), args.label)
    shown = [(k, v) for k, v in figures.items() if k not in ("axe", "caption_layout_ms")]
    common.print_table(["figure", "value"], shown)
    common.write_results(f"user_view-{args.label}", {"figures": figures}, args.output)


def measure(work: Path, label: str) -> dict[str, Any]:
    from bench import common

    mails: list[bytes] = []
    sink = _Sink(mails)
    settings = common.service_settings(
        work, cameras=2, workers=1, detector={"type": "local"}, smtp_port=sink.port, web=True
    )
    common.seed_model_cache(work)
    with common.running_service(settings, work) as service:
        camera = common.cameras(1)[0]
        common.upload_once(service.ftp.address, camera, FRAME.read_bytes(), "street-150.jpg")
        common.wait_for(lambda: mails, 120, "the alert e-mail")
        common.wait_for(lambda: service.queue.depth() == 0, 60, "the queue to drain")
        event_id = service.database.query("SELECT MAX(id) FROM uploads")[0][0]
        figures = _mail_figures(mails[0], work, label)
        figures["axe"] = _browse(service.web.url.rstrip("/"), event_id, work, label)
    sink.stop()
    figures["caption_layout_ms"] = _layout_ms()
    figures["axe_serious_or_critical"] = sum(
        count
        for page in figures["axe"].values()
        for impact, count in page.items()
        if impact in ("serious", "critical")
    )
    return figures


def _email_build_ms(picture: bytes) -> float:
    """Median milliseconds to build the alert e-mail as bytes (200 builds) for the picture sent,
    with one person matched: what every alert costs a worker, whichever version runs."""
    import io
    import statistics
    import time
    from datetime import datetime

    from PIL import Image

    from ipcam_analysis.notify.email import EmailConfig, build_alert_email
    from ipcam_analysis.values import Alert, Box, Instance, Label, MatchedLabel

    size = Image.open(io.BytesIO(picture)).size
    person = Label("Person", 97.0, instances=(Instance(Box(0.3, 0.3, 0.1, 0.3), 97.0),))
    alert = Alert(
        "cam01", datetime.now().astimezone(), (MatchedLabel(person, "Person"),), picture, size, ""
    )
    settings = EmailConfig(
        transport="smtp",
        sender_email="bench@example.com",
        recipients=["owner@example.com"],
        smtp={"host": "localhost"},
    )
    times = []
    for _ in range(200):
        started = time.perf_counter()
        build_alert_email(alert, settings).as_bytes()
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2)


def _layout_ms() -> dict[str, float]:
    """Median milliseconds to place the captions of each crowded test scene (this version's
    plan_annotation; an older version has none)."""
    import json
    import statistics
    import time

    from ipcam_analysis.imaging import annotate
    from ipcam_analysis.values import MatchedLabel, detection_from_dict

    if not hasattr(annotate, "plan_annotation"):
        return {}
    from ipcam_analysis.rules import merge_same_objects

    data = ROOT / "tests" / "data"
    found = {}
    for name, detection in json.loads((data / "local_detections.json").read_text()).items():
        labels = merge_same_objects(detection_from_dict(detection).labels, lambda _: 0)
        matched = [MatchedLabel(label, label.name) for label in labels]
        size = (768, 576)
        times = []
        for _ in range(20):
            started = time.perf_counter()
            annotate.plan_annotation(size, matched)
            times.append((time.perf_counter() - started) * 1000)
        boxes = sum(len(label.instances) for label in labels)
        found[f"{name} ({boxes} boxes)"] = round(statistics.median(times), 2)
    return found


def _mail_figures(raw: bytes, work: Path, label: str) -> dict[str, Any]:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    pictures = [part for part in message.walk() if part.get_content_maintype() == "image"]
    picture = pictures[0].get_content()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS / f"alert-vtest-{label}.jpg").write_bytes(picture)
    (work / "picture.jpg").write_bytes(picture)
    html = message.get_body(("html",)).get_content().replace("cid:image01", "picture.jpg")
    (work / "mail.html").write_text(html, encoding="utf-8")
    report = subprocess.run(
        ["spamassassin", "-L", "-t"], input=raw, capture_output=True, check=True
    ).stdout.decode()
    score = re.search(r"Content analysis details:\s+\((-?[\d.]+) points", report)
    assert score, report
    # The rules that scored, as `1.7 HTML_IMAGE_ONLY_04`.
    rules = [
        f"{points} {rule}"
        for points, rule in re.findall(r"^\s*(-?\d+\.\d+)\s+([A-Z0-9_]+)\s", report, re.M)
        if float(points) != 0
    ]
    return {
        "subject": str(message["Subject"]),
        "message_bytes": len(raw),
        "picture_bytes": len(picture),
        "picture_copies": len(pictures),
        "message_to_picture": round(len(raw) / len(picture), 2),
        "email_build_ms": _email_build_ms(picture),
        "spam_score": float(score[1]),
        "spam_rules": rules,
    }


def _browse(base: str, event_id: int, work: Path, label: str) -> dict[str, dict[str, int]]:
    """Screenshots of the e-mail and the event page, and axe-core's violations by impact."""
    from playwright.sync_api import sync_playwright

    found: dict[str, dict[str, int]] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS
        )
        phone = browser.new_page(viewport={"width": 390, "height": 844})
        phone.goto((work / "mail.html").as_uri())
        _save(phone, f"email-phone-{label}", full_page=True)
        context = browser.new_context(bypass_csp=True, viewport={"width": 1100, "height": 760})
        page = context.new_page()
        for path in (*PAGES, f"/events/{event_id}"):
            page.goto(base + path)
            page.wait_for_function("Array.from(document.images).every(i => i.complete)")
            if path.startswith("/events/"):
                _save(page, f"event-vtest-{label}", full_page=False)
            page.add_script_tag(path=str(AXE))
            impacts = page.evaluate(
                "async () => (await axe.run(document)).violations.map(v => v.impact)"
            )
            found[path] = dict(Counter(impacts))
        browser.close()
    return found


def _save(page: Any, name: str, *, full_page: bool) -> None:
    from PIL import Image

    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=path, full_page=full_page)
    # 256 colours keep a page of photos a few hundred kilobytes at most in git.
    Image.open(path).convert("RGB").quantize(256).save(path, optimize=True)


class _Sink:
    """An SMTP server on a free loopback port keeping each message's bytes."""

    def __init__(self, mails: list[bytes]) -> None:
        from aiosmtpd.controller import Controller

        from bench import common

        lock = threading.Lock()

        class Keep:
            async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
                with lock:
                    mails.append(envelope.original_content or envelope.content)
                return "250 OK"

        self.port = common.free_port()
        self._controller = Controller(Keep(), hostname=common.LOOPBACK, port=self.port)
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


if __name__ == "__main__":
    main()
