# Qora Edge node for MicroPython: cbor, hmac256, protocol (wire protocol v1), node.
