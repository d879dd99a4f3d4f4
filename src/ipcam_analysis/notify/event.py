"""An alert as plain data for machines (MQTT's event topic, webhooks): camera, time, each
label with its confidence and boxes, and a link to the event on the dashboard."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from ipcam_analysis.values import Alert


def alert_event(alert: Alert, dashboard_url: str | None) -> dict[str, Any]:
    """The event; `snapshot_url` is its dashboard page when the dashboard's address is known."""
    event_url = None
    if dashboard_url and alert.event_id is not None:
        event_url = f"{dashboard_url.rstrip('/')}/events/{alert.event_id}"
    labels = [
        {
            "name": match.label.name,
            "display_name": match.display_name,
            "confidence": match.label.confidence,
            "boxes": [
                {
                    **asdict(instance.box),
                    "confidence": instance.confidence,
                    # Other names the detector gave this object (merged under this one).
                    "runner_ups": [asdict(other) for other in instance.runner_ups],
                }
                for instance in match.label.instances
            ],
        }
        for match in alert.matched
    ]
    return {
        "camera": alert.camera,
        "time": alert.received_at.isoformat(),
        "event_id": alert.event_id,
        "labels": labels,
        "snapshot_url": event_url,
    }
