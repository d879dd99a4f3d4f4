"""What a camera's file name tells about its picture: the event and the time it was taken
(Hikvision, Dahua), or that it is the camera's FTP test (Reolink)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

# Hikvision: <IP>_<channel>_<yyyymmddHHMMSS[mmm]>_<EVENT>.jpg, such as
# 192.168.1.64_01_20261206153012345_MOTION_DETECTION.jpg (any folder above it).
_HIKVISION = re.compile(
    r"(?:^|/)[0-9A-Fa-f.:]+_(?P<channel>\d{1,3})_(?P<time>\d{14}(?:\d{3})?)"
    r"_(?P<event>[A-Z][A-Z0-9_]*)\.jpe?g$"
)
# Dahua: <device>/YYYY-MM-DD/001/jpg/HH/MM/SS[M][0@0][0].jpg, the letter in the first brackets
# saying why the picture was taken.
_DAHUA = re.compile(
    r"(?:^|/)(?P<date>\d{4}-\d{2}-\d{2})/(?P<channel>\d{3})/jpg/(?P<hour>\d{2})/(?P<minute>\d{2})"
    r"/(?P<second>\d{2})\[(?P<kind>[A-Z])\]\[[^\]/]*\]\[\d+\]\.jpe?g$"
)
DAHUA_EVENTS = {
    "M": "Motion detection",
    "A": "Alarm input",
    "I": "Intelligent event",
    "R": "Regular snapshot",
}
# Reolink's FTP test makes (and enters) a folder named after the time, even with no folder set.
REOLINK_TEST_FOLDER = re.compile(r"camera_test\d{8,14}")


@dataclass(frozen=True)
class NamedEvent:
    """The event and capture time a file name gives (the camera's clock, without its zone)."""

    event: str
    taken_at: datetime
    channel: int

    def note(self) -> str:
        precision = "milliseconds" if self.taken_at.microsecond else "seconds"
        taken = self.taken_at.isoformat(sep=" ", timespec=precision)
        return f"{self.event} on channel {self.channel}, taken {taken} (camera's clock)"


def named_event(original_name: str) -> NamedEvent | None:
    """The event a Hikvision or Dahua file name encodes; None for any other name, or for a
    name whose date is not a real one."""
    try:
        if found := _HIKVISION.search(original_name):
            stamp = found["time"].ljust(17, "0")
            taken = datetime.strptime(stamp[:14], "%Y%m%d%H%M%S")
            taken = taken.replace(microsecond=int(stamp[14:]) * 1000)
            event = found["event"].replace("_", " ").capitalize()
            return NamedEvent(event, taken, int(found["channel"]))
        if found := _DAHUA.search(original_name):
            when = f"{found['date']} {found['hour']}:{found['minute']}:{found['second']}"
            event = DAHUA_EVENTS.get(found["kind"], f"Event {found['kind']}")
            taken = datetime.strptime(when, "%Y-%m-%d %H:%M:%S")
            return NamedEvent(event, taken, int(found["channel"]))
    except ValueError:  # 20261399..., 25:61:61: a name that only looks like one
        return None
    return None


def is_ftp_test(original_name: str) -> bool:
    """Whether the file came with a camera's FTP test (in Reolink's test folder)."""
    return any(REOLINK_TEST_FOLDER.fullmatch(part) for part in original_name.split("/")[:-1])


def file_name_note(original_name: str) -> str:
    """The note an upload gets from its name: its event and time taken, or that it is a test."""
    if is_ftp_test(original_name):
        return "The camera's FTP test (Reolink's test folder)"
    event = named_event(original_name)
    return event.note() if event else ""
