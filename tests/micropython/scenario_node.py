# A node run with the hardware stand-ins, the same script on the MicroPython VM and CPython.
#
# The working directory is the "board" as deploy.sh left it (main.py, config.json, shard.bin,
# qora_node/, qref/) plus scenario.json from the test:
#   {"retained": [[topic, hex], ...],                 retained before the node connects
#    "script": [[[topic, hex, retain], ...], ...],     batches released when the node idles
#    "fail_publish": [n, ...], "refuse_connects": n, "idle_limit": n, "fail_ssids": [...],
#    "ctrl_c": true (the run ends with KeyboardInterrupt instead of StandinStop)}
# It imports main (which runs the node), and when the stand-in broker has nothing more to
# deliver (StandinStop, or Ctrl-C) or the board resets (StandinReset), prints one line per
# broker event:
#   EV <json>   bytes as hex

import binascii
import json

import machine
import network
from umqtt.simple import BROKER, StandinStop


def _hex(b):
    return str(binascii.hexlify(b), "ascii")


def _plain(v):
    if isinstance(v, (bytes, bytearray)):
        return _hex(v)
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    return v


with open("scenario.json") as f:
    sc = json.load(f)
BROKER.reset()
for topic, payload in sc.get("retained", []):
    BROKER.retained[topic] = binascii.unhexlify(payload)
for batch in sc.get("script", []):
    BROKER.script.append([(t, binascii.unhexlify(p), r) for t, p, r in batch])
BROKER.fail_publish = sc.get("fail_publish", [])
BROKER.refuse_connects = sc.get("refuse_connects", 0)
BROKER.idle_limit = sc.get("idle_limit", 3)
network.FAIL_SSIDS[:] = sc.get("fail_ssids", [])
if sc.get("ctrl_c"):
    BROKER.stop_with = KeyboardInterrupt

end = "none"
try:
    import main  # noqa: F401  (runs the node, as the board does at boot)
except StandinStop:
    end = "stop"
except machine.StandinReset:
    end = "reset"
except KeyboardInterrupt:
    end = "interrupt"
print("END " + end)
for e in BROKER.events:
    print("EV " + json.dumps(_plain(e)))
print("WIFI " + json.dumps(network.JOINED))
