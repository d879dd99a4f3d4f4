"""HTTP push: a camera, script or Home Assistant POSTs a snapshot; 201 once its queue row is in."""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import logging
import re
import uuid
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydantic import Field
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ipcam_analysis.imaging.clips import CLIP_SUFFIXES, clip_format
from ipcam_analysis.ingest.context import CameraDirectory
from ipcam_analysis.ingest.handoff import NotAccepted, Received, Refusal, UploadIntake
from ipcam_analysis.ingest.http_guard import make_guarded_protocol
from ipcam_analysis.ingest.throttle import LoginThrottle, printable
from ipcam_analysis.net.asgi_server import AsgiServer
from ipcam_analysis.settings import StrictModel
from ipcam_analysis.values import Upload

log = logging.getLogger(__name__)

MB = 1024 * 1024
IMAGE_TYPES = {"image/jpeg": ".jpg", "image/png": ".png"}
SIGNATURES = {b"\xff\xd8\xff": ".jpg", b"\x89PNG\r\n\x1a\n": ".png"}
# Video clips, named after what their bytes are (imaging.clips.clip_format).
CLIP_TYPES = {"video/mp4", "video/quicktime", "video/x-matroska", "video/h264", "video/h265"}
# What cameras send a file of their own format as (an XMeye `.264`, a Dahua `.dav`).
ANY_TYPE = "application/octet-stream"
# Beyond this many uploads being read at once (a flood), 503 without reading further.
MAX_UPLOADS_AT_ONCE = 64
# Open connections in all (idle ones cost a descriptor each); an address has 20 of them.
MAX_OPEN_CONNECTIONS = 1024
RETRY_AFTER_SECONDS = 30
MAX_NAME_LENGTH = 120
# The intake's refusals in HTTP's words, each a 503 with Retry-After: the client sends it again.
ANSWERS = {
    Refusal.QUEUE_FULL: "Too many uploads waiting for analysis; try again later.",
    Refusal.DISK_FULL: "Insufficient storage space on the server; try again later.",
    Refusal.NOT_STORED: "The upload could not be written",  # then the system's reason
    Refusal.NOT_QUEUED: "The upload could not be queued for analysis",
}
REALM = 'Basic realm="ipcam-analysis uploads", charset="UTF-8"'


class HttpIngestConfig(StrictModel):
    """`POST /upload` on a listener of its own (the dashboard stays on loopback)."""

    enabled: bool = False
    host: str = "0.0.0.0"
    port: int = Field(8090, ge=0, le=65535)  # 0: any free port (tests)
    max_upload_mb: float = Field(20, gt=0, le=1024)


