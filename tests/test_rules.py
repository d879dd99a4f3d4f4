"""Alarm and new-labels decisions, including Rekognition's parents, aliases and categories."""

from ipcam_analysis.rules import decide, why_not_alerted
from ipcam_analysis.rules.bursts import (
    BurstFrame,
    ConfirmConfig,
    burst_turn,
    confirmed_by_next_picture,
    confirmed_in_burst,
)
from ipcam_analysis.values import Box, Instance, Label, MatchedLabel

PERSON = Label(
    "Person", 98.7, aliases=("Human",), instances=(Instance(Box(0.1, 0.1, 0.2, 0.5), 98.7),)
)
CAR = Label(
    "Car", 91.2, parents=("Vehicle", "Transportation"), categories=("Vehicles and Automotive",)
)
VEHICLE = Label("Vehicle", 91.2, parents=("Transportation",))
TRANSPORTATION = Label("Transportation", 91.2)
TREE = Label("Tree", 88.0, parents=("Plant",))
PLANT = Label("Plant", 88.0)
RESPONSE = (PERSON, CAR, VEHICLE, TRANSPORTATION, TREE, PLANT)


def names(decision):
    return [m.display_name for m in decision.matched]


def test_alarm_mode_matches_names_and_parents():
    decision = decide(RESPONSE, ["Person", "Vehicle"], new_labels_only=False)
    assert decision.alert
    assert names(decision) == ["Person", "Car", "Vehicle"]
    assert "Tree" in decision.ignored


def test_alarm_mode_is_case_insensitive_and_uses_aliases():
    # Rekognition's current taxonomy calls "Human" an alias of "Person".
    assert names(decide(RESPONSE, ["human"], new_labels_only=False)) == ["Person"]
    assert names(decide(RESPONSE, ["PERSON"], new_labels_only=False)) == ["Person"]


def test_alarm_mode_matches_categories():
    assert names(decide(RESPONSE, ["vehicles and automotive"], False)) == ["Car"]


def test_alarm_mode_without_a_match_does_not_alert():
    decision = decide((TREE, PLANT), ["Person"], new_labels_only=False)
    assert not decision.alert
    assert decision.ignored == ("Tree", "Plant")
    assert why_not_alerted(decision, new_labels_only=False) == "not in labels: Tree, Plant"


def test_new_labels_mode_as_the_original():
    # The original's own example: list [Person, Plant] on this response.
    decision = decide(RESPONSE, ["Person", "Plant"], new_labels_only=True)
    assert names(decision) == [
        "Car (Vehicle, Transportation)",
        "Vehicle (Transportation)",
        "Transportation",
    ]
    assert "Tree (ignored parent: Plant)" in decision.ignored
    assert "Person" in decision.ignored
    why = why_not_alerted(decision, new_labels_only=True)
    assert why and why.startswith("already known: ") and "Tree (ignored parent: Plant)" in why
    assert why_not_alerted(decide((TREE,), ["Person"], False), False) == "not in labels: Tree"
    assert why_not_alerted(decide((PERSON,), ["Person"], False), False) is None


def test_new_labels_mode_treats_aliases_as_listed():
    decision = decide((PERSON,), ["Human"], new_labels_only=True)
    assert not decision.alert


# --- bursts: the pictures of one e-mail alert once


def frame(item_id: int, strength: float, alerted: bool | None = None) -> BurstFrame:
    return BurstFrame(
        item_id, f"smtp/2026-12-06/101500-ab12cd34-{item_id}-snap.jpg", strength, alerted
    )


def test_a_burst_frame_waits_for_the_others_then_the_strongest_decides() -> None:
    assert burst_turn(7, [frame(7, 90.0)], 3, waited_seconds=1).wait
    decided = [frame(7, 90.0), frame(8, 0.0), frame(9, 97.0)]
    assert burst_turn(9, decided, 3, waited_seconds=1).decides
    # The others wait for its verdict, then name it.
    assert burst_turn(7, decided, 3, waited_seconds=1).wait
    spoke = [frame(7, 90.0), frame(8, 0.0), frame(9, 97.0, alerted=True)]
    quiet = burst_turn(7, spoke, 3, waited_seconds=1)
    assert not quiet.decides and not quiet.wait
    assert quiet.reason == "part of the burst alerted with 101500-ab12cd34-9-snap.jpg (event 9)"
    cooled = [frame(7, 90.0), frame(9, 97.0, alerted=False)]
    assert burst_turn(7, cooled, 2, waited_seconds=1).reason == (
        "part of the burst suppressed with 101500-ab12cd34-9-snap.jpg (event 9)"
    )
    # A tie goes to the first picture; a frame that never comes is not waited for forever.
    assert burst_turn(7, [frame(7, 90.0), frame(9, 90.0)], 2, waited_seconds=1).decides
    assert burst_turn(7, [frame(7, 90.0)], 3, waited_seconds=600).decides
    # A stronger frame decided after the burst spoke stays quiet.
    late = [frame(7, 90.0, alerted=True), frame(9, 99.0)]
    assert "alerted with 101500-ab12cd34-7-snap.jpg" in burst_turn(9, late, 2, 1).reason


def test_the_deciding_frame_learns_what_the_others_of_its_burst_matched() -> None:
    others = [BurstFrame(7, "a.jpg", 40.0, labels=frozenset({"cow"})), frame(8, 0.0)]
    turn = burst_turn(9, [*others, BurstFrame(9, "c.jpg", 45.0)], 3, waited_seconds=1)
    assert turn.decides and turn.others_saw == {"cow"}


def matched(name: str, *confidences: float) -> MatchedLabel:
    box = Box(0.1, 0.1, 0.2, 0.2)
    instances = tuple(Instance(box, confidence) for confidence in confidences)
    return MatchedLabel(Label(name, max(confidences), instances=instances), name)


def test_a_weak_detection_alerts_only_when_another_picture_of_the_burst_saw_it() -> None:
    confirm = ConfirmConfig(weak_below_percent=50)
    cow, person = matched("Cow", 43.0), matched("Person", 91.0, 38.0)
    kept, reasons = confirmed_in_burst([cow, person], frozenset(), confirm)
    assert [(m.display_name, [i.confidence for i in m.label.instances]) for m in kept] == [
        ("Person", [91.0])
    ]
    assert reasons == [
        "Cow 43% seen in no other picture of the burst",
        "Person 38% seen in no other picture of the burst",
    ]
    # Seen in another picture: confirmed, weak boxes and all.
    assert confirmed_in_burst([cow, person], frozenset({"cow", "person"}), confirm) == (
        (cow, person),
        [],
    )
    # Off by default.
    assert confirmed_in_burst([cow], frozenset(), ConfirmConfig()) == ((cow,), [])


def test_a_single_weak_picture_waits_a_bounded_time_for_the_next() -> None:
    confirm = ConfirmConfig(weak_below_percent=50, wait_seconds=30)
    cow, person = matched("Cow", 43.0), matched("Person", 91.0)
    assert confirmed_by_next_picture([cow], None, 5, confirm) == ((cow,), [], True)
    assert confirmed_by_next_picture([person], None, 5, confirm) == ((person,), [], False)
    assert confirmed_by_next_picture([cow], frozenset({"cow"}), 5, confirm) == ((cow,), [], False)
    assert confirmed_by_next_picture([cow], frozenset(), 5, confirm) == (
        (),
        ["Cow 43% not seen in the camera's next picture"],
        False,
    )
    assert confirmed_by_next_picture([cow], None, 30, confirm) == (
        (),
        ["Cow 43% seen in no other picture within 30 s"],
        False,
    )
