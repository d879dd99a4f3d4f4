"""A fake ONVIF camera on a loopback port: SOAP answered through the WSDLs onvif-zeep-async ships
(requests read and replies written by zeep from those very files), WS-Security checked, motion
events by PullPoint, and its snapshot over HTTP behind digest (or basic) authentication."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import onvif
import pytest
from lxml import etree
from zeep import Client, Settings
from zeep.wsdl.definitions import Operation

HOST = "127.0.0.1"
USERNAME = "admin"
PASSWORD = "Onvif-Passw0rd-2291"
MOTION_ALARM = "tns1:VideoSource/MotionAlarm"  # Hikvision, Dahua, most others: State
CELL_MOTION = "tns1:RuleEngine/CellMotionDetector/Motion"  # TP-Link Tapo, Axis: IsMotion
SNAPSHOT_PATH = "/onvif-http/snapshot"
MAX_HOLD_SECONDS = 60.0  # a PullMessages waits this long at most for a message

WSDL = Path(onvif.__file__).parent / "wsdl"
SOAP = "http://www.w3.org/2003/05/soap-envelope"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"
TT = "http://www.onvif.org/ver10/schema"
TOPIC_DIALECT = "http://www.onvif.org/ver10/tev/topicExpression/ConcreteSet"
DEVICE_NS = "http://www.onvif.org/ver10/device/wsdl"
MEDIA_NS = "http://www.onvif.org/ver10/media/wsdl"
EVENTS_NS = "http://www.onvif.org/ver10/events/wsdl"
# Each path of the device: the services' namespaces (as GetServices names them) and bindings.
PATHS = {"/onvif/device_service": DEVICE_NS, "/onvif/media": MEDIA_NS, "/onvif/events": EVENTS_NS}
BINDINGS = {
    "/onvif/device_service": [("devicemgmt.wsdl", f"{{{DEVICE_NS}}}DeviceBinding")],
    "/onvif/media": [("media.wsdl", f"{{{MEDIA_NS}}}MediaBinding")],
    "/onvif/events": [("events.wsdl", f"{{{EVENTS_NS}}}EventBinding")],
    "/onvif/subscription": [
        ("events.wsdl", f"{{{EVENTS_NS}}}PullPointSubscriptionBinding"),
        ("events.wsdl", f"{{{EVENTS_NS}}}SubscriptionManagerBinding"),
    ],
}
# As real cameras: the clock may be read without logging in, nothing else.
AUTHLESS = {"GetSystemDateAndTime"}


def _operations() -> dict[tuple[str, str], Operation]:
    """(path, operation name) → the zeep operation that reads its request and writes its reply."""
    settings = Settings(strict=False, xml_huge_tree=True)
    clients = {
        name: Client(str(WSDL / name), settings=settings)
        for name in {"devicemgmt.wsdl", "media.wsdl", "events.wsdl"}
    }
    found = {}
    for path, bindings in BINDINGS.items():
        for wsdl, binding in bindings:
            for name, operation in clients[wsdl].wsdl.bindings[binding]._operations.items():
                found[(path, name)] = operation
    return found


_OPERATIONS: dict[tuple[str, str], Operation] | None = None


def operations() -> dict[tuple[str, str], Operation]:
    global _OPERATIONS
    if _OPERATIONS is None:
        _OPERATIONS = _operations()
    return _OPERATIONS


@dataclass
class Subscription:
    number: int
    terminates: datetime
    pending: list[tuple[str, str, str]] = field(default_factory=list)  # (topic, item, value)


class SoapFault(Exception):
    def __init__(self, code: str, subcode: str, reason: str, status: int = 500) -> None:
        super().__init__(reason)
        self.code, self.subcode, self.reason, self.status = code, subcode, reason, status


@dataclass
class FakeOnvifCamera:
    """The camera; its switches make it misbehave as real firmware does."""

    snapshot: bytes
    username: str = USERNAME
    password: str = PASSWORD
    snapshot_auth: str = "digest"  # or "basic"
    # Answers HTTP 500 (a plain error page, no SOAP) to CreatePullPointSubscription while set.
    create_fails: bool = False
    # No GetServices (older firmware): the client falls back to GetCapabilities.
    without_get_services: bool = False
    host: str = HOST
    port: int = 0
    requests: list[str] = field(default_factory=list)  # operation names, in order
    snapshots_served: int = 0
    snapshots_refused: int = 0  # asked with credentials that are wrong
    subscriptions: dict[int, Subscription] = field(default_factory=dict)
    changed: threading.Condition = field(default_factory=threading.Condition)
    closing: bool = False
    _numbers: Iterator[int] = field(default_factory=lambda: iter(range(1, 1_000_000)))

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def motion(self, topic: str = MOTION_ALARM) -> None:
        """Motion starts: each live subscription gets the event at its next (or held) pull."""
        item = "IsMotion" if topic == CELL_MOTION else "State"
        with self.changed:
            for subscription in self.subscriptions.values():
                subscription.pending.append((topic, item, "true"))
            self.changed.notify_all()

    def drop_subscriptions(self) -> None:
        """As after a reboot: every subscription is forgotten; a pull is answered with a fault."""
        with self.changed:
            self.subscriptions.clear()
            self.changed.notify_all()

    def calls(self, operation: str) -> int:
        with self.changed:
            return self.requests.count(operation)

    # The operations: each returns the reply's elements, as zeep serializes them.

    def GetSystemDateAndTime(self, request: Any) -> dict[str, Any]:
        now = datetime.now(timezone.utc)
        moment = {
            "Time": {"Hour": now.hour, "Minute": now.minute, "Second": now.second},
            "Date": {"Year": now.year, "Month": now.month, "Day": now.day},
        }
        return {
            "SystemDateAndTime": {
                "DateTimeType": "NTP",
                "DaylightSavings": False,
                "TimeZone": {"TZ": "UTC0"},
                "UTCDateTime": moment,
                "LocalDateTime": moment,
            }
        }

    def GetServices(self, request: Any) -> dict[str, Any]:
        if self.without_get_services:
            raise SoapFault("Receiver", "ter:ActionNotSupported", "GetServices is not supported")
        return {
            "Service": [
                {
                    "Namespace": namespace,
                    "XAddr": self.base_url + path,
                    "Version": {"Major": 2, "Minor": 60},
                }
                for path, namespace in PATHS.items()
            ]
        }

    def GetCapabilities(self, request: Any) -> dict[str, Any]:
        return {
            "Capabilities": {
                "Device": {"XAddr": self.base_url + "/onvif/device_service"},
                "Events": {
                    "XAddr": self.base_url + "/onvif/events",
                    "WSSubscriptionPolicySupport": False,
                    "WSPullPointSupport": True,
                    "WSPausableSubscriptionManagerInterfaceSupport": False,
                },
                "Media": {
                    "XAddr": self.base_url + "/onvif/media",
                    "StreamingCapabilities": {
                        "RTPMulticast": False,
                        "RTP_TCP": True,
                        "RTP_RTSP_TCP": True,
                    },
                },
            }
        }

    def GetProfiles(self, request: Any) -> dict[str, Any]:
        return {"Profiles": [{"token": "MainStream", "fixed": True, "Name": "mainStream"}]}

    def GetSnapshotUri(self, request: Any) -> dict[str, Any]:
        if request.ProfileToken != "MainStream":
            raise SoapFault("Sender", "ter:NoProfile", "No such profile")
        return {
            "MediaUri": {
                "Uri": self.base_url + SNAPSHOT_PATH,
                "InvalidAfterConnect": False,
                "InvalidAfterReboot": False,
                "Timeout": timedelta(0),
            }
        }

    def CreatePullPointSubscription(self, request: Any) -> dict[str, Any]:
        if self.create_fails:
            raise HttpError(500, b"Internal Server Error")
        now = datetime.now(timezone.utc)
        subscription = Subscription(next(self._numbers), now + _duration(request))
        with self.changed:
            self.subscriptions[subscription.number] = subscription
        address = f"{self.base_url}/onvif/subscription?Idx={subscription.number}"
        return {
            "SubscriptionReference": {"Address": {"_value_1": address}},
            "CurrentTime": now,
            "TerminationTime": subscription.terminates,
        }

    def PullMessages(self, request: Any, subscription: Subscription) -> dict[str, Any]:
        timeout = min(request.Timeout.total_seconds(), MAX_HOLD_SECONDS)
        with self.changed:
            self.changed.wait_for(
                lambda: (
                    subscription.pending
                    or self.closing
                    or subscription.number not in self.subscriptions
                ),
                timeout,
            )
            if subscription.number not in self.subscriptions:
                raise _unknown_subscription()
            messages, subscription.pending = subscription.pending, []
        now = datetime.now(timezone.utc)
        return {
            "CurrentTime": now,
            "TerminationTime": subscription.terminates,
            "NotificationMessage": [
                {
                    "Topic": {"_value_1": topic, "Dialect": TOPIC_DIALECT},
                    "Message": {"_value_1": _event_message(now, item, value)},
                }
                for topic, item, value in messages
            ],
        }

    def Renew(self, request: Any, subscription: Subscription) -> dict[str, Any]:
        now = datetime.now(timezone.utc)
        subscription.terminates = now + _duration(request, "TerminationTime")
        return {"CurrentTime": now, "TerminationTime": subscription.terminates}

    def Unsubscribe(self, request: Any, subscription: Subscription) -> dict[str, Any]:
        with self.changed:
            self.subscriptions.pop(subscription.number, None)
        return {}

    def SetSynchronizationPoint(self, request: Any, subscription: Subscription) -> dict[str, Any]:
        return {}

    def answer(self, path: str, query: str, body: bytes) -> bytes:
        """The SOAP reply to a request; raises SoapFault or HttpError."""
        envelope = etree.fromstring(body)
        (content,) = envelope.find(f"{{{SOAP}}}Body")
        name = etree.QName(content).localname
        with self.changed:
            self.requests.append(name)
        operation = operations().get((path, name))
        if operation is None:
            raise SoapFault("Receiver", "ter:ActionNotSupported", f"{name} is not supported")
        if name not in AUTHLESS:
            self._check_login(envelope)
        request = _request_fields(operation, operation.input.deserialize(envelope))
        arguments: list[Any] = [request]
        if path == "/onvif/subscription":
            number = int(query.removeprefix("Idx=") or 0)
            with self.changed:
                subscription = self.subscriptions.get(number)
            if subscription is None:
                raise _unknown_subscription()
            arguments.append(subscription)
        reply = getattr(self, name)(*arguments)
        return etree.tostring(
            operation.output.serialize(**reply).content, xml_declaration=True, encoding="utf-8"
        )

    def _check_login(self, envelope: Any) -> None:
        """WS-Security UsernameToken with PasswordDigest: SHA-1(nonce + created + password)."""
        token = envelope.find(f".//{{{WSSE}}}UsernameToken")
        if token is None:
            raise SoapFault("Sender", "ter:NotAuthorized", "Sender not authorized", 400)
        user = token.findtext(f"{{{WSSE}}}Username")
        sent = token.findtext(f"{{{WSSE}}}Password") or ""
        nonce = base64.b64decode(token.findtext(f"{{{WSSE}}}Nonce") or "")
        created = token.findtext(f"{{{WSU}}}Created") or ""
        expected = base64.b64encode(
            hashlib.sha1(nonce + created.encode() + self.password.encode()).digest()
        ).decode()
        if user != self.username or not secrets.compare_digest(sent, expected):
            raise SoapFault("Sender", "ter:NotAuthorized", "Sender not authorized", 400)

    def serve_snapshot(
        self, method: str, path: str, authorization: str
    ) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) for the snapshot address."""
        if self.snapshot_auth == "basic":
            wanted = base64.b64encode(f"{self.username}:{self.password}".encode()).decode()
            if authorization != f"Basic {wanted}":
                self._count_refusal(authorization)
                return 401, {"WWW-Authenticate": 'Basic realm="camera"'}, b"Unauthorized"
        elif not self._digest_matches(method, authorization):
            self._count_refusal(authorization)
            nonce = secrets.token_hex(16)
            challenge = f'Digest realm="camera", qop="auth", nonce="{nonce}", algorithm=MD5'
            return 401, {"WWW-Authenticate": challenge}, b"Unauthorized"
        with self.changed:
            self.snapshots_served += 1
        return 200, {"Content-Type": "image/jpeg"}, self.snapshot

    def _count_refusal(self, authorization: str) -> None:
        if authorization:
            with self.changed:
                self.snapshots_refused += 1

    def _digest_matches(self, method: str, authorization: str) -> bool:
        scheme, _, rest = authorization.partition(" ")
        if scheme.lower() != "digest":
            return False
        parts = dict(re.findall(r'(\w+)="?([^",]*)"?', rest))
        ha1 = _md5(f"{self.username}:{parts.get('realm', '')}:{self.password}")
        ha2 = _md5(f"{method}:{parts.get('uri', '')}")
        expected = _md5(
            f"{ha1}:{parts.get('nonce', '')}:{parts.get('nc', '')}:{parts.get('cnonce', '')}"
            f":{parts.get('qop', '')}:{ha2}"
        )
        return parts.get("username") == self.username and secrets.compare_digest(
            parts.get("response", ""), expected
        )


