"""paho-mqtt 2.x clients set up the way every qora component needs them.

One place for: MQTT 5 when the broker speaks it (3.1.1 otherwise), credentials and TLS
from the broker URL, automatic reconnects with back-off, re-subscribing on every
(re)connect, and a persistent session for the aggregator so QoS 1 updates sent while
it was down are delivered when it returns.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable, Iterable

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from qora.errors import QoraError
from qora.mqtt_url import BrokerAddress

log = logging.getLogger("qora.mqtt")

SESSION_EXPIRY_S = 24 * 3600


class BrokerUnavailable(QoraError, ConnectionError):
    """The broker could not be reached or refused the connection."""


def probe_protocol(address: BrokerAddress, timeout: float = 3.0) -> MQTTProtocolVersion:
    """MQTT 5 if the broker accepts a v5 CONNECT, else 3.1.1 (amqtt, older brokers)."""
    done = threading.Event()
    result: dict = {}

    def on_connect(client, userdata, flags, reason_code, properties):
        result["ok"] = not reason_code.is_failure
        done.set()

    def on_disconnect(client, userdata, flags, reason_code, properties):
        done.set()

    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="", protocol=MQTTProtocolVersion.MQTTv5,
                    reconnect_on_failure=False)
    _credentials(c, address)
    c.on_connect, c.on_disconnect = on_connect, on_disconnect
    try:
        c.connect(address.host, address.port, keepalive=10)
    except OSError as e:
        raise BrokerUnavailable(f"cannot reach the MQTT broker at {address.host}:{address.port}: {e}") from None
    c.loop_start()
    done.wait(timeout)
    c.disconnect()
    c.loop_stop()
    return MQTTProtocolVersion.MQTTv5 if result.get("ok") else MQTTProtocolVersion.MQTTv311


_probed: dict[tuple[str, int, bool], tuple[float, MQTTProtocolVersion]] = {}
_probe_lock = threading.Lock()
PROBE_TTL_S = 30.0   # a short memory: another broker may take the port later


def resolve_protocol(address: BrokerAddress, version: str | MQTTProtocolVersion | None) -> MQTTProtocolVersion:
    """"5", "3.1.1", or "auto"/None (ask the broker — once per broker and process: a simulated
    fleet's hundreds of clients would otherwise each open a probe connection first)."""
    if isinstance(version, MQTTProtocolVersion):
        return version
    if version in (None, "auto"):
        key = (address.host, address.port, address.tls)
        with _probe_lock:
            seen = _probed.get(key)
            if seen is None or time.monotonic() - seen[0] > PROBE_TTL_S:
                seen = _probed[key] = (time.monotonic(), probe_protocol(address))
            return seen[1]
    if version == "5":
        return MQTTProtocolVersion.MQTTv5
    if version in ("3.1.1", "3"):
        return MQTTProtocolVersion.MQTTv311
    raise QoraError(f"MQTT version must be 'auto', '5' or '3.1.1', got {version!r}")


def _credentials(c: mqtt.Client, address: BrokerAddress) -> None:
    if address.username is not None:
        c.username_pw_set(address.username, address.password)
    if address.tls:
        c.tls_set()


def make_client(address: BrokerAddress, client_id: str, *,
                subscriptions: Iterable[tuple[str, int]] = (),
                on_message: Callable[[mqtt.MQTTMessage], None] | None = None,
                protocol: MQTTProtocolVersion | str | None = None, persistent: bool = False,
                manual_ack: bool = False, max_packet_size: int | None = None,
                will: tuple[str, bytes] | None = None,
                on_connected: Callable[[bool], None] | None = None) -> mqtt.Client:
    """A started client (network loop in its own thread) that keeps itself connected.

    ``subscriptions`` are (re)made on every connect. ``persistent`` keeps the session on
    the broker across disconnects (clean session off; session expiry on MQTT 5).
    ``on_connected(True/False)`` reports connection changes.
    """
    protocol = resolve_protocol(address, protocol)
    v5 = protocol == MQTTProtocolVersion.MQTTv5
    kwargs = {} if v5 else {"clean_session": not persistent}
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=protocol,
                    manual_ack=manual_ack, **kwargs)
    _credentials(c, address)
    c.reconnect_delay_set(min_delay=1, max_delay=4)
    c.max_queued_messages_set(0)  # QoS 1 publishes made while disconnected wait, unbounded
    if will is not None:
        c.will_set(will[0], will[1], qos=1, retain=True)
    subs = list(subscriptions)

    def _on_connect(client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            log.warning("%s: broker refused the connection: %s", client_id, reason_code)
            if on_connected:
                on_connected(False)
            return
        if subs:
            client.subscribe([(t, q) for t, q in subs])
        if on_connected:
            on_connected(True)

    def _on_disconnect(client, userdata, flags, reason_code, properties):
        if on_connected:
            on_connected(False)

    def _on_message(client, userdata, msg):
        if on_message is not None:
            on_message(msg)

    c.on_connect, c.on_disconnect, c.on_message = _on_connect, _on_disconnect, _on_message
    props = None
    if v5:
        props = Properties(PacketTypes.CONNECT)
        if persistent:
            props.SessionExpiryInterval = SESSION_EXPIRY_S
        if max_packet_size:
            props.MaximumPacketSize = max_packet_size
    clean_start = (not persistent) if v5 else mqtt.MQTT_CLEAN_START_FIRST_ONLY
    c.connect_async(address.host, address.port, keepalive=30, clean_start=clean_start, properties=props)
    c.loop_start()
    return c


def expiry_properties(seconds: int) -> Properties:
    """PUBLISH properties with a message expiry (MQTT 5): stale updates die in the broker."""
    props = Properties(PacketTypes.PUBLISH)
    props.MessageExpiryInterval = max(1, int(seconds))
    return props


def forget_fleet(address: BrokerAddress, fleet: str, aggregator_client_id: str | None = None,
                 timeout: float = 5.0) -> int:
    """Clear a fleet's retained messages and end its aggregator's persistent session on the
    broker (a decommissioned fleet, or a demo run on a shared broker). Returns the number of
    retained topics cleared."""
    seen: set[str] = set()
    subscribed = threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="", protocol=MQTTProtocolVersion.MQTTv311)
    _credentials(c, address)
    c.on_message = lambda cl, u, m: seen.add(m.topic) if m.retain else None
    c.on_subscribe = lambda *a: subscribed.set()
    try:
        c.connect(address.host, address.port, keepalive=30)
    except OSError as e:
        raise BrokerUnavailable(f"cannot reach the MQTT broker at {address.host}:{address.port}: {e}") from None
    c.loop_start()
    try:
        c.subscribe(f"qora/v1/{fleet}/#", qos=1)
        subscribed.wait(timeout)
        time.sleep(0.3)  # retained messages follow the SUBACK
        for info in [c.publish(t, b"", qos=1, retain=True) for t in sorted(seen)]:
            info.wait_for_publish(timeout)
    finally:
        c.disconnect()
        c.loop_stop()
    # a clean-session connect under the aggregator's client id drops its stored session
    done = threading.Event()
    s = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=aggregator_client_id or f"qora-aggregator-{fleet}",
                    protocol=MQTTProtocolVersion.MQTTv311, clean_session=True)
    _credentials(s, address)
    s.on_connect = lambda *a: done.set()
    s.connect(address.host, address.port, keepalive=30)
    s.loop_start()
    done.wait(timeout)
    s.disconnect()
    s.loop_stop()
    return len(seen)
