"""The secret-masking log filter: secrets never shown, and a log call never broken by it."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from ipcam_analysis.masking import MASK, SecretMaskingFilter

SECRET = "pw-cam01-secret"


class Unprintable:
    def __str__(self) -> str:
        raise RuntimeError("no text")


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger whose one handler has the filter, as configure_logging sets it up."""
    text = io.StringIO()
    handler = logging.StreamHandler(text)
    handler.addFilter(SecretMaskingFilter([SECRET]))
    logger = logging.getLogger("test_masking")
    logger.addHandler(handler)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    yield logger, text
    logger.removeHandler(handler)
    logger.propagate = True


def test_a_secret_in_the_message_or_its_arguments_is_masked(logged) -> None:
    logger, text = logged
    logger.info("password %s for %s", SECRET, "cam01")
    logger.info(f"inline {SECRET}")
    assert text.getvalue().splitlines() == [f"password {MASK} for cam01", f"inline {MASK}"]


@pytest.mark.parametrize(
    ("message", "args"),
    [
        ("from %s (distance %d): not analysed", ("cam01", 0, "b.jpg")),  # one argument too many
        ("from %s and %s", ("cam01",)),  # one too few
        ("distance %d", ("far",)),  # of the wrong type
        ("%(camera)s", ({"other": 1},)),  # a missing key
        ("%s", (Unprintable(),)),  # an argument that cannot be shown
    ],
)
def test_a_malformed_record_never_raises_and_its_secrets_stay_masked(
    message: str, args: tuple[object, ...]
) -> None:
    masking = SecretMaskingFilter([SECRET])
    record = logging.LogRecord(
        "ipcam_analysis.service.pipeline",
        logging.INFO,
        __file__,
        1,
        f"{SECRET} {message}",
        args,
        None,
    )
    assert masking.filter(record) is True
    shown = record.getMessage()
    assert SECRET not in shown and MASK in shown


def test_a_malformed_call_through_a_handler_does_not_raise_into_the_caller(logged) -> None:
    logger, text = logged
    # The mistake the pipeline once made; the call returns normally.
    logger.info("from %s (distance %d): not analysed", "cam01", 0, "b.jpg")  # noqa: PLE1205
    (line,) = text.getvalue().splitlines()
    assert line.startswith("from %s (distance %d): not analysed")
    assert "cam01" in line and "b.jpg" in line