class HttpError(Exception):
    """An answer that is no SOAP at all (a web server's error page)."""

    def __init__(self, status: int, body: bytes) -> None:
        super().__init__(status)
        self.status, self.body = status, body


def _request_fields(operation: Operation, request: Any) -> Any:
    """The request's elements by name (zeep gives a lone element's value bare)."""
    names = [name for name, _ in operation.input.body.type.elements]
    return SimpleNamespace(**{names[0]: request}) if len(names) == 1 else request


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()


def _duration(request: Any, name: str = "InitialTerminationTime") -> timedelta:
    """A subscription's asked length: `PT600S`, or an absolute time (cameras with a broken
    relative clock are sent one)."""
    value = getattr(request, name, None)
    if isinstance(value, str):
        match = re.fullmatch(r"PT(\d+)S", value)
        if match:
            return timedelta(seconds=int(match.group(1)))
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")) - datetime.now(timezone.utc)
        except ValueError:
            pass
    return timedelta(seconds=60)


def _event_message(now: datetime, item: str, value: str) -> Any:
    message = etree.Element(f"{{{TT}}}Message", nsmap={"tt": TT})
    message.set("UtcTime", now.strftime("%Y-%m-%dT%H:%M:%SZ"))
    message.set("PropertyOperation", "Changed")
    source = etree.SubElement(message, f"{{{TT}}}Source")
    etree.SubElement(
        source, f"{{{TT}}}SimpleItem", Name="VideoSourceConfigurationToken", Value="VideoSource_1"
    )
    data = etree.SubElement(message, f"{{{TT}}}Data")
    etree.SubElement(data, f"{{{TT}}}SimpleItem", Name=item, Value=value)
    return message


