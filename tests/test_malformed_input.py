"""Malformed uploads: broken files and odd names through the real service, and decoding fuzzed."""

from __future__ import annotations

import ftplib
import io
import struct
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from harness.endurance import MB, FixedLatencyDetector, PeakMemory, StartService, jpeg_bytes
from harness.service import PASSWORDS, RunningService, upload, wait_until
from ipcam_analysis.imaging import CorruptImageError, NotAnImageError, decode_snapshot

MAX_RSS_GROWTH = 768 * MB  # one 36 MP picture peaks at about 330 MB while it is decoded
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_declaring(width: int, height: int, *, pixels: bytes = b"") -> bytes:
    """A PNG whose header claims these dimensions (8-bit RGB), whatever pixel data follows."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    body = png_chunk(b"IDAT", zlib.compress(pixels)) if pixels else b""
    return PNG_SIGNATURE + png_chunk(b"IHDR", header) + body + png_chunk(b"IEND", b"")


def encoded(image: Image.Image, kind: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, kind)
    return buffer.getvalue()


def corrupt_idat_crc(png: bytes) -> bytes:
    at = png.index(b"IDAT") + 8  # into the compressed pixels; the chunk's CRC no longer matches
    return png[:at] + bytes([png[at] ^ 0xFF]) + png[at + 1 :]


JPEG = jpeg_bytes()
PNG = encoded(Image.new("RGBA", (320, 240), (10, 20, 30, 128)), "PNG")


def corpus() -> dict[str, tuple[bytes, str]]:
    """File name -> (content, the outcome the service must record); built when a test needs it,
    as it holds 150 MB."""
    return {
        "zero-bytes.jpg": (b"", "not_image"),
        "camera-test.jpg": (b"FTP test from the camera\r\n", "not_image"),
        "wrong-magic.jpg": (b"GIF89a" + JPEG[6:], "not_image"),
        "truncated.jpg": (JPEG[: len(JPEG) // 2], "corrupt"),
        "truncated.png": (PNG[: len(PNG) // 2], "corrupt"),
        "header-only.png": (PNG[:33], "corrupt"),
        "bad-crc.png": (corrupt_idat_crc(PNG), "corrupt"),
        # Every pixel is still there, and Pillow reads them: an image, whatever the length says.
        "chunk-length-lies.png": (PNG[:33] + struct.pack(">I", 2**31 - 1) + PNG[37:], "no_match"),
        "declares-100000x100000.png": (png_declaring(100_000, 100_000), "not_image"),
        "declares-7000x7000.png": (png_declaring(7000, 7000, pixels=b"\0" * 1000), "not_image"),
        # Within the limits and valid: 36 MP with transparency, 140 KB on the wire.
        "36-megapixels.png": (encoded(Image.new("RGBA", (6000, 6000)), "PNG"), "no_match"),
        "50-megabytes.jpg": (JPEG[:4] + bytes(50 * MB), "corrupt"),
        "a-million-chunks.png": (
            PNG[:33] + png_chunk(b"abCd", b"") * 1_000_000 + PNG[33:],
            "corrupt",
        ),
        "padded-to-50-megabytes.jpg": (JPEG + bytes(50 * MB), "no_match"),
        "valid.png": (PNG, "no_match"),
    }


def test_each_broken_file_decodes_or_is_classified() -> None:
    # How long each takes is a figure, not a test: scripts/decode_costs.py, docs/performance.md.
    for name, (data, outcome) in corpus().items():
        try:
            decode_snapshot(data)
            classified = "no_match"
        except NotAnImageError:
            classified = "not_image"
        except CorruptImageError:
            classified = "corrupt"
        assert (name, classified) == (name, outcome)


def test_broken_files_through_the_service_each_end_as_an_event(
    run_service: StartService,
) -> None:
    running = run_service(lambda kind: FixedLatencyDetector(kind))
    files = corpus()
    memory = PeakMemory()
    started = time.monotonic()
    for name, (data, _) in files.items():
        upload(running.address, "cam01", data, name)
    running.wait_idle(timeout=120)
    growth = memory.stop()
    print(
        f"\nmalformed corpus: {len(files)} files in {time.monotonic() - started:.1f} s,"
        f" RSS {memory.baseline / MB:.0f} MB -> peak {memory.peak / MB:.0f} MB"
    )

    rows = running.service.database.query("SELECT original_name, outcome FROM events")
    assert {row[0]: row[1] for row in rows} == {
        name: outcome for name, (_, outcome) in files.items()
    }
    assert growth < MAX_RSS_GROWTH
    # Each upload's file goes once its queue row is finished: the 50 MB ones may still be going.
    home = running.service.config.ftp_server.root_dir / "cam01"
    wait_until(lambda: not any(home.iterdir()), what="every upload's file and folder removed")


@contextmanager
def camera_session(running: RunningService, encoding: str = "utf-8") -> Iterator[ftplib.FTP]:
    """cam01 logged in, to send names exactly as written."""
    with ftplib.FTP(encoding=encoding) as ftp:
        ftp.connect(*running.address, timeout=20)
        ftp.login("cam01", PASSWORDS["cam01"])
        yield ftp


@pytest.mark.parametrize(
    ("remote_name", "stored_as"),
    [
        ("../../../etc/passwd.jpg", "etc/passwd.jpg"),  # confined to the camera's home
        ("/absolute/path.jpg", "absolute/path.jpg"),
        ("..\\..\\windows.jpg", "..\\..\\windows.jpg"),  # a plain name on Linux
        ("%2e%2e%2fencoded.jpg", "%2e%2e%2fencoded.jpg"),
        ("x" * 251 + ".jpg", "x" * 251 + ".jpg"),  # 255 bytes: the longest a name may be
        ("d/" * 30 + "deep.jpg", "d/" * 30 + "deep.jpg"),
        ("caméra-📷.jpg", "caméra-📷.jpg"),
    ],
    ids=["traversal", "absolute", "backslashes", "encoded", "255-bytes", "30-deep", "unicode"],
)
def test_odd_names_are_stored_inside_the_home_and_recorded(
    run_service: StartService, remote_name: str, stored_as: str
) -> None:
    running = run_service(lambda kind: FixedLatencyDetector(kind))
    with camera_session(running) as ftp:
        assert ftp.storbinary(f"STOR {remote_name}", io.BytesIO(JPEG)).startswith("226")
    running.wait_idle()
    assert running.outcomes() == [(stored_as, "no_match")]


@pytest.mark.parametrize(
    ("remote_name", "reply"),
    [
        ("x" * 300 + ".jpg", "550 File name too long."),
        ("d/" * 1000 + "deep.jpg", "550 more than 32 nested folders."),
        ("nul\0byte.jpg", "501 Invalid character in the command."),
    ],
    ids=["too-long", "1000-deep", "nul"],
)
def test_impossible_names_are_refused_and_the_session_goes_on(
    run_service: StartService, remote_name: str, reply: str
) -> None:
    running = run_service(lambda kind: FixedLatencyDetector(kind))
    with camera_session(running) as ftp:
        with pytest.raises(ftplib.error_perm) as refused:
            ftp.storbinary(f"STOR {remote_name}", io.BytesIO(JPEG))
        assert str(refused.value) == reply
        ftp.storbinary("STOR after.jpg", io.BytesIO(JPEG))
    running.wait_idle()
    assert running.outcomes() == [("after.jpg", "no_match")]


def test_a_name_that_is_not_utf8_is_taken_with_replacement_characters(
    run_service: StartService,
) -> None:
    running = run_service(lambda kind: FixedLatencyDetector(kind))
    with camera_session(running, encoding="latin-1") as ftp:  # sends the bytes ff fe as they are
        ftp.storbinary("STOR \xff\xfe.jpg", io.BytesIO(JPEG))
    running.wait_idle()
    assert running.outcomes() == [("\ufffd\ufffd.jpg", "no_match")]


# --- decode_snapshot fuzzed: never an unexpected exception, never a hang


SAMPLES = [
    JPEG,
    PNG,
    encoded(Image.new("P", (40, 30)), "PNG"),
    encoded(Image.new("I;16", (40, 30)), "PNG"),
    encoded(Image.new("L", (40, 30)), "JPEG"),
    encoded(Image.new("1", (40, 30)), "PNG"),
]


@st.composite
def damaged(draw: st.DrawFn) -> bytes:
    """A valid sample, then some of: bytes overwritten, a slice inserted, a truncation."""
    data = bytearray(draw(st.sampled_from(SAMPLES)))
    for _ in range(draw(st.integers(0, 8))):
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    if draw(st.booleans()):
        at = draw(st.integers(0, len(data)))
        data[at:at] = draw(st.binary(min_size=1, max_size=64))
    if draw(st.booleans()):
        data = data[: draw(st.integers(0, len(data)))]
    return bytes(data)


def assert_decodes_or_classifies(data: bytes) -> None:
    try:
        snapshot = decode_snapshot(data)
    except (NotAnImageError, CorruptImageError) as exc:
        assert str(exc)  # a reason to record
    else:
        assert snapshot.image.mode == "RGB"


FUZZ = settings(
    max_examples=300,
    deadline=None,  # a slow shared machine is not a bug; decode times are benchmarked
    suppress_health_check=[HealthCheck.too_slow],
)


@FUZZ
@given(damaged())
def test_damaged_images_decode_or_are_classified(data: bytes) -> None:
    assert_decodes_or_classifies(data)


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes_are_classified(data: bytes) -> None:
    assert_decodes_or_classifies(data)


@FUZZ
@given(st.integers(0, 2**31 - 1), st.integers(0, 2**31 - 1))
def test_any_declared_dimensions_are_classified_without_allocating_them(
    width: int, height: int
) -> None:
    # Pixels for a small picture only: a large declared size must be refused, not filled in.
    assert_decodes_or_classifies(png_declaring(width, height, pixels=b"\0" * 4096))


def test_fuzzing_leaves_memory_bounded() -> None:
    memory = PeakMemory()
    test_damaged_images_decode_or_are_classified()
    test_any_declared_dimensions_are_classified_without_allocating_them()
    assert memory.stop() < MAX_RSS_GROWTH
