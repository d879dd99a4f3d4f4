"""MQTT events, snapshots and Home Assistant discovery on a real Mosquitto broker."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from paho.mqtt import publish

from harness.mqtt import PASSWORD, USERNAME, WAIT_SECONDS, Broker, MqttWatcher
from harness.smtp import HOST, free_port
from ipcam_analysis.config import AppConfig
from ipcam_analysis.notify import NotifierContext, build_notifiers
from ipcam_analysis.notify.mqtt import MqttConfig, MqttNotifier
from ipcam_analysis.rules import matching_sensors
from ipcam_analysis.values import Alert, CameraEvent, Instance, Label, MatchedLabel, RunnerUp
from tests.test_annotate import DOG_BOX, PERSON_BOX
from tests.test_notify_email import make_alert

CAMERAS = ["cam01", "front gate"]
SENSOR_LABELS = ["Person", "Vehicle", "Dog"]
DASHBOARD = "https://nvr.example.net/ipcam/"
PREFIX = "ipcam_analysis"
AVAILABILITY = f"{PREFIX}/availability"

StartNotifier = Callable[..., MqttNotifier]


@pytest.fixture
def start_notifier() -> Iterator[StartNotifier]:
    """Starts MqttNotifiers for CAMERAS and SENSOR_LABELS; closes them after the test."""
    started: list[MqttNotifier] = []

    def start(port: int, camera_motion: bool = False, **settings: object) -> MqttNotifier:
        config = MqttConfig.model_validate({"host": HOST, "port": port, **settings})
        context = NotifierContext(
            tuple(CAMERAS),
            sensor_labels=tuple(SENSOR_LABELS),
            dashboard_url=DASHBOARD,
            camera_motion=camera_motion,
        )
        notifier = MqttNotifier(config, context)
        started.append(notifier)
        notifier.start()
        return notifier

    yield start
    for notifier in started:
        notifier.close()


def alert_seen_as(*labels: Label, event_id: int | None = 42) -> Alert:
    """The usual snapshot from cam01 with these labels, boxed where the person, then the dog, is."""
    found = tuple(
        MatchedLabel(
            dataclasses.replace(label, instances=(Instance(box, label.confidence),)), label.name
        )
        for label, box in zip(labels, (PERSON_BOX, DOG_BOX), strict=False)
    )
    alert = make_alert("cam01", found)
    return dataclasses.replace(
        alert, event_id=event_id, sensors=matching_sensors(found, SENSOR_LABELS)
    )


def start_watched(
    broker: Broker, start_notifier: StartNotifier, **settings: object
) -> tuple[MqttWatcher, MqttNotifier]:
    """A watcher on the broker, then a notifier it has seen come online."""
    watcher = broker.watch()
    notifier = start_notifier(broker.port, **settings)
    watcher.wait_for(AVAILABILITY, "online")
    return watcher, notifier


HUMAN = Label("Human", 97.5, aliases=("Person",))
CAR = Label("Car", 88.25, parents=("Vehicle", "Transportation"))


def test_start_announces_online_and_a_device_per_camera(
    mqtt_broker: Broker, start_notifier: StartNotifier
) -> None:
    watcher, notifier = start_watched(mqtt_broker, start_notifier)
    configs = notifier.discovery_configs()
    # Per camera: the Alert sensor, one sensor per label, and the snapshot image.
    assert len(configs) == len(CAMERAS) * (len(SENSOR_LABELS) + 2)
    for topic, expected in configs.items():
        assert json.loads(watcher.wait_for(topic).payload) == expected

    person = configs["homeassistant/binary_sensor/ipcam_analysis_cam01/label_person/config"]
    assert person["name"] == "Person"
    assert person["state_topic"] == "ipcam_analysis/cam01/person/state"
    assert person["device_class"] == "occupancy"
    assert person["unique_id"] == "ipcam_analysis_cam01_label_person"
    assert person["availability_topic"] == AVAILABILITY
    assert person["device"]["identifiers"] == ["ipcam_analysis_cam01"]
    assert person["device"]["name"] == "cam01"
    assert person["device"]["configuration_url"] == DASHBOARD.rstrip("/")
    image = configs["homeassistant/image/ipcam_analysis_front_gate/snapshot/config"]
    assert image["image_topic"] == "ipcam_analysis/front_gate/snapshot"
    assert image["content_type"] == "image/jpeg"
    assert image["device"]["name"] == "front gate"
    alert = configs["homeassistant/binary_sensor/ipcam_analysis_cam01/alert/config"]
    assert alert["state_topic"] == "ipcam_analysis/cam01/alert"

    # Retained, so Home Assistant finds them whenever it connects; every sensor starts OFF.
    assert mqtt_broker.retained(AVAILABILITY) == b"online"
    assert json.loads(mqtt_broker.retained(next(iter(configs)))) == next(iter(configs.values()))
    assert mqtt_broker.retained("ipcam_analysis/front_gate/dog/state") == b"OFF"


def test_camera_event_publishes_json_and_camera_motion_for_alert_seconds(
    mqtt_broker: Broker, start_notifier: StartNotifier
) -> None:
    watcher, notifier = start_watched(
        mqtt_broker, start_notifier, alert_seconds=0.5, camera_motion=True
    )
    assert mqtt_broker.retained("ipcam_analysis/front_gate/camera_motion") == b"OFF"
    motion = notifier.discovery_configs()[
        "homeassistant/binary_sensor/ipcam_analysis_front_gate/camera_motion/config"
    ]
    assert motion["name"] == "Camera motion" and motion["device_class"] == "motion"
    assert motion["state_topic"] == "ipcam_analysis/front_gate/camera_motion"
    started = time.monotonic()
    event = CameraEvent(
        camera="front gate",
        remote_ip="192.168.1.20",
        received_at=datetime(2026, 12, 3, 17, 0, 5, tzinfo=timezone.utc),
        event="HumanDetect",
        status="Start",
        channel=0,
        serial_id="a7c81f0e5d6b4c3a",
        camera_time="2026-12-03 17:00:04",
    )

    outcome = notifier.publish_camera_event(event)

    assert outcome.ok, outcome.detail
    payload = json.loads(watcher.wait_for("ipcam_analysis/front_gate/camera_event").payload)
    assert payload == {
        "camera": "front gate",
        "time": "2026-12-03T17:00:05+00:00",
        "event": "HumanDetect",
        "status": "Start",
        "channel": 0,
        "serial_id": "a7c81f0e5d6b4c3a",
        "camera_time": "2026-12-03 17:00:04",
    }
    on = watcher.wait_for("ipcam_analysis/front_gate/camera_motion", "ON", after=started)
    watcher.wait_for("ipcam_analysis/front_gate/camera_motion", "OFF", after=on.arrived_at)


def test_discovery_is_published_again_when_home_assistant_comes_online(
    mqtt_broker: Broker, start_notifier: StartNotifier
) -> None:
    watcher, notifier = start_watched(mqtt_broker, start_notifier)
    configs = notifier.discovery_configs()
    for topic in configs:
        watcher.wait_for(topic)
    restarted_at = time.monotonic()

    # What Home Assistant sends on its birth topic when it (re)starts.
    publish.single("homeassistant/status", "online", hostname=HOST, port=mqtt_broker.port)

    for topic, expected in configs.items():
        again = watcher.wait_for(topic, after=restarted_at)
        assert json.loads(again.payload) == expected
    watcher.wait_for(AVAILABILITY, "online", after=restarted_at)
    watcher.wait_for("ipcam_analysis/cam01/alert", "OFF", after=restarted_at)


def test_alert_publishes_event_snapshot_and_matching_sensors_then_turns_them_off(
    mqtt_broker: Broker, start_notifier: StartNotifier
) -> None:
    watcher, notifier = start_watched(mqtt_broker, start_notifier, alert_seconds=0.5)
    alert = alert_seen_as(HUMAN, CAR)
    started = time.monotonic()

    outcome = notifier.send(alert)

    assert outcome.ok and outcome.notifier == "mqtt", outcome.detail
    event = json.loads(watcher.wait_for("ipcam_analysis/cam01/event").payload)
    assert event == {
        "camera": "cam01",
        "time": "2026-11-23T21:58:03.950010+01:00",
        "event_id": 42,
        "labels": [
            {
                "name": "Human",
                "display_name": "Human",
                "confidence": 97.5,
                "boxes": [{**dataclasses.asdict(PERSON_BOX), "confidence": 97.5, "runner_ups": []}],
            },
            {
                "name": "Car",
                "display_name": "Car",
                "confidence": 88.25,
                "boxes": [{**dataclasses.asdict(DOG_BOX), "confidence": 88.25, "runner_ups": []}],
            },
        ],
        "snapshot_url": "https://nvr.example.net/ipcam/events/42",
    }
    # Human is an alias of Person and Car a child of Vehicle, as the rules match them.
    for sensor in ("alert", "person/state", "vehicle/state"):
        on = watcher.wait_for(f"ipcam_analysis/cam01/{sensor}", "ON", after=started)
        watcher.wait_for(f"ipcam_analysis/cam01/{sensor}", "OFF", after=on.arrived_at)
    assert [m.payload for m in watcher.on("ipcam_analysis/cam01/dog/state")] == [b"OFF"]
    assert mqtt_broker.retained("ipcam_analysis/cam01/snapshot") == alert.annotated_jpeg
    assert mqtt_broker.retained("ipcam_analysis/cam01/person/state") == b"OFF"


def test_a_new_alert_keeps_the_sensor_on_for_the_full_time_again(
    mqtt_broker: Broker, start_notifier: StartNotifier
) -> None:
    alert_seconds = 2.0
    watcher, notifier = start_watched(mqtt_broker, start_notifier, alert_seconds=alert_seconds)
    state = "ipcam_analysis/cam01/person/state"

    assert notifier.send(alert_seen_as(HUMAN)).ok
    first_on = watcher.wait_for(state, "ON")
    time.sleep(alert_seconds / 2)  # time passing is what is tested here, not a wait for a state
    second_sent = time.monotonic()
    assert notifier.send(alert_seen_as(HUMAN)).ok

    off = watcher.wait_for(state, "OFF", after=first_on.arrived_at)
    # Only a lower bound: the first alert's timer would have fired a second earlier.
    assert off.arrived_at - second_sent >= alert_seconds


def test_the_event_names_a_merged_object_once_with_its_runner_ups() -> None:
    van = Instance(DOG_BOX, 44.2, (RunnerUp("Bus", 30.8), RunnerUp("Car", 28.0)))
    truck = Label("Truck", 44.2, ("Vehicle",), instances=(van,), runner_up_names=("Bus", "Car"))
    alert = make_alert("cam01", (MatchedLabel(truck, "Truck"),))
    notifier = MqttNotifier(MqttConfig(host=HOST), NotifierContext(("cam01",)))
    (label,) = json.loads(notifier.event_json(alert))["labels"]
    assert label["name"] == "Truck"
    assert label["boxes"][0]["runner_ups"] == [
        {"name": "Bus", "confidence": 30.8},
        {"name": "Car", "confidence": 28.0},
    ]


def test_without_a_dashboard_or_event_the_event_has_no_link(
    mqtt_broker: Broker, start_notifier: StartNotifier
) -> None:
    notifier = start_notifier(mqtt_broker.port)

    event = json.loads(notifier.event_json(alert_seen_as(HUMAN, event_id=None)))

    assert event["snapshot_url"] is None and event["event_id"] is None


def test_close_turns_pending_sensors_off_and_says_offline(
    mqtt_broker: Broker, start_notifier: StartNotifier
) -> None:
    watcher, notifier = start_watched(mqtt_broker, start_notifier, alert_seconds=600)
    assert notifier.send(alert_seen_as(HUMAN)).ok
    on = watcher.wait_for("ipcam_analysis/cam01/person/state", "ON")

    notifier.close()

    watcher.wait_for("ipcam_analysis/cam01/person/state", "OFF", after=on.arrived_at)
    assert mqtt_broker.retained(AVAILABILITY) == b"offline"


LAST_WILL_SCRIPT = """
import sys, time
from ipcam_analysis.notify.base import NotifierContext
from ipcam_analysis.notify.mqtt import MqttConfig, MqttNotifier
settings = MqttConfig(host=sys.argv[1], port=int(sys.argv[2]))
MqttNotifier(settings, NotifierContext(("cam01",))).start()
time.sleep(600)
"""


def test_broker_says_offline_when_the_service_dies(mqtt_broker: Broker) -> None:
    watcher = mqtt_broker.watch()
    source = str(Path(__file__).resolve().parents[1] / "src")
    service = subprocess.Popen(
        [sys.executable, "-c", LAST_WILL_SCRIPT, mqtt_broker.host, str(mqtt_broker.port)],
        env={**os.environ, "PYTHONPATH": source},
    )
    try:
        online = watcher.wait_for(AVAILABILITY, "online")
        service.kill()  # no goodbye: only the broker's last will can tell
        watcher.wait_for(AVAILABILITY, "offline", after=online.arrived_at)
    finally:
        service.kill()
        service.wait(WAIT_SECONDS)


def test_unreachable_broker_is_a_quick_retryable_failure(start_notifier: StartNotifier) -> None:
    notifier = start_notifier(free_port(), timeout_seconds=1)

    outcome = notifier.send(alert_seen_as(HUMAN))

    assert (outcome.ok, outcome.retry) == (False, True)
    assert f"not connected to the MQTT broker {HOST}:" in outcome.detail


def test_alerts_flow_again_after_the_broker_restarts(
    mqtt_broker: Broker, start_notifier: StartNotifier
) -> None:
    _, notifier = start_watched(mqtt_broker, start_notifier, timeout_seconds=2)

    mqtt_broker.stop()
    outcome = notifier.send(alert_seen_as(HUMAN))
    mqtt_broker.start()
    watcher = mqtt_broker.watch()
    # A broker without persistence forgot everything: the notifier announces itself again.
    watcher.wait_for(AVAILABILITY, "online")
    watcher.wait_for("homeassistant/image/ipcam_analysis_cam01/snapshot/config")

    assert (outcome.ok, outcome.retry) == (False, True)
    assert notifier.send(alert_seen_as(HUMAN)).ok
    watcher.wait_for("ipcam_analysis/cam01/event")


def test_login_broker_lets_the_configured_user_publish(
    mqtt_login_broker: Broker, start_notifier: StartNotifier
) -> None:
    _, notifier = start_watched(
        mqtt_login_broker, start_notifier, username=USERNAME, password=PASSWORD
    )

    assert notifier.send(alert_seen_as(HUMAN)).ok


def test_wrong_password_is_reported_and_retried(
    mqtt_login_broker: Broker, start_notifier: StartNotifier
) -> None:
    notifier = start_notifier(
        mqtt_login_broker.port, username=USERNAME, password="wrong", timeout_seconds=1
    )

    outcome = notifier.send(alert_seen_as(HUMAN))

    assert (outcome.ok, outcome.retry) == (False, True)
    assert "refused" in outcome.detail and "authori" in outcome.detail.lower()


def test_config_builds_the_notifier_from_cameras_labels_and_dashboard() -> None:
    settings = {
        "ftp_server": {"users": {"cam01": "pw-cam01", "garden": "pw-garden"}},
        "labels": ["Person", "Cat"],
        "web": {"public_url": "http://192.168.1.5:8080"},
        "mqtt": {"host": "broker.lan", "username": "ipcam", "password": "Mqtt-Pass-5521"},
    }
    config = AppConfig.model_validate(settings)
    ignoring = AppConfig.model_validate({**settings, "new_labels_only": True})

    notifier = MqttNotifier(config.mqtt, config.notifier_context)
    new_labels = MqttNotifier(ignoring.mqtt, ignoring.notifier_context)

    assert "Mqtt-Pass-5521" in config.secrets()
    assert sorted(topic.split("/")[-2] for topic in notifier.discovery_configs()) == sorted(
        ["alert", "label_person", "label_cat", "snapshot"] * 2
    )
    # In new-labels mode the list is what to ignore: only the camera-wide sensors remain.
    assert sorted(topic.split("/")[-2] for topic in new_labels.discovery_configs()) == sorted(
        ["alert", "snapshot"] * 2
    )
    event = json.loads(notifier.event_json(alert_seen_as(HUMAN)))
    assert event["snapshot_url"] == "http://192.168.1.5:8080/events/42"
    nothing = AppConfig()
    assert build_notifiers({"cam01": nothing.notifier_settings()}, nothing.notifier_context) == {
        "cam01": ()
    }


def test_without_a_discovery_prefix_nothing_is_announced_to_home_assistant() -> None:
    settings = MqttConfig(host="broker.lan", discovery_prefix=None)
    context = NotifierContext(tuple(CAMERAS), sensor_labels=tuple(SENSOR_LABELS))

    assert MqttNotifier(settings, context).discovery_configs() == {}


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"topic_prefix": "cameras/+/x"}, "without + or #"),
        ({"discovery_prefix": "/"}, "without + or #"),
        ({"password": "secret"}, "password is set but username is not"),
        ({"alert_seconds": 0}, "greater than 0"),
    ],
)
def test_config_rejects_unusable_mqtt_settings(settings: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError, match=problem.replace("+", r"\+")):
        MqttConfig.model_validate({"host": "broker.lan", **settings})
