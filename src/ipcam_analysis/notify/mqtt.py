"""MQTT: a JSON event and the snapshot for each alert, and Home Assistant discovery per camera."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode
from pydantic import Field, SecretStr, field_validator, model_validator

from ipcam_analysis import __version__
from ipcam_analysis.notify.base import NotifierContext
from ipcam_analysis.notify.event import alert_event
from ipcam_analysis.settings import StrictModel
from ipcam_analysis.values import Alert, CameraEvent, NotifyOutcome

log = logging.getLogger(__name__)

ONLINE, OFFLINE = "online", "offline"
ON, OFF = "ON", "OFF"
QOS = 1  # at least once: the broker's acknowledgement is how a send knows it got through
KEEPALIVE_SECONDS = 60
RECONNECT_DELAY_SECONDS = (1, 30)  # paho's backoff between reconnection attempts
ORIGIN = {"name": "ipcam-analysis", "sw_version": __version__}
CAMERA_MOTION = "camera_motion"  # the sensor a camera's own alarms (XMeye HumanDetect) turn on

# Topic levels and Home Assistant ids allow only these characters.
_UNSAFE_IN_TOPIC = re.compile(r"[^A-Za-z0-9_-]+")


class MqttConfig(StrictModel):
    """`mqtt:`, on when `host` is set."""

    host: str | None = None
    port: int = Field(1883, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    client_id: str | None = None  # None: a new random id each run, so two runs never clash
    topic_prefix: str = "ipcam_analysis"
    discovery_prefix: str | None = "homeassistant"  # None: no Home Assistant discovery
    alert_seconds: float = Field(30, gt=0)  # how long a binary sensor stays ON after an alert
    timeout_seconds: float = Field(5, gt=0)  # for the first connection, then for each alert

    @field_validator("topic_prefix", "discovery_prefix")
    @classmethod
    def _plain_topic(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip("/")
        if not value or "+" in value or "#" in value:
            raise ValueError("must be a topic such as ipcam_analysis, without + or #")
        return value

    @model_validator(mode="after")
    def _login_complete(self) -> MqttConfig:
        if self.password is not None and not self.username:
            raise ValueError("password is set but username is not")
        return self

    @property
    def switched_on(self) -> bool:
        return bool(self.host)


def _client_id(chosen: str | None, instance: str) -> str:
    """The user's id, suffixed per process when several connect with it; "" for a random one."""
    if not chosen:
        return ""
    return f"{chosen}-{instance}" if instance else chosen


def topic_part(name: str) -> str:
    """A camera or label name as one topic level or id: `Front gate` → `Front_gate`."""
    return _UNSAFE_IN_TOPIC.sub("_", name)


def _acknowledged(message: mqtt.MQTTMessageInfo, deadline: float) -> bool:
    """Whether the broker confirmed the message (QoS 1) before the deadline."""
    if message.rc != mqtt.MQTT_ERR_SUCCESS:
        return False
    message.wait_for_publish(max(0.0, deadline - time.monotonic()))
    return message.is_published()


