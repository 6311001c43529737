"""Broker addresses: parse `--broker` URLs and find a free loopback port.

Accepted: ``mqtt://host[:port]`` (default 1883) and ``mqtts://host[:port]`` (TLS, default 8883),
each optionally with ``user[:password]@`` (percent-encoded, as in any URL).
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from qora.errors import InvalidInput

DEFAULT_PORTS = {"mqtt": 1883, "mqtts": 8883}


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None = None
    # repr=False: addresses end up in logs and tracebacks; the password must not.
    password: str | None = field(default=None, repr=False)
    tls: bool = False

    @property
    def url(self) -> str:
        """The URL without credentials (safe to print)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{'mqtts' if self.tls else 'mqtt'}://{host}:{self.port}"


def _redacted(url: str) -> str:
    # Error messages quote the URL, and they end up in logs: never with the password.
    return re.sub(r"//([^/@:]*):[^/@]*@", r"//\1:***@", url)


def parse_broker_url(url: str) -> BrokerAddress:
    """Parse an MQTT broker URL; raise InvalidInput naming what was expected and what came."""
    expected = "expected mqtt://[user[:password]@]host[:port] or mqtts://…"
    if not isinstance(url, str) or not url.strip():
        raise InvalidInput(f"broker URL: {expected}, got {url!r}")
    raw, url = url.strip(), _redacted(url.strip())
    try:
        parts = urlsplit(raw)
        port = parts.port  # raises ValueError for a non-numeric or out-of-range port
    except ValueError as e:
        raise InvalidInput(f"broker URL: {expected}, got {url!r} ({_redacted(str(e))})") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise InvalidInput(f"broker URL scheme: expected mqtt or mqtts, "
                           f"got {parts.scheme or 'none'!r} in {url!r}")
    if not parts.hostname:
        raise InvalidInput(f"broker URL: expected a host name, got none in {url!r}")
    # A path, query or fragment has no meaning for MQTT; silently dropping it would hide typos.
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise InvalidInput(f"broker URL: {expected}, got extra path/query/fragment in {url!r}")
    if port == 0:
        raise InvalidInput(f"broker URL port: expected 1..65535, got 0 in {url!r}")
    if parts.password is not None and not parts.username:
        raise InvalidInput(f"broker URL: expected a user name before the password, "
                           f"got none in {url!r}")
    return BrokerAddress(
        host=parts.hostname,
        port=port if port is not None else DEFAULT_PORTS[scheme],
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        tls=scheme == "mqtts",
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on `host` right now (another process may still take it later)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]
