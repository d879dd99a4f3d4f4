"""A camera's e-mail taken apart: its pictures, its text, and the uploads they become."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.header import decode_header, make_header
from email.message import Message
from email.parser import BytesParser
from pathlib import Path
from typing import IO

from ipcam_analysis.ingest.handoff import Received
from ipcam_analysis.values import Upload

PICTURE_TYPES = {
    "image/jpeg": ".jpg",
    "image/jpg": ".jpg",
    "image/pjpeg": ".jpg",
    "image/png": ".png",
}
# Video clips are taken too (the pipeline tells them by their content).
CLIP_TYPES = {
    "video/mp4": ".mp4",
    "video/quicktime": ".mov",
    "video/x-matroska": ".mkv",
    "video/h264": ".h264",
    "video/h265": ".h265",
}
PICTURE_SUFFIXES = {".jpg", ".jpeg", ".png", ".mp4", ".mov", ".mkv", ".h264", ".264", ".dav"}
# Dahua and Hikvision put the event and the channel in a few lines; a camera sending a novel
# must not fill the database.
MAX_NOTE_CHARACTERS = 2000
MAX_PICTURES = 20
# A camera's e-mail holds one or two multiparts; the parser recurses into each nested one.
MAX_MULTIPARTS = 32
SMTP_FOLDER = "smtp"  # in each camera's home, beside what it uploads by FTP
_UNSAFE_IN_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_TAGS = re.compile(r"<[^>]*>")
# A Content-Type line naming a multipart, or leaving its value to the next (folded) line.
_MULTIPART = re.compile(rb"content-type:\s*(multipart/|$)", re.IGNORECASE)


class UnreadableMail(ValueError):
    """A message no retry will make readable (parts nested beyond reason): refused for good."""


@dataclass(frozen=True)
class Picture:
    name: str  # the attachment's file name, made safe for a file system
    data: bytes


@dataclass(frozen=True)
class CameraMail:
    pictures: tuple[Picture, ...]
    note: str  # the subject and the text, shortened


def read_mail(raw: IO[bytes]) -> CameraMail:
    """Every JPEG or PNG attachment or inline image (by type, or by name when the camera says
    application/octet-stream), and the subject with the first text part as the note; `raw`:
    the message as received (a file, read from its start)."""
    if _multiparts(raw) > MAX_MULTIPARTS:
        raise UnreadableMail(f"more than {MAX_MULTIPARTS} multipart sections")
    try:
        # compat32: a third of the time of the default policy, on the camera's hot path.
        message = BytesParser(policy=policy.compat32).parse(raw)
        parts = list(message.walk())
    except RecursionError:  # nesting hidden from the count above (odd header spelling)
        raise UnreadableMail("parts nested too deeply") from None
    pictures: list[Picture] = []
    text = ""
    for part in parts:
        if part.is_multipart():
            continue
        kind = part.get_content_type()
        filename = part.get_filename() or ""
        suffix = PICTURE_TYPES.get(kind) or CLIP_TYPES.get(kind) or _picture_suffix(filename, kind)
        if suffix is not None and len(pictures) < MAX_PICTURES:
            data = part.get_payload(decode=True)
            if isinstance(data, bytes) and data:
                pictures.append(Picture(_file_name(filename, suffix, len(pictures) + 1), data))
        elif kind in ("text/plain", "text/html") and not text and not filename:
            text = _plain_text(part, html=kind == "text/html")
    subject = " ".join(_header_text(message.get("Subject", "")).split())
    note = "\n".join(line for line in (subject, text) if line)
    return CameraMail(tuple(pictures), note[:MAX_NOTE_CHARACTERS])


def _multiparts(raw: IO[bytes]) -> int:
    """The multipart sections the message declares, counted line by line (the parser recurses
    into each); `raw` is left at its start."""
    count = sum(1 for line in raw if _MULTIPART.match(line.rstrip(b"\r\n")))
    raw.seek(0)
    return count


def _picture_suffix(filename: str, kind: str) -> str | None:
    suffix = Path(filename).suffix.lower()
    if kind == "application/octet-stream" and suffix in PICTURE_SUFFIXES:
        return suffix
    return None


def _file_name(filename: str, suffix: str, number: int) -> str:
    stem = _UNSAFE_IN_NAME.sub("_", Path(filename).stem)[:60].strip("._") or "picture"
    return f"{number}-{stem}{suffix}"


def _header_text(value: object) -> str:
    """A header as text, encoded words (=?UTF-8?B?...?=) decoded."""
    try:
        return str(make_header(decode_header(str(value))))
    except (LookupError, UnicodeError, ValueError):  # an unknown or lying charset
        return str(value)


def _plain_text(part: Message, *, html: bool) -> str:
    data = part.get_payload(decode=True)
    if not isinstance(data, bytes):
        return ""
    try:
        content = data.decode(part.get_content_charset() or "utf-8", "replace")
    except LookupError:  # a charset Python does not know
        content = data.decode("utf-8", "replace")
    if html:
        content = _TAGS.sub(" ", content)
    lines = (" ".join(line.split()) for line in content[: MAX_NOTE_CHARACTERS * 2].splitlines())
    return "\n".join(line for line in lines if line)


def mail_uploads(
    mail: CameraMail, camera: str, home: Path, remote_ip: str, received_at: datetime
) -> list[Received]:
    """The pictures as uploads kept under `home`/smtp/DAY/, one burst; or the text as one file
    when there is no picture: a connection test, recorded as "not an image" like an FTP
    camera's test upload."""
    prefix = f"{received_at:%H%M%S}-{uuid.uuid4().hex[:8]}"
    files = [(p.name, p.data) for p in mail.pictures] or [("message.txt", mail.note.encode())]
    burst_id = burst_of(camera, prefix) if len(files) > 1 else None
    uploads: list[Received] = []
    for name, data in files:
        kept_as = f"{SMTP_FOLDER}/{received_at:%Y-%m-%d}/{prefix}-{name}"
        upload = Upload(
            camera=camera,
            path=home / kept_as,
            received_at=received_at,
            remote_ip=remote_ip,
            original_name=kept_as,
            source="smtp",
            remove_when_done=True,
            home=home,
            note=mail.note,
            burst_id=burst_id,
            burst_size=len(files),
        )
        uploads.append(Received(upload, data))
    return uploads


def burst_of(camera: str, message: str) -> str:
    """The burst id of a message's pictures; `message`: their file names' common start."""
    return f"{camera}-{message}"


def message_of(file_name: str) -> str:
    """The start every file of one message has (`HHMMSS-xxxxxxxx`, see mail_uploads)."""
    return "-".join(file_name.split("-", 2)[:2])
