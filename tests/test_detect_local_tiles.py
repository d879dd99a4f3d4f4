"""Tiles and night pictures: far-away objects on large snapshots, greyscale (IR) snapshots."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from harness.eval_images import centre_inside, eval_snapshot, overlap
from ipcam_analysis.detect import yolo
from ipcam_analysis.detect.local import LocalDetector, LocalDetectorConfig
from ipcam_analysis.values import Box, Detection

# Regions read off the pictures by eye, relative to the image.
FAR_PIGEON = Box(0.835, 0.8, 0.05, 0.07)  # far_pigeon.jpg (1920×1080): a pigeon 60 px tall
BEACH = Box(0.0, 0.5, 1.0, 0.5)  # darknet_kite.jpg: people on the beach, lower half


@pytest.fixture(scope="module")
def tiled() -> LocalDetector:
    return LocalDetector(LocalDetectorConfig(), 25)


@pytest.fixture(scope="module")
def untiled() -> LocalDetector:
    return LocalDetector(LocalDetectorConfig(tiles="off"), 25)


def names(detection: Detection) -> set[str]:
    return {label.name for label in detection.labels}


def people(detection: Detection) -> list[Box]:
    return [i.box for label in detection.labels if label.name == "Person" for i in label.instances]


def test_a_small_bird_on_a_large_snapshot_is_found_only_with_tiles(
    tiled: LocalDetector, untiled: LocalDetector
) -> None:
    snapshot = eval_snapshot("far_pigeon.jpg")
    assert "Bird" not in names(untiled.detect(snapshot))
    birds = next(label for label in tiled.detect(snapshot).labels if label.name == "Bird")
    assert any(centre_inside(instance.box, FAR_PIGEON) for instance in birds.instances)


def test_tiles_find_more_far_away_people_and_merge_the_overlaps(
    tiled: LocalDetector, untiled: LocalDetector
) -> None:
    snapshot = eval_snapshot("darknet_kite.jpg")  # 1352×900, small people on a beach
    whole, with_tiles = people(untiled.detect(snapshot)), people(tiled.detect(snapshot))
    assert len(with_tiles) > len(whole)
    assert all(centre_inside(box, BEACH) for box in with_tiles)
    # One box per person: boxes from overlapping tiles and the whole image are merged.
    for index, box in enumerate(with_tiles):
        for other in with_tiles[index + 1 :]:
            assert overlap(box, other) <= LocalDetectorConfig().nms_threshold


def test_small_snapshots_are_not_tiled(tiled: LocalDetector, untiled: LocalDetector) -> None:
    snapshot = eval_snapshot("opencv_vtest_f0150.jpg")  # 768×576
    assert tiled.detect(snapshot).labels == untiled.detect(snapshot).labels


def test_the_tiles_cover_a_large_snapshot_with_overlap() -> None:
    tiles = yolo.tile_grid(1920, 1080, 640, yolo.TILE_OVERLAP)
    assert len(tiles) == 8
    covered = np.zeros((1080, 1920), bool)
    for tile in tiles:
        assert tile.right - tile.left == tile.bottom - tile.top == 640
        covered[tile.top : tile.bottom, tile.left : tile.right] = True
    assert covered.all()
    neighbours = [t for t in tiles if t.top == 0]
    assert all(a.right - b.left >= 128 for a, b in itertools.pairwise(neighbours))


def test_greyscale_snapshots_are_told_from_colour_ones() -> None:
    colour = np.asarray(eval_snapshot("darknet_dog.jpg").image)
    night = np.asarray(eval_snapshot("darknet_dog.jpg", greyscale=True).image)
    assert not yolo.is_greyscale(colour)
    assert yolo.is_greyscale(night)
    # A dull colour picture (the surveillance frames) is still colour.
    assert not yolo.is_greyscale(np.asarray(eval_snapshot("opencv_vtest_f0000.jpg").image))


def test_night_input_sizes_apply_to_greyscale_snapshots_only(tiled: LocalDetector) -> None:
    night = LocalDetector(LocalDetectorConfig(night_input_sizes=(608, 320)), 25)
    colour = eval_snapshot("cutout_dog.jpg")
    grey = eval_snapshot("cutout_dog.jpg", greyscale=True)
    assert night.detect(colour).labels == tiled.detect(colour).labels
    assert "Bird" in names(tiled.detect(grey))  # at 416 the grey dog is also taken for a bird
    assert names(night.detect(grey)) & {"Dog", "Bird"} == {"Dog"}


def test_tile_and_night_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="multiple of 32"):
        LocalDetectorConfig(night_input_sizes=(600,))
    with pytest.raises(ValueError, match="auto"):
        LocalDetectorConfig(tiles="always")  # type: ignore[arg-type]
