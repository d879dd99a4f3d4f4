"""What the dashboard needs from the running service, and the health report built from it."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date
from typing import Any

from starlette.requests import Request

from ipcam_analysis.config import AppConfig
from ipcam_analysis.metrics import Metrics
from ipcam_analysis.net.probe import ListenerState, probe_listener
from ipcam_analysis.store import EventFilter, EventStore, local_iso
from ipcam_analysis.store.queue import UploadQueue
from ipcam_analysis.web.summaries import camera_states, usage_summary


@dataclass(frozen=True)
class DashboardContext:
    """The narrow view of the service the routes use; tests and the bench build it directly."""

    config: AppConfig
    store: EventStore
    queue: UploadQueue
    metrics: Metrics
    # Each ingest source's listening address by kind, None when it is not started.
    listeners: Callable[[], dict[str, tuple[str, int] | None]]
    started_at: float = field(default_factory=time.time)  # epoch seconds: silence counts from it
    roles: tuple[str, ...] = ("ingest", "worker", "web")  # what this node runs (--role)
    # Each polling source's cameras' links (state, since, error) by the source's kind.
    camera_links: Callable[[], dict[str, dict[str, dict[str, Any]]]] = dict

    def events_page(self, filters: EventFilter) -> tuple[list[dict[str, Any]], int | None]:
        """One page of events and the `before_id` of the next (older) page, or None."""
        # One more than asked tells whether an older page exists, without counting.
        events = self.store.events(replace(filters, limit=filters.limit + 1))
        if len(events) <= filters.limit:
            return events, None
        events = events[: filters.limit]
        return events, events[-1]["id"]

    def cameras(self) -> list[dict[str, Any]]:
        """Every configured camera (and any seen before), with `silent` set, and `link`: how a
        source that reaches out to it (ONVIF) is doing, or None."""
        running = time.time() - self.started_at
        links = self.links_by_camera()
        return [
            {**camera, "link": links.get(camera["name"])}
            for camera in camera_states(self.store.cameras(self.config.camera_names), running)
        ]

    def links_by_camera(self) -> dict[str, dict[str, Any]]:
        """camera → its link, with the `source` that keeps it."""
        return {
            camera: {"source": kind, **link}
            for kind, links in self.camera_links().items()
            for camera, link in links.items()
        }

    def usage(self, days: int) -> dict[str, Any]:
        price = self.config.rekognition_settings().price_per_1000_images
        return usage_summary(self.store.usage(days), days, date.today(), price)

    def health(self) -> tuple[bool, dict[str, Any]]:
        """(healthy, report): healthy means the cameras can send, through every listener."""
        listeners = {
            kind: {
                "up": address is not None and probe_listener(address) is ListenerState.ANSWERS,
                "address": f"{address[0]}:{address[1]}" if address else None,
            }
            for kind, address in self.listeners().items()
        }
        down = [kind for kind, state in listeners.items() if not state["up"]]
        # This process's detectors, else (analysis in worker processes) the queue's record.
        last_success = self.metrics.last_detector_success or self.queue.last_analysed_at()
        oldest = self.queue.oldest_pending_age()
        report = {
            "status": "ok" if not down else f"{down[0]}_down",
            "node": self.config.node_name,
            "roles": list(self.roles),
            "listeners": listeners,
            **listeners,  # each at the top level too, as `ftp` always was
            # The cameras a source reaches out to (ONVIF): whether each is followed.
            "camera_links": self.links_by_camera(),
            "queue": {
                "depth": self.queue.depth(),
                "oldest_pending_age_seconds": None if oldest is None else round(oldest, 1),
            },
            "detector": {
                "last_success": local_iso(last_success),
                "seconds_since_last_success": (
                    None if last_success is None else round(time.time() - last_success, 1)
                ),
            },
        }
        return not down, report


def context_of(request: Request) -> DashboardContext:
    """The context create_app() attached to the app."""
    return request.app.state.context
