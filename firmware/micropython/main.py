# Qora node on an ESP32 running MicroPython: the board runs this file at boot.
#
# Reads config.json (written by make_shard.py), joins the Wi-Fi network with network.WLAN,
# then runs the node (qora_node.node) for ever. A fatal error (bad config, missing shard,
# Wi-Fi that never comes up, a bug) is printed, and the board resets after a delay.
# Ctrl-C (mpremote, the REPL) publishes STATUS offline, disconnects and stops without a reset.

import json
import sys
import time

import machine
import network


def log(*args):
    print("qora:", *args)


def load_config(path="config.json"):
    with open(path) as f:
        return json.load(f)


def connect_wifi(cfg, timeout_s=30):
    w = cfg["wifi"]
    wlan = network.WLAN(network.STA_IF)
    wlan.active(True)
    if not wlan.isconnected():
        log("joining Wi-Fi %r" % w["ssid"])
        wlan.connect(w["ssid"], w.get("password", ""))
        waited = 0
        while not wlan.isconnected():
            if waited >= timeout_s * 10:
                raise OSError("Wi-Fi %r: not connected after %d s" % (w["ssid"], timeout_s))
            time.sleep(0.1)
            waited += 1
    log("Wi-Fi up:", wlan.ifconfig()[0])
    return wlan


def main(path="config.json"):
    delay = 10
    node = None
    try:
        cfg = load_config(path)
        delay = cfg.get("reset_delay_s", delay)
        from umqtt.simple import MQTTClient
        from qora_node.node import Node
        node = Node(cfg, MQTTClient)
        log("node %s of fleet %s: %d samples, %d features, %d classes"
            % (node.node, node.fleet, node.shard.rows, node.shard.n_features, node.shard.n_classes))
        connect_wifi(cfg, cfg.get("wifi_timeout_s", 30))
        node.run_forever()
    except KeyboardInterrupt:  # Ctrl-C (mpremote): say goodbye, then back to the REPL
        if node is not None:
            try:
                node.shutdown()
            except Exception:
                pass
        raise
    except Exception as e:
        log("fatal:", repr(e))
        if hasattr(sys, "print_exception"):
            sys.print_exception(e)
        log("resetting in %d s" % delay)
        time.sleep(delay)
        machine.reset()


main()
