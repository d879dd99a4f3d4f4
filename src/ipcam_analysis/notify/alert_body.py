"""The default alert e-mail's words: camera, time and each object, in HTML and plain text alike.

Most users only ever see the alert, often on a phone: the HTML says what, where and when above
the picture, which scales to the screen. The two parts say the same (mail filters score an
HTML part that differs from its text twin, or a big picture with few words, as spam).
"""

from __future__ import annotations

import html
from dataclasses import dataclass

from ipcam_analysis.values import Alert, Box

# Inline styles as well as the sheet: some webmail clients drop <style>.
STYLE = """
body { margin: 0; padding: 0; background: #f5f6f8; color: #1d2430;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
.wrap { max-width: 800px; margin: 0 auto; padding: 16px; }
h1 { font-size: 20px; margin: 0 0 4px; }
h2 { font-size: 16px; margin: 16px 0 6px; }
img.snapshot { display: block; width: 100%; max-width: 100%; height: auto; border-radius: 6px; }
table.objects { border-collapse: collapse; width: 100%; }
table.objects th, table.objects td { text-align: left; padding: 4px 8px;
  border-bottom: 1px solid #dde1e7; }
table.objects th { font-size: 12px; color: #4b5563; text-transform: uppercase; }
table.details { border-collapse: collapse; font-size: 14px; }
table.details th { text-align: left; font-weight: normal; color: #4b5563; padding: 2px 16px 2px 0;
  vertical-align: top; white-space: nowrap; }
table.details td { padding: 2px 0; overflow-wrap: anywhere; }
.hint { color: #4b5563; font-size: 13px; margin-top: 16px; }
@media (max-width: 480px) {
  .wrap { padding: 8px; }
  table.objects th, table.objects td { padding: 4px; font-size: 14px; }
}
@media (prefers-color-scheme: dark) {
  body { background: #111827; color: #e5e7eb; }
  .hint, table.details th { color: #b8c0cc; }
  table.objects th, table.objects td { border-color: #374151; }
}
"""
IMAGE_STYLE = "display:block;width:100%;max-width:100%;height:auto"
ABOUT = (
    "This alert comes from ipcam-analysis, which looks at every snapshot your cameras upload "
    "and writes to you when it sees one of the objects listed under labels in its "
    "configuration. Each object is framed in yellow on the picture, with its name and how "
    "sure the detector is. Too many alerts? Raise min_confidence_percent, draw an ignore "
    "zone over a busy street, or set a cooldown for this camera."
)
READING = (
    "Confidence is how sure the detector is that a box holds that object, from 0 to 100 %. "
    "When it hesitated between look-alike names for one object (a van: truck, bus or car), "
    "the object is named once, by the most likely name, and the others follow it."
)
WHY_YOU = (
    "You receive this e-mail because your address is listed under email recipients in the "
    "configuration of ipcam-analysis. Remove it there, or set the e-mail transport to none, "
    "to stop these alerts; the dashboard keeps every event and its picture either way."
)


@dataclass(frozen=True)
class ObjectLine:
    """One row of the objects table: what, how sure, where, and what else it looked like."""

    name: str
    confidence: int
    where: str
    runner_ups: str


def object_lines(alert: Alert) -> list[ObjectLine]:
    """One line per boxed object (most confident first), one per label seen without a box."""
    lines = []
    for match in alert.matched:
        if not match.label.instances:
            lines.append(
                ObjectLine(match.display_name, round(match.label.confidence), "whole picture", "")
            )
        for instance in match.label.instances:
            others = ", ".join(
                f"{other.name} {round(other.confidence)}%" for other in instance.runner_ups
            )
            lines.append(
                ObjectLine(
                    match.display_name,
                    round(instance.confidence),
                    where_in_picture(instance.box),
                    others,
                )
            )
    return sorted(lines, key=lambda line: -line.confidence)


def where_in_picture(box: Box) -> str:
    """`top left`, `middle`, `bottom right`…: the ninth of the picture the box's centre is in."""
    column = ("left", "centre", "right")[min(2, int((box.left + box.width / 2) * 3))]
    row = ("top", "middle", "bottom")[min(2, int((box.top + box.height / 2) * 3))]
    return "middle" if (row, column) == ("middle", "centre") else f"{row} {column}"


