"""What the user taught ("Not a Person" on the dashboard): the pure rule, the store across a
restart, and through the running service with the local detector on real pictures."""

from __future__ import annotations

import io
import json
import re
from datetime import datetime
from html import unescape
from pathlib import Path

import httpx
from PIL import Image, ImageEnhance
from playwright.sync_api import Browser, expect

from harness.aws import Moto, label
from harness.service import RunningService, upload, wait_until
from ipcam_analysis.rules import ExceptionsConfig, drop_learned_exceptions, suggest_thresholds
from ipcam_analysis.store import EventFilter, LearnedExceptions
from ipcam_analysis.values import Box, Instance, Label, LearnedException
from ipcam_analysis.web.auth import hash_password
from tests.test_browser import browser as chromium_browser  # noqa: F401 (the fixture)
from tests.test_store import open_this_database

EVAL = Path(__file__).resolve().parents[1] / "eval" / "images"
STATUE = Box(0.30, 0.40, 0.10, 0.30)
MARKED_AT = datetime(2026, 5, 17, 9, 30).timestamp()
PASSWORD = "dashboard-secret"
LOGIN = ("admin", PASSWORD)
FROM_THE_DASHBOARD = {"X-Requested-By": "ipcam-analysis", "Content-Type": "application/json"}


def person(*boxes: tuple[Box, float]) -> Label:
    return Label(
        "Person", max(c for _, c in boxes), instances=tuple(Instance(b, c) for b, c in boxes)
    )


def exception(fingerprint: int = 0, box: Box = STATUE, label: str = "Person") -> LearnedException:
    return LearnedException(7, label, box, fingerprint, MARKED_AT)


def test_a_detection_on_a_marked_spot_that_still_looks_the_same_is_dropped() -> None:
    shifted = Box(0.31, 0.41, 0.09, 0.28)  # the detector's box a few pixels off
    elsewhere = Box(0.70, 0.40, 0.10, 0.30)
    labels = [person((shifted, 72.0), (elsewhere, 90.0)), Label("Tree", 88.0)]
    asked: list[Box] = []

    def fingerprint_at(box: Box) -> int:
        asked.append(box)
        return 0b1011  # three bits from the remembered 0

    kept, reasons, matched = drop_learned_exceptions(
        labels, [exception()], fingerprint_at, ExceptionsConfig(max_difference_bits=3)
    )
    assert [(label.name, [i.box for i in label.instances]) for label in kept] == [
        ("Person", [elsewhere]),
        ("Tree", []),
    ]
    assert reasons == ("Person matches a learned exception (marked not a Person on 2026-05-17)",)
    assert matched == {7}
    assert asked == [STATUE]  # the marked region is hashed, not the detection's box


def test_a_person_where_the_statue_stands_still_alerts() -> None:
    labels = [person((STATUE, 95.0))]
    kept, reasons, matched = drop_learned_exceptions(
        labels, [exception()], lambda box: 0b1111, ExceptionsConfig(max_difference_bits=3)
    )
    assert kept == tuple(labels) and reasons == () and matched == frozenset()


def test_only_the_same_label_on_an_overlapping_box_matches() -> None:
    far = Box(0.50, 0.40, 0.10, 0.30)  # beside the statue: no overlap
    labels = [Label("Dog", 80.0, instances=(Instance(STATUE, 80.0),)), person((far, 70.0))]
    kept, reasons, _ = drop_learned_exceptions(
        labels, [exception()], lambda box: 0, ExceptionsConfig()
    )
    assert kept == tuple(labels) and reasons == ()


def test_a_label_whose_every_box_matched_is_gone() -> None:
    kept, reasons, matched = drop_learned_exceptions(
        [person((STATUE, 60.0))], [exception(label="person")], lambda box: 0, ExceptionsConfig()
    )
    assert kept == () and len(reasons) == 1 and matched == {7}


def test_thresholds_suggested_from_the_marks() -> None:
    marks = [("Person", c) for c in (31, 38, 40, 41, 42, 43, 44, 52, 77)] + [("Bird", 30.0)] * 2
    suggestions = suggest_thresholds(marks)
    assert [str(s) for s in suggestions] == ["7 of 9 false Person were under 45 %"]
    assert suggestions[0].threshold == 45


