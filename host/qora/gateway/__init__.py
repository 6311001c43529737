"""Serial <-> MQTT gateway for boards without a network (docs/serial.md)."""

from qora.gateway.bridge import BoardLink, Gateway, LinkStats
from qora.gateway.framing import FrameDecoder, encode_frame

__all__ = ["BoardLink", "FrameDecoder", "Gateway", "LinkStats", "encode_frame"]
