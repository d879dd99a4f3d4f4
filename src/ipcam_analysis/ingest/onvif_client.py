"""What is asked of the cameras, through onvif-zeep-async (ONVIF) and aiohttp (snapshots), and
what they answer: motion in their events, pictures, and failures in words for the user."""

from __future__ import annotations

import asyncio
import base64
import logging
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

if TYPE_CHECKING:
    import aiohttp

# An ONVIF event topic, or an XMeye alarm's name, that says something moved or was detected.
MOTION = re.compile(
    r"motion|people|person|human|vehicle|visitor|intrusion|fielddetector|linedetector|localalarm",
    re.IGNORECASE,
)
SNAPSHOT_TIMEOUT_SECONDS = 15.0
MAX_SNAPSHOT_BYTES = 20 * 1024 * 1024


def onvif_endpoint(address: str) -> tuple[str, int]:
    """(host, port) as the client library takes them; the host carries `https://` for HTTPS."""
    parts = urlsplit(address if "://" in address else f"http://{address}")
    try:
        port = parts.port
    except ValueError:
        port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or port == -1:
        raise ValueError(f"{address!r} is not a camera address such as 192.168.1.30:2020")
    secure = parts.scheme == "https"
    return ("https://" if secure else "") + parts.hostname, port or (443 if secure else 80)


class LinkFailure(Exception):
    """What the camera was asked, and why that failed, in words for the user."""

    def __init__(self, asked: str, reason: str) -> None:
        super().__init__(f"{asked}: {reason}")


class SnapshotError(Exception):
    """Why a snapshot could not be fetched, in words for the user."""


def motion_topic(message: Any) -> str | None:
    """The topic of a notification saying that motion started (a motion topic whose data holds
    a true value), else None. The state a camera reports on subscribing (`Initialized`) is
    not news: a reconnection must not take a snapshot."""
    topic = getattr(getattr(message, "Topic", None), "_value_1", None)
    payload = getattr(getattr(message, "Message", None), "_value_1", None)
    if not isinstance(topic, str) or payload is None or not MOTION.search(topic):
        return None
    if hasattr(payload, "iterfind"):  # left as XML: a namespace the schema does not know
        operation = payload.get("PropertyOperation")
        values = [item.get("Value") for item in payload.iterfind("{*}Data/{*}SimpleItem")]
    else:
        operation = getattr(payload, "PropertyOperation", None)
        items = getattr(getattr(payload, "Data", None), "SimpleItem", None) or ()
        values = [getattr(item, "Value", None) for item in items]
    if operation == "Initialized":
        return None
    return topic.strip() if any(str(v).lower() in ("true", "1") for v in values) else None


async def snapshot_uri(device: Any, name: str) -> str:
    """The snapshot address ONVIF gives for the camera's first profile that has one."""
    media = await device.create_media_service()
    for profile in await media.GetProfiles():
        uri = await device.get_snapshot_uri(profile.token)
        if uri:
            return str(uri)
    raise LinkFailure(
        "GetSnapshotUri",
        f"the camera gives no snapshot address: set cameras.{name}.onvif.snapshot_url",
    )


async def fetch_snapshot(
    session: aiohttp.ClientSession, url: str, username: str, password: str, name: str
) -> bytes:
    """The picture at `url`, with digest authentication, or basic when the camera asks for it
    (credentials written in the URL count as given); at most MAX_SNAPSHOT_BYTES."""
    import aiohttp

    parts = urlsplit(url)
    username = username or unquote(parts.username or "")
    password = password or unquote(parts.password or "")
    address = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    digest = (aiohttp.DigestAuthMiddleware(username, password),) if username else ()
    try:
        status, challenge, data = await _get(session, address, middlewares=digest)
        if status == 401 and username and challenge.lower().startswith("basic"):
            basic = base64.b64encode(f"{username}:{password}".encode()).decode()
            headers = {"Authorization": f"Basic {basic}"}
            status, challenge, data = await _get(session, address, headers=headers)
    except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
        raise SnapshotError(describe_error(exc, name)) from None
    if status == 401:
        raise SnapshotError(
            f"the camera refused the user name or password (HTTP 401): check"
            f" cameras.{name}.onvif.username and password"
        )
    if status >= 300:
        raise SnapshotError(f"the camera answered HTTP {status}")
    return data


async def _get(session: aiohttp.ClientSession, url: str, **auth: Any) -> tuple[int, str, bytes]:
    """(status, WWW-Authenticate, body); no body unless the answer is a success."""
    async with session.get(url, **auth) as response:
        if response.status >= 300:
            return response.status, response.headers.get("WWW-Authenticate", ""), b""
        chunks, size = [], 0
        async for chunk in response.content.iter_chunked(64 * 1024):
            size += len(chunk)
            if size > MAX_SNAPSHOT_BYTES:
                raise SnapshotError(f"the picture is over {MAX_SNAPSHOT_BYTES // 2**20} MB")
            chunks.append(chunk)
        return response.status, "", b"".join(chunks)


def describe_error(exc: BaseException, name: str) -> str:
    """What went wrong talking to camera `name`, in words for the user."""
    import aiohttp
    from onvif.exceptions import ONVIFError
    from zeep.exceptions import Fault, TransportError, XMLParseError

    if isinstance(exc, Fault):
        subcodes = " ".join(getattr(code, "localname", str(code)) for code in exc.subcodes or ())
        if "NotAuthorized" in subcodes:
            return (
                f"the camera refused the user name or password: check"
                f" cameras.{name}.onvif.username and password"
            )
        return f"the camera answered a fault: {exc.message}" + (
            f" ({subcodes})" if subcodes else ""
        )
    if isinstance(exc, TransportError):
        return f"the camera answered HTTP {exc.status_code}"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect to {exc.host}:{exc.port} ({exc.os_error.strerror or exc.os_error})"
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return "the camera did not answer in time"
    if isinstance(exc, aiohttp.ClientError):
        return f"the connection failed ({_without_address(exc)})"
    if isinstance(exc, ONVIFError):
        return str(exc).removeprefix("Unknown error: ")
    if isinstance(exc, XMLParseError) or "getroottree" in str(exc):  # zeep read no XML at all
        return "the camera's answer is no SOAP (an error page?)"
    return f"an answer that could not be read ({_without_address(exc)})"


def _without_address(exc: BaseException) -> str:
    """The error's text, unless it holds an address: shown on the dashboard, which the log's
    masking does not cover, a snapshot_url's password must not be."""
    text = str(exc)
    return type(exc).__name__ if not text or "://" in text else f"{type(exc).__name__}: {text}"


def load_client_library() -> None:
    """Import onvif-zeep-async (a second's work, so only when a camera uses it) without the
    logging set-up it does on import: the service's own logging stays as configured."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    import onvif  # noqa: F401

    for handler in root.handlers:
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