def summary(alert: Alert) -> str:
    """`Person, Truck`: each name once, in the order matched."""
    return ", ".join(dict.fromkeys(match.display_name for match in alert.matched))


def alert_text(alert: Alert, file_name: str) -> str:
    """The plain-text part: the HTML's words without markup."""
    when = alert.received_at
    lines = [
        f"{alert.camera}: {summary(alert)}",
        f"Camera {alert.camera} saw {_count(alert)} on {when:%Y-%m-%d} at {when:%H:%M:%S}.",
        "",
        "What was seen:",
    ]
    for line in object_lines(alert):
        also = f"; also looked like {line.runner_ups}" if line.runner_ups else ""
        lines.append(f"- {line.name}: {line.confidence}%, {line.where}{also}")
    lines += ["", READING]
    lines += ["", "Details:"]
    lines += [f"- {name}: {value}" for name, value in details(alert, file_name)]
    lines += ["", ABOUT, "", WHY_YOU]
    return "\n".join(lines) + "\n"


def alert_html(alert: Alert, file_name: str, image_cid: str) -> str:
    """The default HTML part: heading, sentence, picture, objects table, a word on why."""
    when = alert.received_at
    camera = html.escape(alert.camera)
    width, height = alert.image_size
    rows = "".join(
        f"<tr><td><b>{html.escape(line.name)}</b></td><td>{line.confidence}%</td>"
        f"<td>{line.where}"
        f"{'; also looked like ' + html.escape(line.runner_ups) if line.runner_ups else ''}"
        "</td></tr>\n"
        for line in object_lines(alert)
    )
    title = f"{camera}: {html.escape(summary(alert))}"
    return (
        '<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="color-scheme" content="light dark">\n'
        f"<title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        '<div class="wrap">\n'
        f"<h1>{title}</h1>\n"
        f"<p>Camera <b>{camera}</b> saw {html.escape(_count(alert))} on "
        f'<time datetime="{when.isoformat()}">{when:%Y-%m-%d} at {when:%H:%M:%S}</time>.</p>\n'
        f'<img class="snapshot" src="cid:{image_cid}" width="{width}" height="{height}" '
        f'style="{IMAGE_STYLE}" alt="Snapshot from camera {camera} at {when:%H:%M:%S}, '
        'each object framed in yellow">\n'
        '<h2>What was seen</h2>\n<table class="objects">\n'
        "<thead><tr><th>Object</th><th>Confidence</th><th>Where in the picture</th></tr>"
        f"</thead>\n<tbody>\n{rows}</tbody>\n</table>\n"
        f'<p class="hint">{READING}</p>\n'
        f"<h2>Details</h2>\n{_details_html(alert, file_name)}"
        f'<p class="hint">{ABOUT}</p>\n<p class="hint">{WHY_YOU}</p>\n'
        "</div>\n</body>\n</html>\n"
    )


def details(alert: Alert, file_name: str) -> list[tuple[str, str]]:
    """Camera, time with its offset, the camera's own file name, the picture, the event."""
    when = alert.received_at
    width, height = alert.image_size
    found = [
        ("Camera", alert.camera),
        ("Received", f"{when:%A %d %B %Y, %H:%M:%S} (UTC{when:%z})"),
        ("Camera's file", alert.original_name or "unknown"),
        *([("In the clip", alert.clip)] if alert.clip else []),
        ("Picture", f"{file_name}, {width} × {height} pixels, in this message"),
    ]
    if alert.event_id is not None:
        found.append(("Event", f"#{alert.event_id} on the dashboard"))
    return found


def _details_html(alert: Alert, file_name: str) -> str:
    rows = "".join(
        f'<tr><th scope="row">{name}</th><td>{html.escape(value)}</td></tr>\n'
        for name, value in details(alert, file_name)
    )
    return f'<table class="details" role="presentation">\n<tbody>\n{rows}</tbody>\n</table>\n'


def _count(alert: Alert) -> str:
    found = len(object_lines(alert))
    return f"{found} object{'' if found == 1 else 's'}"
