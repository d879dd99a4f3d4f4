"""A video clip decided as one: the camera's detector on sampled frames, the best frame kept
(its objects named once, as a picture's are) with where in the clip each watched label was
first seen."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from ipcam_analysis.detect import PAID_KINDS
from ipcam_analysis.imaging import encode_jpeg
from ipcam_analysis.imaging.clips import clip_duration_seconds, sample_frames
from ipcam_analysis.rules import decide, filter_labels, one_name_per_object
from ipcam_analysis.rules.camera import CameraSettings
from ipcam_analysis.values import Detection, Snapshot

# A frame a second, and a long clip's frames spread over its whole length: the local detector
# takes 60 frames at most (about 15 s of one core at 1080p, docs/performance.md), a paid
# detector 5 (each one a call, counted by the budget).
SAMPLE_EVERY_SECONDS = 1.0
MAX_LOCAL_FRAMES = 60
MAX_CLOUD_FRAMES = 5


@dataclass(frozen=True)
class ClipAnalysis:
    """What a clip showed: its best frame and that frame's detection, each object under one
    name (with the time and calls of every frame), and the moment each watched label first
    appeared."""

    snapshot: Snapshot | None  # None when the budget allowed no frame at all
    detection: Detection | None
    frames_analysed: int
    duration_seconds: float
    first_seen: tuple[tuple[str, float], ...]  # display name, seconds from the clip's start

    def describe(self) -> str:
        """`Person from 0:03, Car from 0:05 (0:07 clip, 7 frames analysed)`."""
        seen = ", ".join(f"{name} from {clock(offset)}" for name, offset in self.first_seen)
        length = f"{clock(self.duration_seconds)} clip, {self.frames_analysed} frames analysed"
        return f"{seen} ({length})" if seen else length


def analyse_clip(
    data: bytes,
    container: str,
    camera: CameraSettings,
    detect_frame: Callable[[Snapshot], Detection | None],
) -> ClipAnalysis:
    """Run `detect_frame` on the sampled frames (it returns None to stop: the budget is spent);
    the frame whose watched label is the most confident is the clip's picture, the first frame
    when none matched. Raises UnreadableClipError when no frame decodes. A paid detector sees
    fewer frames, each encoded as the file it sends; the local one reads the pixels, and the
    kept picture is encoded once, with the event's pictures."""
    paid = camera.detector in PAID_KINDS
    max_frames = MAX_CLOUD_FRAMES if paid else MAX_LOCAL_FRAMES
    duration = clip_duration_seconds(data, container)
    every = max(SAMPLE_EVERY_SECONDS, (duration or 0) / max_frames)
    best: tuple[float, Snapshot, Detection] | None = None
    first_seen: dict[str, float] = {}
    frames, elapsed_ms, cloud_calls, last_offset = 0, 0.0, 0, 0.0
    for frame in sample_frames(data, container, every, max_frames):
        if paid:
            snapshot = Snapshot(encode_jpeg(frame.image), "JPEG", frame.image)
        else:
            snapshot = Snapshot(b"", "FRAME", frame.image)
        detection = detect_frame(snapshot)
        if detection is None:
            break
        frames, last_offset = frames + 1, frame.offset_seconds
        elapsed_ms += detection.elapsed_ms
        cloud_calls += detection.cloud_calls
        detection = one_name_per_object(detection, camera.filters, camera.min_confidence_percent)
        strength = _watched_strength(detection, camera, frame.offset_seconds, first_seen)
        if best is None or strength > best[0]:
            best = (strength, snapshot, detection)
    if best is None:
        return ClipAnalysis(None, None, 0, duration or 0.0, ())
    _, snapshot, detection = best
    return ClipAnalysis(
        snapshot=snapshot,
        detection=replace(detection, elapsed_ms=elapsed_ms, cloud_calls=cloud_calls),
        frames_analysed=frames,
        duration_seconds=duration or last_offset,
        first_seen=tuple(first_seen.items()),
    )


def _watched_strength(
    detection: Detection, camera: CameraSettings, offset: float, first_seen: dict[str, float]
) -> float:
    """The confidence of the frame's strongest watched label (0 when none), noting when each
    watched label first appeared: the rules the pipeline applies to the chosen frame."""
    labels, _ = filter_labels(detection.labels, camera.filters, camera.min_confidence_percent)
    decision = decide(labels, camera.labels, camera.new_labels_only)
    for match in decision.matched:
        first_seen.setdefault(match.display_name, offset)
    return max((match.label.confidence for match in decision.matched), default=0.0)


def clock(seconds: float) -> str:
    """`0:03`, `1:05:09`: a moment in a clip as players show it."""
    minutes, second = divmod(int(seconds), 60)
    hours, minute = divmod(minutes, 60)
    return f"{hours}:{minute:02d}:{second:02d}" if hours else f"{minute}:{second:02d}"