def _unknown_subscription() -> SoapFault:
    return SoapFault("Sender", "wsrf-rw:ResourceUnknownFault", "Unknown subscription")


def _fault_envelope(fault: SoapFault) -> bytes:
    nsmap = {
        "env": SOAP,
        "ter": "http://www.onvif.org/ver10/error",
        "wsrf-rw": "http://docs.oasis-open.org/wsrf/rw-2",
    }
    envelope = etree.Element(f"{{{SOAP}}}Envelope", nsmap=nsmap)
    body = etree.SubElement(envelope, f"{{{SOAP}}}Body")
    element = etree.SubElement(body, f"{{{SOAP}}}Fault")
    code = etree.SubElement(element, f"{{{SOAP}}}Code")
    etree.SubElement(code, f"{{{SOAP}}}Value").text = f"env:{fault.code}"
    subcode = etree.SubElement(code, f"{{{SOAP}}}Subcode")
    etree.SubElement(subcode, f"{{{SOAP}}}Value").text = fault.subcode
    reason = etree.SubElement(element, f"{{{SOAP}}}Reason")
    text = etree.SubElement(reason, f"{{{SOAP}}}Text")
    text.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
    text.text = fault.reason
    return etree.tostring(envelope, xml_declaration=True, encoding="utf-8")


