"""A real browser (Debian's chromium, driven by Playwright) on the dashboard after real uploads."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect, sync_playwright

from harness.aws import Moto, label
from harness.service import DATA, PASSWORDS, copy_test_image, upload
from harness.web import days_ago, wait_for_pictures
from ipcam_analysis.store import EventFilter
from ipcam_analysis.values import Upload

CHROMIUM = Path("/usr/bin/chromium")
# The background-networking flags stop chromium from calling home on a closed network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts" / "browser"
# `UPDATE_SCREENSHOTS=1 pytest tests/test_browser.py` refreshes the dashboard's pictures in
# docs/screenshots, shown in docs/configuration.md.
README_SCREENSHOTS = ROOT / "docs" / "screenshots"

# What the scripted Rekognition sees in each test picture (boxes measured by eye).
SCENES = {
    "darknet_person.jpg": [
        label("Person", 98.9, boxes=((0.30, 0.23, 0.135, 0.65),)),
        label("Dog", 94.2, parents=("Animal", "Pet"), boxes=((0.10, 0.62, 0.22, 0.20),)),
        label("Horse", 96.1, parents=("Animal",), boxes=((0.63, 0.33, 0.31, 0.49),)),
        label("Field", 88.0),
    ],
    "opencv_vtest_f0000.jpg": [
        label(
            "Person",
            97.3,
            boxes=(
                (0.328, 0.378, 0.043, 0.156),
                (0.648, 0.269, 0.042, 0.134),
                (0.831, 0.417, 0.061, 0.142),
            ),
        ),
        label("Car", 91.5, parents=("Vehicle",), boxes=((0.849, 0.073, 0.094, 0.10),)),
        label("Building", 90.0),
    ],
    "skimage_coffee.jpg": [label("Cup", 96.0), label("Coffee", 93.0)],
    "opencv_tree_f0000.jpg": [label("Tree", 92.0), label("Plant", 92.0)],
}
UPLOADS = [  # (camera, file), oldest first
    ("cam01", "skimage_coffee.jpg"),
    ("cam02", "opencv_vtest_f0000.jpg"),
    ("cam01", "darknet_person.jpg"),
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"{CHROMIUM} is missing: the browser test needs Debian's chromium"
            " (`make test` installs it, or: apt-get install chromium)"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def screenshot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=path)
    if os.environ.get("UPDATE_SCREENSHOTS"):
        README_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        # 256 colours keep a page of photos a few hundred kilobytes at most in git.
        Image.open(path).convert("RGB").quantize(256).save(
            README_SCREENSHOTS / f"{name}.png", optimize=True
        )


def test_dashboard_in_a_real_browser(
    run_service, aws: Moto, browser: Browser, tmp_path: Path
) -> None:
    pictures = {name: (DATA / name).read_bytes() for name in SCENES}
    by_bytes = {data: SCENES[name] for name, data in pictures.items()}
    aws.rekognition.answer = lambda image: by_bytes.get(image, [])
    service = run_service(
        labels=["Person", "Vehicle", "Dog"],
        ftp_server={"users": {**PASSWORDS, "garage": "pw-garage-secret"}},
    )
    # A camera that stopped uploading three days ago: FTP cannot backdate, so its upload goes
    # straight into the queue, as if accepted then and analysed after an outage.
    old = copy_test_image("opencv_tree_f0000.jpg", tmp_path / "ftp" / "garage" / "tree.jpg")
    service.service.queue.put(Upload("garage", old, days_ago(3), "192.0.2.9", "tree.jpg"))
    service.wait_idle()
    for number, (camera, name) in enumerate(UPLOADS):
        upload(service.address, camera, pictures[name], f"2026-11-23/001/jpg/{number:02d}.jpg")
    service.wait_idle()
    newest = max(e["id"] for e in service.service.store.events(EventFilter(camera="cam01")))
    page = browser.new_page(viewport={"width": 1100, "height": 760})
    # A blocked script or style (the Content-Security-Policy) shows up as a console error.
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    # Thumbnails load lazily, after the page's load event; a slow network makes sure the test
    # waits for them as a slow machine would have to.
    network = page.context.new_cdp_session(page)
    network.send("Network.enable")
    network.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 300, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    page.goto(service.service.web.url)

    # The events page: the new event first, its thumbnail really loaded.
    cards = page.locator("ul.events li")
    expect(cards).to_have_count(len(UPLOADS) + 1)
    expect(cards.first).to_contain_text("cam01")
    expect(cards.first).to_contain_text("Alert")
    # What was seen, and why it alerted.
    expect(cards.first).to_contain_text("Seen: Person 99%, Dog 94%, Horse 96%, Field 88%")
    expect(cards.first).to_contain_text("Alerted on Person, Dog")
    thumbnail = cards.first.locator("img")
    expect(thumbnail).to_have_attribute("src", f"/snapshots/{newest}_thumb.jpg")
    wait_for_pictures(page)
    # Scaled into its card, never cropped: a crop would cut the captions near its edges.
    assert thumbnail.evaluate("image => getComputedStyle(image).objectFit") == "contain"
    screenshot(page, "events")

    # The label filter: only the picture with a dog.
    page.fill("input[name=label]", "Dog")
    page.click("button[type=submit]")
    expect(page).to_have_url(re.compile(r"[?&]label=Dog"))
    expect(cards).to_have_count(1)
    expect(cards.first.locator("a")).to_have_attribute("href", f"/events/{newest}")

    # The event page: every label's boxes over the picture, each set toggled by its checkbox.
    cards.first.locator("a").click()
    expect(page.locator("h1")).to_contain_text("cam01")
    boxes = page.locator(".viewer svg rect")
    expect(boxes).to_have_count(3)  # Person, Dog and Horse; Field has no box
    assert all(box.is_visible() for box in boxes.all())
    person_box = page.locator(".viewer svg[data-layer='0'] rect")
    picture = page.locator(".viewer img").bounding_box()
    drawn = person_box.bounding_box()
    assert picture and drawn
    assert abs(drawn["x"] - picture["x"] - 0.30 * picture["width"]) < 4  # % of the picture
    assert abs(drawn["height"] - 0.65 * picture["height"]) < 4
    # Every caption lies inside the picture (none spills onto the Details beside it).
    captions = page.locator(".viewer svg text")
    expect(captions).to_have_count(3)
    for caption in captions.all():
        box = caption.bounding_box()
        assert box is not None
        assert (
            picture["x"] <= box["x"] and box["x"] + box["width"] <= picture["x"] + picture["width"]
        )
        assert (
            picture["y"] <= box["y"]
            and box["y"] + box["height"] <= picture["y"] + picture["height"]
        )
    page.locator(".toggles input[data-layer='0']").uncheck()
    expect(person_box).to_be_hidden()
    expect(page.locator(".viewer svg[data-layer='1'] rect")).to_be_visible()
    page.locator(".toggles input[data-layer='0']").check()
    expect(person_box).to_be_visible()
    expect(page.locator("table.labels")).to_contain_text("Horse")
    expect(page.locator(".details")).to_contain_text(
        f"2026-11-23/001/jpg/{len(UPLOADS) - 1:02d}.jpg"
    )
    screenshot(page, "event")

    # The cameras page: one card per camera with its latest snapshot and today's counts.
    page.goto(service.service.web.url + "cameras")
    cameras = page.locator("ul.cameras li")
    expect(cameras).to_have_count(3)
    expect(cameras.first).to_contain_text("2 uploads today")
    expect(cameras.first).to_contain_text("1 alert today")
    # Three days quiet, but the service started a moment ago: not blamed on the camera yet.
    expect(cameras.last).to_contain_text("Last seen 3 days ago")
    expect(cameras.last.locator(".warning")).to_have_count(0)
    wait_for_pictures(page)
    screenshot(page, "cameras")

    page.goto(service.service.web.url + "usage")
    expect(page.locator(".totals")).to_contain_text("4 cloud calls")
    screenshot(page, "usage")

    # A phone: the cards go two by two and nothing needs scrolling sideways.
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(service.service.web.url)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    screenshot(page, "events-phone")
    page.close()
    assert console_errors == []
