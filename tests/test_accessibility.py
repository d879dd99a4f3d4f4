"""axe-core's accessibility rules on every dashboard page, in Debian's chromium, after uploads."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from harness.aws import Moto
from harness.service import PASSWORDS, upload
from ipcam_analysis.store import EventFilter
from tests.test_browser import ROOT, SCENES, UPLOADS, browser  # noqa: F401 (the fixture)

AXE = ROOT / ".cache" / "axe-core" / "node_modules" / "axe-core" / "axe.min.js"
# What a user cannot get past: axe's two worst impact levels.
BLOCKING = {"serious", "critical"}


def axe_violations(page: Any) -> list[dict[str, Any]]:
    """axe-core's violations on the page as loaded: rule, impact, and the elements concerned."""
    page.add_script_tag(path=str(AXE))
    return page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations.map(
            v => ({id: v.id, impact: v.impact, help: v.help,
                   nodes: v.nodes.map(n => n.target.join(" "))}))"""
    )


def test_no_page_has_a_serious_or_critical_accessibility_problem(
    run_service,
    aws: Moto,
    browser: Browser,  # noqa: F811 (the fixture imported above)
) -> None:
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run scripts/install-axe-core (`make test` does)")
    pictures = {name: (Path(ROOT / "tests" / "data" / name)).read_bytes() for name in SCENES}
    by_bytes = {data: SCENES[name] for name, data in pictures.items()}
    aws.rekognition.answer = lambda image: by_bytes.get(image, [])
    # "porch" never uploads: its card shows the "no snapshot yet" placeholder.
    service = run_service(
        labels=["Person", "Vehicle", "Dog"],
        ftp_server={"users": {**PASSWORDS, "porch": "pw-porch-secret"}},
    )
    for number, (camera, name) in enumerate(UPLOADS):
        upload(service.address, camera, pictures[name], f"a11y/{number:02d}.jpg")
    service.wait_idle()
    newest = max(e["id"] for e in service.service.store.events(EventFilter(camera="cam01")))
    base = service.service.web.url.rstrip("/")
    pages = {
        "events": "/",
        "events filtered": "/?camera=cam01&label=Dog",
        "event": f"/events/{newest}",
        "cameras": "/cameras",
        "usage": "/usage",
        "config": "/config",
        "bad request": "/?limit=many",
        "not found": "/events/999999",
    }
    # The injected script is the test's, not the page's: the dashboard's CSP would refuse it.
    context = browser.new_context(bypass_csp=True, viewport={"width": 1100, "height": 760})
    found = {}
    try:
        page = context.new_page()
        for name, path in pages.items():
            page.goto(base + path)
            page.wait_for_function("Array.from(document.images).every(i => i.complete)")
            found[name] = axe_violations(page)
    finally:
        context.close()
    blocking = [(name, v) for name in pages for v in found[name] if v["impact"] in BLOCKING]
    assert blocking == []
    # And what the issue named: contrast, a heading one per page, labelled navigation.
    assert [v for name in pages for v in found[name]] == []