def _handler(camera: FakeOnvifCamera) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            path, _, query = self.path.partition("?")
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                status, reply = 200, camera.answer(path, query, body)
                kind = "application/soap+xml; charset=utf-8"
            except SoapFault as fault:
                status, reply, kind = fault.status, _fault_envelope(fault), "application/soap+xml"
            except HttpError as error:
                status, reply, kind = error.status, error.body, "text/plain"
            self._send(status, {"Content-Type": kind}, reply)

        def do_GET(self) -> None:
            if self.path != SNAPSHOT_PATH:
                self._send(404, {"Content-Type": "text/plain"}, b"Not found")
                return
            status, headers, body = camera.serve_snapshot(
                "GET", self.path, self.headers.get("Authorization", "")
            )
            self._send(status, headers, body)

        def _send(self, status: int, headers: dict[str, str], body: bytes) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@dataclass
class OnvifCameras:
    """Starts fake cameras; each is closed at the end of the test."""

    started: list[tuple[FakeOnvifCamera, ThreadingHTTPServer]] = field(default_factory=list)

    def start(self, snapshot: bytes, **switches: Any) -> FakeOnvifCamera:
        camera = FakeOnvifCamera(snapshot, **switches)
        server = ThreadingHTTPServer((HOST, 0), _handler(camera))
        server.daemon_threads = True
        camera.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, name="fake-onvif", daemon=True).start()
        self.started.append((camera, server))
        return camera

    def close(self) -> None:
        for camera, server in self.started:
            with camera.changed:
                camera.closing = True
                camera.changed.notify_all()
            server.shutdown()
            server.server_close()


@pytest.fixture
def onvif_cameras() -> Iterator[OnvifCameras]:
    cameras = OnvifCameras()
    yield cameras
    cameras.close()
