"""A webhook: each alert POSTed as one JSON object, the structured event (camera, time, each
label with its boxes, a link to it) and the boxed picture in base64, for Home Assistant,
Node-RED and any automation that reads JSON.

JSON rather than multipart/form-data: Home Assistant's webhook trigger hands a JSON body to
templates as `trigger.json` (a form's file parts it drops), and Node-RED's http-in node parses it
into `msg.payload` with no option to tick; the picture is one `base64` node or
`Buffer.from(msg.payload.image.base64, "base64")` away."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from http.client import HTTPException
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from ipcam_analysis import __version__
from ipcam_analysis.masking import MASK
from ipcam_analysis.notify.base import NotifierBase, NotifierContext
from ipcam_analysis.notify.email import snapshot_file_name
from ipcam_analysis.notify.event import alert_event
from ipcam_analysis.settings import SecretText, StrictModel
from ipcam_analysis.values import Alert, NotifyOutcome

# The receiver may be busy or down for a while: these are worth trying again later; any other
# 4xx (a wrong address or secret) is not, until the configuration changes.
RETRIED_STATUSES = frozenset({408, 425, 429})


class WebhookUrl(SecretText):
    """The address alerts are POSTed to, shown without its path and query: a Home Assistant
    webhook's id is in its path, and whoever knows it can trigger the automation."""

    def _display(self) -> str:
        parts = urlsplit(self.get_secret_value())
        host = parts.netloc.rpartition("@")[2]
        return f"{parts.scheme}://{host}/{MASK}"

    def secret_parts(self) -> list[str]:
        parts = urlsplit(self.get_secret_value())
        password = parts.netloc.rpartition("@")[0].partition(":")[2]
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        return [self.get_secret_value(), password, path.lstrip("/")]


class WebhookConfig(StrictModel):
    """`webhook:` (and a camera's own `cameras.<name>.webhook`), on when `url` is set."""

    url: WebhookUrl | None = None  # http:// or https://
    # Sent with each request, such as `Authorization: Bearer …`; kept out of logs and dumps.
    headers: dict[str, SecretStr] = Field(default_factory=dict)
    timeout_seconds: float = Field(10, gt=0)

    @field_validator("url")
    @classmethod
    def _web_address(cls, url: WebhookUrl | None) -> WebhookUrl | None:
        if url is not None:
            parts = urlsplit(url.get_secret_value())
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("must be an http:// or https:// address")
        return url

    @property
    def switched_on(self) -> bool:
        return self.url is not None


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is answered as a failure: urllib would follow it as a GET, without the alert."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class WebhookNotifier(NotifierBase):
    """POSTs each alert to one URL."""

    name = "webhook"

    def __init__(self, settings: WebhookConfig, context: NotifierContext) -> None:
        if settings.url is None:
            raise ValueError("webhook.url is not set")
        self._url = settings.url
        self._headers = {key: value.get_secret_value() for key, value in settings.headers.items()}
        self._timeout = settings.timeout_seconds
        self._dashboard_url = context.dashboard_url
        self._opener = urllib.request.build_opener(_NoRedirects)

    def send(self, alert: Alert) -> NotifyOutcome:
        request = urllib.request.Request(
            self._url.get_secret_value(),
            data=json.dumps(self.payload(alert)).encode(),
            headers={
                "Content-Type": "application/json",
                "User-Agent": f"ipcam-analysis/{__version__}",
                **self._headers,
            },
            method="POST",
        )
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                response.read()
        except urllib.error.HTTPError as exc:
            lasting = 300 <= exc.code < 500 and exc.code not in RETRIED_STATUSES
            detail = f"{self._url}: answered {exc.code} {exc.reason}"
            return NotifyOutcome(self.name, ok=False, detail=detail, retry=not lasting)
        except (urllib.error.URLError, HTTPException, OSError) as exc:
            reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            return NotifyOutcome(self.name, ok=False, detail=f"{self._url}: {reason}", retry=True)
        return NotifyOutcome(self.name, ok=True, detail=f"sent to {self._url}")

    def payload(self, alert: Alert) -> dict[str, Any]:
        """The event (as MQTT's event topic has it) and the boxed picture."""
        width, height = alert.image_size
        image = {
            "content_type": "image/jpeg",
            "file_name": snapshot_file_name(alert),
            "width": width,
            "height": height,
            "base64": base64.b64encode(alert.annotated_jpeg).decode("ascii"),
        }
        return {**alert_event(alert, self._dashboard_url), "image": image}


def build_webhook_notifiers(
    settings: WebhookConfig, context: NotifierContext
) -> list[WebhookNotifier]:
    """The webhook notifier, when a URL is set."""
    return [WebhookNotifier(settings, context)] if settings.url is not None else []