class ErrorAnswer(Exception):
    """An upload answered with an error status; `reason` is the body and the log's words."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class Picture:
    data: bytes
    suffix: str  # .jpg or .png, or a clip's (.mp4, .mkv, .264...)
    sent_name: str | None  # the form field's file name, if any


class HttpIngest:
    """Serves `POST /upload` with uvicorn in a thread of its own."""

    def __init__(
        self,
        settings: HttpIngestConfig,
        cameras: CameraDirectory,
        intake: UploadIntake,
        *,
        login_throttle: LoginThrottle,
    ) -> None:
        self._settings = settings
        self._cameras = cameras
        self._intake = intake
        self._throttle = login_throttle
        app = Starlette(routes=[Route("/upload", self._upload, methods=["POST"])])
        self._server = AsgiServer(
            app,
            settings.host,
            settings.port,
            what="HTTP uploads",
            hint="change http_ingest.port, or set http_ingest.enabled: false",
            thread_name="http-ingest",
            http_protocol=make_guarded_protocol("HTTP uploads", MAX_OPEN_CONNECTIONS),
        )
        self._uploads_being_read = 0

    @property
    def address(self) -> tuple[str, int]:
        return self._server.address

    def start(self) -> None:
        self._server.start()
        host, port = self._server.address
        log.info("HTTP uploads on %s:%d for %d camera(s)", host, port, len(self._cameras.passwords))

    def stop(self) -> None:
        self._server.stop()

    async def _upload(self, request: Request) -> Response:
        address = request.client.host if request.client else ""
        camera = self._camera(request)
        if camera is None:
            return await self._refuse_login(request, address)
        self._throttle.forget(address)
        self._uploads_being_read += 1
        try:
            if self._uploads_being_read > MAX_UPLOADS_AT_ONCE:
                raise ErrorAnswer(503, "Too many uploads at once; try again later")
            busy = self._intake.refusal()
            if busy is not None:
                raise ErrorAnswer(503, ANSWERS[busy])
            picture = await self._read_picture(request)
            wanted = request.query_params.get("name") or picture.sent_name
            upload = _named_upload(camera, address, wanted, picture.suffix, self._cameras.root_dir)
            log.info(
                "Upload from %s (%s) over HTTP: %s (%d bytes)",
                camera,
                address,
                upload.original_name,
                len(picture.data),
            )
            item_id = await run_in_threadpool(self._queue, Received(upload, picture.data))
        except ErrorAnswer as refused:
            log.warning("HTTP upload from %s (%s) refused: %s", camera, address, refused.reason)
            headers = {"Retry-After": str(RETRY_AFTER_SECONDS)} if refused.status == 503 else {}
            return PlainTextResponse(refused.reason + "\n", refused.status, headers=headers)
        finally:
            self._uploads_being_read -= 1
        body = {"id": item_id, "camera": camera, "name": upload.original_name}
        return JSONResponse(body, 201)

    def _camera(self, request: Request) -> str | None:
        """The camera whose name and password the request carries, or None."""
        name, password = _basic_credentials(request)
        expected = self._cameras.passwords.get(name)
        # Compared even for an unknown name, so the answer's timing does not tell names apart.
        secret = expected.get_secret_value() if expected else "\0 no such camera"
        matches = hmac.compare_digest(secret.encode(), password.encode())
        return name if expected and matches else None

    async def _refuse_login(self, request: Request, address: str) -> Response:
        # Answered late, later after each failure from the address: the FTP server's throttle.
        name = _basic_credentials(request)[0]
        await asyncio.sleep(self._throttle.failed_login(address, name, "HTTP upload", log))
        headers = {"WWW-Authenticate": REALM}
        return PlainTextResponse("Wrong camera name or password\n", 401, headers=headers)

    async def _read_picture(self, request: Request) -> Picture:
        """The picture, from a raw image body or a multipart form's `file` field."""
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        # A generic type is taken too: its bytes are told below, like every body's.
        raw = content_type in IMAGE_TYPES or content_type in CLIP_TYPES or content_type == ANY_TYPE
        if not raw and content_type != "multipart/form-data":
            shown = printable(content_type) or "none"
            raise ErrorAnswer(
                415, f"Not an image or clip type: {shown} (send image/jpeg, image/png or video/mp4)"
            )
        body = await self._read_body(request)
        data, sent_name = (body, None) if raw else await _form_file(request, body)
        # What the bytes are, whatever the client says they are.
        suffix = next((s for sig, s in SIGNATURES.items() if data.startswith(sig)), None)
        suffix = suffix or CLIP_SUFFIXES.get(clip_format(data) or "")
        if suffix is None:
            raise ErrorAnswer(
                415, f"The {'body' if raw else 'file field'} holds no JPEG or PNG image nor clip"
            )
        return Picture(data, suffix, sent_name)

    async def _read_body(self, request: Request) -> bytes:
        limit = int(self._settings.max_upload_mb * MB)
        too_large = ErrorAnswer(413, f"Larger than http_ingest.max_upload_mb ({limit // MB} MB)")
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise too_large  # before reading a byte of it
        chunks: list[bytes] = []
        received = 0
        try:
            async for chunk in request.stream():
                received += len(chunk)
                if received > limit:
                    raise too_large
                chunks.append(chunk)
        except ClientDisconnect:
            raise ErrorAnswer(400, f"Cut off after {received} bytes; nothing kept") from None
        if declared.isdigit() and received < int(declared):
            raise ErrorAnswer(400, f"Cut off after {received} of {declared} bytes; nothing kept")
        if not received:
            raise ErrorAnswer(400, "Empty body")
        return b"".join(chunks)

    def _queue(self, received: Received) -> int:
        """The upload's id once its row is committed (the intake keeps its bytes)."""
        try:
            (item_id,) = self._intake.accept([received])
        except NotAccepted as refused:  # nothing is kept: the client sends it again
            answer = ANSWERS[refused.refusal]
            if refused.refusal is Refusal.NOT_STORED:
                answer = f"{answer}: {refused.reason}"
            raise ErrorAnswer(503, answer) from None
        return item_id


async def _form_file(request: Request, body: bytes) -> tuple[bytes, str | None]:
    async def replay() -> AsyncGenerator[bytes, None]:
        yield body

    parser = MultiPartParser(request.headers, replay(), max_files=1, max_fields=20)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        raise ErrorAnswer(400, f"Not a valid multipart form: {exc.message}") from None
    field = form.get("file")
    if not isinstance(field, UploadFile):
        raise ErrorAnswer(400, "The form has no `file` field with a file in it")
    return await field.read(), field.filename


def _named_upload(
    camera: str, address: str, wanted: str | None, suffix: str, root_dir: Path
) -> Upload:
    """The Upload for this request, in a folder per camera and day: <root>/<camera>/http/…"""
    name = _safe_name(wanted) or f"snapshot{suffix}"
    received = datetime.now().astimezone()
    home = root_dir / camera
    unique = f"{received:%H%M%S}-{uuid.uuid4().hex[:8]}-{name}"
    return Upload(
        camera=camera,
        path=home / "http" / f"{received:%Y-%m-%d}" / unique,
        received_at=received,
        remote_ip=address,
        original_name=name,
        source="http",
        remove_when_done=True,
        home=home,
    )


def _safe_name(wanted: str | None) -> str:
    """The last part of a client's file name, without characters a file system or log chokes on."""
    last = re.split(r"[\\/]", wanted or "")[-1]
    cleaned = re.sub(r"[\x00-\x1f\x7f]", "", last).strip(" .")
    return cleaned[:MAX_NAME_LENGTH]


def _basic_credentials(request: Request) -> tuple[str, str]:
    """(name, password) from an HTTP Basic Authorization header; empty strings if none."""
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    try:
        decoded = base64.b64decode(encoded, validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return "", ""
    name, _, password = decoded.partition(":")
    return (name, password) if scheme.lower() == "basic" else ("", "")
