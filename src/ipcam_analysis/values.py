"""The plain values that flow through the pipeline: upload → snapshot → detection → decision → alert."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from PIL import Image

# What became of an upload: the outcome of its event.
ALERT, NO_MATCH, OUTSIDE_WINDOW = "alert", "no_match", "outside_window"
DUPLICATE, SUPPRESSED, SKIPPED = "duplicate", "suppressed", "skipped"
NOT_IMAGE, CORRUPT, MISSING, ERROR = "not_image", "corrupt", "missing", "error"
UNREADABLE_CLIP = "unreadable_clip"  # a video clip none of whose frames decodes
RETRY = "retry"  # not final: the item is back in the queue


# What a node runs (`--role`): the listeners cameras send to, the analysis, the dashboard. Every
# node serves /healthz and /metrics (with web.enabled).
ROLES = ("ingest", "worker", "web")


@dataclass(frozen=True)
class Upload:
    """A file a camera finished uploading, as recorded in the queue."""

    camera: str
    path: Path
    received_at: datetime  # local, timezone-aware
    remote_ip: str = ""
    original_name: str = ""  # the path relative to the camera's FTP home, as the camera sent it
    source: str = "ftp"  # the ingest source's kind
    # The file is deleted once analysed, with each folder it leaves empty below `home`.
    remove_when_done: bool = False
    home: Path | None = None
    # What came with the picture: an e-mail's subject and text (Dahua and Hikvision name the
    # event and channel there), what the camera reported through its alarm channel.
    note: str = ""
    # Pictures sent together (one e-mail): each is analysed, the burst alerts at most once.
    burst_id: str | None = None
    burst_size: int = 1
    # Where the picture is in shared storage (storage.url); None: at `path` on this machine.
    stored_key: str | None = None
    clip: bool = False  # a video clip, by its first bytes (rules/motion.py: snapshots wait for it)


@dataclass(frozen=True)
class CameraEvent:
    """Something a camera reported itself (an XMeye alarm such as HumanDetect); not an upload."""

    camera: str  # "" when the source could not tell which camera it is
    remote_ip: str
    received_at: datetime  # local, timezone-aware
    event: str  # HumanDetect, MotionDetect, VideoLoss...
    status: str = ""  # Start, Stop
    channel: int | None = None
    serial_id: str = ""
    camera_time: str = ""  # the camera's own clock, as it wrote it
    details: str = ""  # the camera's whole message, as JSON text


@dataclass(frozen=True)
class Box:
    """A rectangle in relative coordinates (0..1 of the image's width and height)."""

    left: float
    top: float
    width: float
    height: float


@dataclass(frozen=True)
class RunnerUp:
    """Another class the detector gave the same object, less confidently (a van: Truck 44 %,
    Bus 31 %, Car 28 %); kept in the event's data when the object is merged under one name."""

    name: str
    confidence: float  # percent


@dataclass(frozen=True)
class Instance:
    """One located object of a label."""

    box: Box
    confidence: float  # percent
    runner_ups: tuple[RunnerUp, ...] = ()


@dataclass(frozen=True)
class Label:
    """One thing a detector says is in the picture; image-level when it has no instances."""

    name: str
    confidence: float  # percent
    parents: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    instances: tuple[Instance, ...] = ()
    # Runner-up classes of merged objects that cleared their confidence threshold: the label
    # alerts for these names too (rules/objects.py), though it is shown under its own.
    runner_up_names: tuple[str, ...] = ()


@dataclass(frozen=True)
class WatchedLabels:
    """What a camera alerts on, told to the detector with each picture so that one that spends
    money only where it matters (the cascade) asks about what this camera watches. `names` as
    the camera's `labels` writes them: in alarm mode the labels that alert, in new-labels mode
    the ones that do not; a label counts through its parents and aliases too."""

    names: tuple[str, ...]
    new_labels_only: bool = False

    @property
    def folded(self) -> frozenset[str]:
        return frozenset(name.casefold() for name in self.names)


@dataclass(frozen=True)
class Detection:
    """What a detector answered for one image, and what it cost."""

    detector: str
    labels: tuple[Label, ...]
    elapsed_ms: float
    cloud_calls: int = 0


@dataclass(frozen=True)
class Snapshot:
    """A fully decoded, validated image: `image` is RGB, `data` the original bytes."""

    data: bytes
    format: str  # "JPEG" or "PNG"; "FRAME" for a clip's frame, pixels only (`data` empty)
    image: Image.Image = field(compare=False)

    @property
    def width(self) -> int:
        return self.image.width

    @property
    def height(self) -> int:
        return self.image.height


@dataclass(frozen=True)
class MatchedLabel:
    """A label that triggered an alert, with the name to show for it."""

    label: Label
    display_name: str


@dataclass(frozen=True)
class Decision:
    """Whether an image alerts, which labels made it so, and why the others did not."""

    alert: bool
    matched: tuple[MatchedLabel, ...] = ()
    ignored: tuple[str, ...] = ()  # human-readable reasons, one per ignored label


@dataclass(frozen=True)
class Alert:
    """Everything a notifier needs to tell people about one image."""

    camera: str
    received_at: datetime
    matched: tuple[MatchedLabel, ...]
    annotated_jpeg: bytes
    image_size: tuple[int, int]  # width, height of annotated_jpeg
    original_name: str
    event_id: int | None = None
    # The sensor labels (Home Assistant's binary sensors) this alert turns on, matched by the
    # rules as they match labels: case, parents, aliases, categories.
    sensors: tuple[str, ...] = ()
    # For a video clip: where in it each label was first seen ("Person from 0:03, 0:07 clip").
    clip: str = ""


@dataclass(frozen=True)
class EventPictures:
    """An event's picture, ready to keep: as JPEG (the camera's own bytes when it sent a JPEG),
    kept by the store as given. Its thumbnail is drawn when a page first shows it (web/)."""

    picture: bytes
    width: int  # the picture's
    height: int


@dataclass(frozen=True)
class CameraUpload:
    """Another upload of the camera, as the same-motion rule sees it (rules/motion.py)."""

    id: int  # its event's id
    received: float  # epoch seconds
    undecided: bool  # queued, not finished and with no decision saved yet
    failed_before: bool  # an attempt failed (a cloud outage): it may not be decided soon
    alerted: frozenset[str]  # the labels it alerted on, case-folded (empty if none)
    clip_seconds: float | None  # the length of a clip that alerted; None for a snapshot


@dataclass(frozen=True)
class RememberedObject:
    """A box a camera alerted on, as the store remembers it for the stationary filter."""

    id: int
    kind: str  # the label's nearest parent, or its name
    box: Box
    alerted_at: float  # epoch seconds


@dataclass(frozen=True)
class LearnedException:
    """A box the user marked "not a <label>" on a camera: where it was, and a fingerprint of
    what the picture showed there (a perceptual hash of that region)."""

    id: int
    label: str
    box: Box
    fingerprint: int
    marked_at: float  # epoch seconds


@dataclass(frozen=True)
class NotifyOutcome:
    """What one notifier did with one alert."""

    notifier: str
    ok: bool
    detail: str = ""
    retry: bool = False  # a failure that may succeed later (network, throttling)


def label_to_dict(label: Label) -> dict[str, Any]:
    """Plain data for JSON (queue, events, API)."""
    return asdict(label)


def label_from_dict(data: dict[str, Any]) -> Label:
    return Label(
        name=data["name"],
        confidence=float(data["confidence"]),
        parents=tuple(data.get("parents", ())),
        aliases=tuple(data.get("aliases", ())),
        categories=tuple(data.get("categories", ())),
        instances=tuple(
            Instance(
                Box(**inst["box"]),
                float(inst["confidence"]),
                tuple(
                    RunnerUp(other["name"], float(other["confidence"]))
                    for other in inst.get("runner_ups", ())
                ),
            )
            for inst in data.get("instances", ())
        ),
        runner_up_names=tuple(data.get("runner_up_names", ())),
    )


def decision_to_dict(decision: Decision) -> dict[str, Any]:
    return {
        "alert": decision.alert,
        "matched": [
            {"label": label_to_dict(m.label), "display_name": m.display_name}
            for m in decision.matched
        ],
        "ignored": list(decision.ignored),
    }


def decision_from_dict(data: dict[str, Any]) -> Decision:
    return Decision(
        alert=bool(data["alert"]),
        matched=tuple(
            MatchedLabel(label_from_dict(m["label"]), m["display_name"]) for m in data["matched"]
        ),
        ignored=tuple(data.get("ignored", ())),
    )


def detection_to_dict(detection: Detection) -> dict[str, Any]:
    return asdict(detection)


def detection_from_dict(data: dict[str, Any]) -> Detection:
    return Detection(
        detector=data["detector"],
        labels=tuple(label_from_dict(item) for item in data["labels"]),
        elapsed_ms=float(data["elapsed_ms"]),
        cloud_calls=int(data.get("cloud_calls", 0)),
    )