def test_exceptions_survive_a_restart_and_count_each_upload_once(tmp_path: Path) -> None:
    database = open_this_database(tmp_path)
    try:
        learned = LearnedExceptions(database)
        first = learned.learn(
            "cam01", "Person", STATUE, 2**255 + 5, confidence=41.5, event_id=3, now=MARKED_AT
        )
        again = learned.learn(
            "cam01", "Person", STATUE, 2**255 + 5, confidence=41.5, event_id=3, now=MARKED_AT
        )
        assert again == first  # the same box marked twice is one exception
        learned.matched(frozenset({first}), item_id=10, now=MARKED_AT + 60)
        learned.matched(frozenset({first}), item_id=10, now=MARKED_AT + 61)  # a retry
    finally:
        database.close()
    reopened = open_this_database(tmp_path)
    try:
        learned = LearnedExceptions(reopened)
        assert learned.of_camera("cam01") == [
            LearnedException(first, "Person", STATUE, 2**255 + 5, MARKED_AT)
        ]
        assert learned.of_camera("cam02") == []
        [listed] = learned.listing()
        assert (listed["camera"], listed["matches"], listed["confidence"]) == ("cam01", 1, 41.5)
        assert learned.marks() == [("Person", 41.5)]
        assert learned.forget(first) and not learned.forget(first)
        assert learned.listing() == []
    finally:
        reopened.close()


# --- through the running service -------------------------------------------------------------


def jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def cut(name: str, box: tuple[float, float, float, float], height: int) -> Image.Image:
    """A real person cut out of a real picture (its box, relative), scaled to `height` pixels."""
    picture = Image.open(EVAL / name).convert("RGB")
    width, full = picture.size
    left, top, w, h = box
    crop = picture.crop(
        (round(left * width), round(top * full), round((left + w) * width), round((top + h) * full))
    )
    return crop.resize((crop.width * height // crop.height, height))


def scenes() -> dict[str, bytes]:
    """The vtest camera's empty square with a statue: the person of darknet_person.jpg pasted in
    (the local detector calls it Person about 70 %). The same scene again, darker and encoded
    otherwise; and with a real person (opencv_basketball1.jpg's) standing in front of it."""
    square = Image.open(EVAL / "opencv_vtest_median_background.jpg").convert("RGB")
    statue = square.copy()
    statue.paste(cut("darknet_person.jpg", (0.295, 0.245, 0.137, 0.653), 200), (500, 220))
    again = ImageEnhance.Brightness(statue).enhance(0.92)
    visitor = statue.copy()
    visitor.paste(cut("opencv_basketball1.jpg", (0.0426, 0.1544, 0.2052, 0.8456), 200), (480, 220))
    return {
        "statue.jpg": jpeg(statue, 90),
        "statue_again.jpg": jpeg(again, 70),
        "visitor.jpg": jpeg(visitor, 90),
        "statue_after_undo.jpg": jpeg(again, 80),
    }


def send(service: RunningService, name: str, data: bytes) -> dict:
    """Upload like the camera; the event it became."""
    upload(service.address, "cam01", data, name)
    service.wait_idle(timeout=120)
    store = service.service.store
    return wait_until(
        lambda: next(
            (e for e in store.events(EventFilter(limit=20)) if e["original_name"] == name), None
        ),
        what=f"the event of {name}",
    )


def mark_buttons(page: str) -> list[tuple[str, str, str]]:
    """(URL, JSON body, text) of each "Not a …" button on an event page, as the browser's
    script reads them."""
    found = re.findall(
        r"<button[^>]*data-post=\"([^\"]+)\" data-body='([^']+)'>([^<]+)</button>", page
    )
    return [(unescape(url), unescape(body), unescape(text)) for url, body, text in found]


def test_not_a_person_through_the_running_service(run_service) -> None:
    pictures = scenes()
    service = run_service(
        detector={"type": "local"},
        labels=["Person"],
        workers=1,
        email={"transport": "none"},
        web={"port": 0, "username": "admin", "password_hash": hash_password(PASSWORD)},
    )
    first = send(service, "statue.jpg", pictures["statue.jpg"])
    assert first["outcome"] == "alert" and "Person" in first["triggered"]

    with httpx.Client(base_url=service.service.web.url, timeout=30) as client:
        page = client.get(f"/events/{first['id']}", auth=LOGIN)
        buttons = [b for b in mark_buttons(page.text) if b[2].startswith("Not a Person")]
        assert buttons and 'src="/static/actions.js"' in page.text
        url, body, _ = buttons[0]
        # Behind the login, and only from the dashboard's own script (no cross-site form).
        assert client.post(url, content=body, headers=FROM_THE_DASHBOARD).status_code == 401
        as_a_form = client.post(url, data=json.loads(body), auth=LOGIN)
        assert as_a_form.status_code == 403
        cross_site = {**FROM_THE_DASHBOARD, "Sec-Fetch-Site": "cross-site"}
        assert client.post(url, content=body, headers=cross_site, auth=LOGIN).status_code == 403
        assert service.service.store.exceptions.listing() == []
        for url, body, _ in buttons:  # every box the event shows as a Person
            marked = client.post(url, content=body, headers=FROM_THE_DASHBOARD, auth=LOGIN)
            assert marked.status_code == 200, marked.text

        again = send(service, "statue_again.jpg", pictures["statue_again.jpg"])
        assert again["outcome"] == "no_match"
        today = datetime.now().strftime("%Y-%m-%d")
        assert (
            f"Person matches a learned exception (marked not a Person on {today})"
            in (again["reason"])
        )
        visitor = send(service, "visitor.jpg", pictures["visitor.jpg"])
        assert visitor["outcome"] == "alert" and "Person" in visitor["triggered"]

        cameras = client.get("/cameras", auth=LOGIN).text
        assert "Learned exceptions" in cameras
        listed = service.service.store.exceptions.listing()
        assert sum(learned["matches"] for learned in listed) >= 1
        undo = re.findall(r'data-post="(/exceptions/\d+/undo)"', cameras)
        assert len(undo) == len(listed)
        for url in undo:
            answer = client.post(url, content="{}", headers=FROM_THE_DASHBOARD, auth=LOGIN)
            assert answer.status_code == 200, answer.text
        twice = client.post(undo[0], content="{}", headers=FROM_THE_DASHBOARD, auth=LOGIN)
        assert twice.status_code == 404 and "already undone" in twice.json()["error"]

    restored = send(service, "statue_after_undo.jpg", pictures["statue_after_undo.jpg"])
    assert restored["outcome"] == "alert" and "Person" in restored["triggered"]


def test_not_a_person_and_undo_in_a_real_browser(
    run_service,
    aws: Moto,
    chromium_browser: Browser,  # noqa: F811 (test_browser's fixture, imported above)
) -> None:
    """The buttons work in chromium under the dashboard's Content-Security-Policy and login."""
    aws.rekognition.labels = [label("Person", 97.0, boxes=((0.30, 0.23, 0.135, 0.65),))]
    service = run_service(
        web={"port": 0, "username": "admin", "password_hash": hash_password(PASSWORD)}
    )
    first = send(service, "statue.jpg", scenes()["statue.jpg"])
    context = chromium_browser.new_context(
        http_credentials={"username": "admin", "password": PASSWORD}
    )
    page = context.new_page()
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.goto(f"{service.service.web.url}events/{first['id']}")
    with page.expect_navigation():  # the page reloads once the mark is taken
        page.get_by_role("button", name=re.compile("^Not a Person")).click()
    learned = wait_until(service.service.store.exceptions.listing, what="the exception")
    assert [(e["camera"], e["label"], e["event_id"]) for e in learned] == [
        ("cam01", "Person", first["id"])
    ]
    page.goto(f"{service.service.web.url}cameras")
    expect(page.locator("section.learned tbody tr")).to_contain_text("Person (97 %)")
    with page.expect_navigation():
        page.get_by_role("button", name="Undo").click()
    expect(page.locator("section.learned")).to_contain_text("None yet")
    assert service.service.store.exceptions.listing() == []
    assert console_errors == []
    context.close()


def test_the_reason_says_a_or_an() -> None:
    eagle = LearnedException(3, "Eagle", STATUE, 0, MARKED_AT)
    _, reasons, _ = drop_learned_exceptions(
        [Label("Eagle", 40.0, instances=(Instance(STATUE, 40.0),))],
        [eagle],
        lambda box: 0,
        ExceptionsConfig(),
    )
    assert reasons == ("Eagle matches a learned exception (marked not an Eagle on 2026-05-17)",)


def test_the_usage_page_suggests_a_threshold_from_the_marks(served_store) -> None:
    dashboard = served_store()
    for number, confidence in enumerate((31.0, 38.5, 44.0, 52.0), start=1):
        box = Box(0.1 * number, 0.2, 0.1, 0.3)
        dashboard.store.exceptions.learn(
            "cam01", "Person", box, 0, confidence=confidence, event_id=number, now=MARKED_AT
        )
    page = unescape(re.sub(r"<[^>]+>", "", dashboard.client.get("/usage").text))
    assert "3 of 4 false Person were under 45 %" in page
    assert "filters: {label_confidence: {Person: 45}}" in page
