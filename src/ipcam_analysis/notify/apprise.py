"""Any Apprise URL (Telegram, ntfy, Pushover, Discord, webhooks, …) as a notifier, snapshot attached."""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated
from urllib.parse import unquote

from pydantic import AfterValidator, ConfigDict, Field, RootModel

from ipcam_analysis.masking import MASK
from ipcam_analysis.notify.base import NotifierBase, NotifierContext
from ipcam_analysis.settings import SecretText
from ipcam_analysis.values import Alert, NotifyOutcome

# Apprise and its plugins take ~15 MB: they are imported when a `notify:` URL is first checked
# or used, so a service without one does not pay for them.
if TYPE_CHECKING:
    import apprise

APPRISE_LOGGER = "apprise"
URL_EXAMPLES = "tgram://BOT_TOKEN/CHAT_ID, ntfys://TOPIC or json://host/path"
HELP_URL = "https://github.com/caronc/apprise/wiki"

_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*)://", re.IGNORECASE)
# What separates the parts of a URL as Apprise writes it back (user-info, host, path, query).
_URL_SEPARATORS = re.compile(r"[/@:?&=,]+")
_UNSAFE_IN_FILE_NAME = re.compile(r"[^\w.-]+")
_FAILURE_LEVELS = frozenset({"WARNING", "ERROR", "CRITICAL"})


@functools.cache
def _asset() -> apprise.AppriseAsset:
    import apprise

    # Sends stay in the calling worker thread, bounded by each plugin's own network timeouts.
    return apprise.AppriseAsset(
        app_id="ipcam-analysis", app_desc="IP camera alerts", async_mode=False
    )


@contextmanager
def _apprise_silenced_in_this_thread() -> Iterator[None]:
    """Apprise's complaints about a URL can quote its token; the caller reports the problem."""
    thread = threading.get_ident()

    def from_other_threads(record: logging.LogRecord) -> bool:
        return record.thread != thread

    logger = logging.getLogger(APPRISE_LOGGER)
    logger.addFilter(from_other_threads)
    try:
        yield
    finally:
        logger.removeFilter(from_other_threads)


def _load(url: str) -> apprise.NotifyBase | None:
    import apprise

    with _apprise_silenced_in_this_thread():
        return apprise.Apprise.instantiate(url, asset=_asset())


class AppriseUrlText(SecretText):
    """An Apprise URL: shown with its tokens and passwords masked, each kept out of the log."""

    def _display(self) -> str:
        return masked_url(self.get_secret_value())

    def secret_parts(self) -> list[str]:
        return secrets_in_url(self.get_secret_value())


def check_apprise_url(url: AppriseUrlText) -> AppriseUrlText:
    """A URL Apprise can use, or a ValueError that names the service but not the URL's secrets."""
    text = url.get_secret_value().strip()
    scheme = _SCHEME.match(text)
    if scheme is None:
        raise ValueError(f"must be an Apprise URL such as {URL_EXAMPLES}")
    if _load(text) is None:
        raise ValueError(
            f"Apprise cannot use this {scheme[1]}:// URL: the service is unknown, a token or "
            f"target is missing or malformed, or it needs a library that is not installed "
            f"(see {HELP_URL})"
        )
    return AppriseUrlText(text)


# A notify URL in the config, checked when the config is loaded.
AppriseUrl = Annotated[AppriseUrlText, AfterValidator(check_apprise_url)]


class AppriseConfig(RootModel[list[AppriseUrl]]):
    """The `notify:` list of URLs (global, or a camera's own, which replaces it)."""

    model_config = ConfigDict(frozen=True)
    root: list[AppriseUrl] = Field(default_factory=list)

    @property
    def switched_on(self) -> bool:
        return bool(self.root)


def masked_url(url: str) -> str:
    """An Apprise URL with its tokens and passwords replaced by ****."""
    for secret in sorted(secrets_in_url(url)[1:], key=len, reverse=True):
        url = url.replace(secret, MASK)
    return url