class MqttNotifier:
    """Publishes alerts to one broker over a connection kept open, and re-established, in the
    background; `start()` and `close()` bracket the service's run."""

    name = "mqtt"

    def __init__(self, settings: MqttConfig, context: NotifierContext) -> None:
        """A device per camera of the context, a binary sensor per sensor label, and a camera
        motion sensor each when cameras report motion themselves."""
        if not settings.host:
            raise ValueError("mqtt.host is not set")
        self._settings = settings
        self._where = f"{settings.host}:{settings.port}"
        self._cameras = list(context.cameras)
        self._sensor_labels = list(context.sensor_labels)
        self._camera_motion = context.camera_motion
        url = context.dashboard_url
        self._dashboard_url = url.rstrip("/") if url else None
        self.availability_topic = f"{settings.topic_prefix}/availability"
        # Home Assistant says `online` here when it (re)starts, and asks for discovery again.
        prefix = settings.discovery_prefix
        self.home_assistant_status_topic = f"{prefix}/status" if prefix else None
        self._lock = threading.Lock()
        self._off_timers: dict[str, threading.Timer] = {}  # ON state topic → its OFF timer
        self._connected = threading.Event()
        self._problem = "no connection attempt yet"
        client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2,
            client_id=_client_id(settings.client_id, context.instance),
            protocol=mqtt.MQTTv311,
        )
        client.will_set(self.availability_topic, OFFLINE, qos=QOS, retain=True)
        if settings.username:
            password = settings.password.get_secret_value() if settings.password else None
            client.username_pw_set(settings.username, password)
        client.reconnect_delay_set(*RECONNECT_DELAY_SECONDS)
        client.on_connect = self._on_connect
        client.on_connect_fail = self._on_connect_fail
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        self._client = client

    def camera_topic(self, camera: str, leaf: str) -> str:
        return f"{self._settings.topic_prefix}/{topic_part(camera)}/{leaf}"

    def label_state_topic(self, camera: str, label: str) -> str:
        return self.camera_topic(camera, f"{topic_part(label).lower()}/state")

    def start(self) -> None:
        """Connects in the background and waits a little for it; a broker that is down is
        reported and retried, never fatal."""
        self._client.connect_async(
            self._settings.host or "", self._settings.port, KEEPALIVE_SECONDS
        )
        self._client.loop_start()
        if not self._connected.wait(self._settings.timeout_seconds):
            log.warning(
                "MQTT broker %s not reachable yet (%s); retrying in the background",
                self._where,
                self._problem,
            )

    def close(self) -> None:
        """Turns pending sensors OFF, says offline (the will covers unclean ends only), disconnects."""
        with self._lock:
            timers, self._off_timers = self._off_timers, {}
        for timer in timers.values():
            timer.cancel()
        if self._connected.is_set():
            deadline = time.monotonic() + self._settings.timeout_seconds
            messages = [self._publish(topic, OFF) for topic in timers]
            messages.append(self._publish(self.availability_topic, OFFLINE))
            if not all(_acknowledged(message, deadline) for message in messages):
                log.warning("MQTT broker %s did not acknowledge going offline", self._where)
        self._client.disconnect()
        self._client.loop_stop()

    def send(self, alert: Alert) -> NotifyOutcome:
        # Checked first: paho would queue the messages and send them after a reconnection,
        # on top of the pipeline's own retry.
        if not self._connected.is_set():
            return self._failure(
                f"not connected to the MQTT broker {self._where} ({self._problem})"
            )
        deadline = time.monotonic() + self._settings.timeout_seconds
        messages = [
            self._publish(self.camera_topic(alert.camera, "event"), self.event_json(alert), False),
            self._publish(self.camera_topic(alert.camera, "snapshot"), alert.annotated_jpeg),
            *self._turn_on(self._sensor_topics(alert)),
        ]
        if not all(_acknowledged(message, deadline) for message in messages):
            return self._failure(
                f"the MQTT broker {self._where} did not acknowledge the alert within "
                f"{self._settings.timeout_seconds:g} s"
            )
        return NotifyOutcome(self.name, ok=True, detail=f"published to {self._where}")

    def publish_camera_event(self, event: CameraEvent) -> NotifyOutcome:
        """What a camera reported itself (an XMeye alarm): the event as JSON on
        `<prefix>/<camera>/camera_event`, and its "Camera motion" sensor ON for alert_seconds
        (a "Stop" only lets that time run out)."""
        if not self._connected.is_set():
            log.warning("Camera event from %s not published: not connected", event.camera)
            return self._failure(f"not connected to the MQTT broker {self._where}")
        payload = {
            "camera": event.camera,
            "time": event.received_at.isoformat(),
            "event": event.event,
            "status": event.status,
            "channel": event.channel,
            "serial_id": event.serial_id,
            "camera_time": event.camera_time,
        }
        deadline = time.monotonic() + self._settings.timeout_seconds
        messages = [
            self._publish(
                self.camera_topic(event.camera, "camera_event"), json.dumps(payload), False
            )
        ]
        if event.status.lower() != "stop":
            messages += self._turn_on([self._motion_topic(event.camera)])
        if not all(_acknowledged(message, deadline) for message in messages):
            log.warning("Camera event from %s not acknowledged by %s", event.camera, self._where)
            return self._failure(f"the MQTT broker {self._where} did not acknowledge it")
        return NotifyOutcome(self.name, ok=True, detail=f"published to {self._where}")

    def event_json(self, alert: Alert) -> str:
        """The event: camera, time, labels with their confidences and boxes, and links."""
        return json.dumps(alert_event(alert, self._dashboard_url))

    def discovery_configs(self) -> dict[str, dict[str, Any]]:
        """Home Assistant discovery topic → config: per camera, an Alert binary sensor, one
        per sensor label, and the last snapshot as an image, grouped as one device."""
        discovery = self._settings.discovery_prefix
        if not discovery:
            return {}
        configs: dict[str, dict[str, Any]] = {}
        for camera in self._cameras:
            node = f"{topic_part(self._settings.topic_prefix)}_{topic_part(camera)}"
            device: dict[str, Any] = {
                "identifiers": [node],
                "name": camera,
                "manufacturer": "ipcam-analysis",
                "model": "FTP camera",
                "sw_version": __version__,
            }
            if self._dashboard_url:
                device["configuration_url"] = self._dashboard_url
            entities = {
                "alert": (
                    "binary_sensor",
                    "Alert",
                    self._sensor(self.camera_topic(camera, "alert")),
                ),
                "snapshot": (
                    "image",
                    "Snapshot",
                    {
                        "image_topic": self.camera_topic(camera, "snapshot"),
                        "content_type": "image/jpeg",
                    },
                ),
            }
            if self._camera_motion:
                motion = {"state_topic": self._motion_topic(camera), "device_class": "motion"}
                entities[CAMERA_MOTION] = ("binary_sensor", "Camera motion", motion)
            for label in self._sensor_labels:
                state = self.label_state_topic(camera, label)
                entities[f"label_{topic_part(label).lower()}"] = (
                    "binary_sensor",
                    label,
                    self._sensor(state),
                )
            for object_id, (component, entity_name, fields) in entities.items():
                configs[f"{discovery}/{component}/{node}/{object_id}/config"] = {
                    "name": entity_name,
                    "unique_id": f"{node}_{object_id}",
                    "availability_topic": self.availability_topic,
                    "device": device,
                    "origin": ORIGIN,
                    **fields,
                }
        return configs

    def _motion_topic(self, camera: str) -> str:
        return self.camera_topic(camera, CAMERA_MOTION)

    @staticmethod
    def _sensor(state_topic: str) -> dict[str, str]:
        return {"state_topic": state_topic, "device_class": "occupancy"}

    def _sensor_topics(self, alert: Alert) -> list[str]:
        """The camera's Alert sensor and those of the sensor labels the alert matched."""
        topics = [self.camera_topic(alert.camera, "alert")]
        topics += [self.label_state_topic(alert.camera, label) for label in alert.sensors]
        return topics

    def _turn_on(self, topics: list[str]) -> list[mqtt.MQTTMessageInfo]:
        """ON now, OFF after alert_seconds; a newer alert restarts the wait."""
        messages = []
        # Under the lock with _turn_off, so a timer that fires now cannot slip an OFF in after
        # this ON and before its own replacement is armed.
        with self._lock:
            for topic in topics:
                previous = self._off_timers.pop(topic, None)
                if previous is not None:
                    previous.cancel()
                messages.append(self._publish(topic, ON))
                timer = threading.Timer(self._settings.alert_seconds, self._turn_off, (topic,))
                timer.daemon = True
                self._off_timers[topic] = timer
                timer.start()
        return messages

    def _turn_off(self, topic: str) -> None:
        with self._lock:
            if self._off_timers.get(topic) is not threading.current_thread():
                return  # re-armed by a newer alert, or closed
            del self._off_timers[topic]
            self._publish(topic, OFF)

    def _publish(
        self, topic: str, payload: str | bytes, retain: bool = True
    ) -> mqtt.MQTTMessageInfo:
        return self._client.publish(topic, payload, qos=QOS, retain=retain)

    def _failure(self, detail: str) -> NotifyOutcome:
        return NotifyOutcome(self.name, ok=False, detail=detail, retry=True)

    def _announce(self) -> None:
        """Online, discovery and every sensor's state, retained: sent on each connection, as a
        broker without persistence forgets retained messages when it restarts."""
        self._publish(self.availability_topic, ONLINE)
        for topic, config in self.discovery_configs().items():
            self._publish(topic, json.dumps(config))
        with self._lock:
            active = set(self._off_timers)
        for camera in self._cameras:
            states = [self.camera_topic(camera, "alert")]
            states += [self._motion_topic(camera)] if self._camera_motion else []
            states += [self.label_state_topic(camera, label) for label in self._sensor_labels]
            for topic in states:
                self._publish(topic, ON if topic in active else OFF)

    # paho callbacks, run in its network thread.
    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        if reason.is_failure:
            self._problem = f"the broker refused the connection: {reason}"
            return
        log.info("Connected to MQTT broker %s", self._where)
        self._problem = ""
        self._announce()
        if self.home_assistant_status_topic:
            client.subscribe(self.home_assistant_status_topic, qos=QOS)
        self._connected.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        """Home Assistant came online (a restart forgets what was discovered): announce again,
        as its MQTT discovery documentation asks."""
        if message.topic == self.home_assistant_status_topic and message.payload == ONLINE.encode():
            log.info("Home Assistant is online: announcing the cameras again")
            self._announce()

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self._problem = "cannot connect"

    def _on_disconnect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: ReasonCode, properties: Any
    ) -> None:
        if self._connected.is_set() and reason.is_failure:
            log.warning("Lost the MQTT broker %s (%s); reconnecting", self._where, reason)
            self._problem = f"connection lost: {reason}"
        self._connected.clear()


def build_mqtt_notifiers(settings: MqttConfig, context: NotifierContext) -> list[MqttNotifier]:
    """One connection for every camera when a broker is set."""
    return [MqttNotifier(settings, context)] if settings.host else []