def secrets_in_url(url: str) -> list[str]:
    """The URL and the parts Apprise hides when it shows it (tokens, passwords), for the log filter."""
    found = [url]
    service = _load(url)
    if service is not None:
        shown = {unquote(part) for part in _URL_SEPARATORS.split(service.url(privacy=True))}
        for part in _URL_SEPARATORS.split(service.url()):
            if part and unquote(part) not in shown:
                found += [part, unquote(part)]
    return found


def alert_text(alert: Alert) -> tuple[str, str]:
    """The title (`cam01: Person, Car`) and a short plain-text body."""
    names = ", ".join(match.display_name for match in alert.matched)
    confidences = ", ".join(
        f"{match.display_name} {match.label.confidence:.0f}%" for match in alert.matched
    )
    body = f"Camera {alert.camera} at {alert.received_at:%Y-%m-%d %H:%M:%S}\n{confidences}"
    if alert.event_id is not None:
        # The same on every attempt: a receiver can tell a copy sent again after a crash.
        body += f"\nEvent {alert.event_id}"
    return f"{alert.camera}: {names}", body


def snapshot_file_name(alert: Alert) -> str:
    camera = _UNSAFE_IN_FILE_NAME.sub("_", alert.camera)
    return f"{camera}_{alert.received_at:%Y-%m-%d_%H-%M-%S}.jpg"


class AppriseNotifier(NotifierBase):
    """Sends alerts to one Apprise URL; the snapshot goes along where the service takes files."""

    def __init__(self, url: str, name: str) -> None:
        import apprise

        service = _load(url)
        if service is None:
            raise ValueError(f"{name}: Apprise cannot use this URL")
        self.name = name
        # Tokens hidden and the query left out: enough to tell URLs apart in logs and events.
        self.target = service.url(privacy=True).split("?")[0]
        # Longest first, so that a secret containing another is hidden whole.
        self._secrets = sorted(set(secrets_in_url(url)) - {""}, key=len, reverse=True)
        self._apprise = apprise.Apprise(asset=_asset())
        self._apprise.add(service)
        self._text = apprise.NotifyFormat.TEXT
        # One alert at a time per URL: plugins keep throttling state, and rate-limited
        # services such as Telegram answer better to messages in turn than to a burst.
        self._lock = threading.Lock()
        apprise_logger = logging.getLogger(APPRISE_LOGGER)
        if apprise_logger.level == logging.NOTSET:  # a logging config that sets it wins
            apprise_logger.setLevel(logging.WARNING)

    def send(self, alert: Alert) -> NotifyOutcome:
        from apprise.attachment.memory import AttachMemory

        title, body = alert_text(alert)
        snapshot = AttachMemory(
            content=alert.annotated_jpeg, name=snapshot_file_name(alert), mimetype="image/jpeg"
        )
        with self._lock:
            result = self._apprise.notify(
                body=body, title=title, body_format=self._text, attach=snapshot
            )
        with result:
            if result:
                return NotifyOutcome(self.name, ok=True, detail=f"sent to {self.target}")
            reasons = [entry.message for entry in result.logs() if entry.level in _FAILURE_LEVELS]
        detail = f"{self.target}: {'; '.join(reasons) or 'not delivered'}"
        # Apprise's messages are meant to hide tokens; the event record must not rely on it.
        for secret in self._secrets:
            detail = detail.replace(secret, MASK)
        # Apprise does not say whether a failure is lasting; the queue's backoff bounds retries.
        return NotifyOutcome(self.name, ok=False, detail=detail, retry=True)


def build_apprise_notifiers(
    settings: AppriseConfig, context: NotifierContext
) -> list[AppriseNotifier]:
    """One notifier per URL, each with its own outcome and retries, named `apprise:<scheme>`.

    A scheme used again gets `#2`, `#3`, … in list order: the queue remembers by name which
    notifiers already delivered an alert, so names must be unique and stable.
    """
    uses: Counter[str] = Counter()
    notifiers = []
    for secret in settings.root:
        url = secret.get_secret_value()
        scheme = url.partition("://")[0].lower()
        uses[scheme] += 1
        suffix = f"#{uses[scheme]}" if uses[scheme] > 1 else ""
        notifiers.append(AppriseNotifier(url, f"apprise:{scheme}{suffix}"))
    return notifiers
