"""An in-process MQTT broker (amqtt) for zero-set-up runs and tests.

amqtt is asyncio-only and its Broker must be built inside a running loop, so the broker gets its
own loop in a daemon thread; the rest of qora talks to it over TCP like any other broker. It speaks
MQTT 3.1.1 only, allows anonymous clients and has no ACLs: it is for loopback use, never for
production (use Mosquitto with `qora provision` there).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

from qora.errors import QoraError
from qora.mqtt_url import free_port, parse_broker_url

log = logging.getLogger("qora.broker")

__all__ = ["BrokerError", "EmbeddedBroker", "free_port", "parse_broker_url"]


class BrokerError(QoraError, RuntimeError):
    """The embedded broker could not start or stop."""


def _quiet_amqtt() -> None:
    # amqtt logs every connection and packet at INFO/DEBUG; keep it at WARNING unless the
    # application has already chosen a level for it.
    for name in ("amqtt", "transitions"):
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET:
            logger.setLevel(logging.WARNING)


def _one_line_errors(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    """amqtt 0.11 lets some per-connection errors escape to the loop (e.g. iterating its
    subscription table while another client subscribes); the client is dropped and reconnects.
    One log line (INFO: it is recovered) instead of asyncio's traceback on the console."""
    exc = context.get("exception")
    log.info("embedded broker: %s%s", context.get("message", "error"),
                f" ({type(exc).__name__}: {exc})" if exc else "")


class EmbeddedBroker:
    """amqtt on `host:port` (port 0: a free port chosen by the OS), run in a daemon thread.

    >>> with EmbeddedBroker() as broker:
    ...     url = broker.url            # "mqtt://127.0.0.1:<port>"
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, timeout: float = 10.0) -> None:
        if not isinstance(port, int) or not 0 <= port <= 65535:
            raise BrokerError(f"port: expected 0..65535 (0 = any free port), got {port!r}")
        self.host = host
        self._requested_port = port
        self._port: int | None = None
        self._timeout = timeout
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._ready = threading.Event()
        self._stop_requested = threading.Event()  # seen by _serve() even before its loop exists
        self._error: BaseException | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise BrokerError("port: the broker is not running (call start() first)")
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"mqtt://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and self._port is not None

    def _config(self) -> dict[str, Any]:
        return {
            # "external": amqtt opens no socket; _serve() accepts the connections itself (below).
            "listeners": {"default": {"type": "external"}},
            # Only anonymous auth: this replaces amqtt's default plugin set, which would also
            # publish $SYS topics and log every packet.
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }

    def start(self) -> EmbeddedBroker:
        """Start the broker; return once its socket is listening. Raise BrokerError otherwise."""
        if self._thread is not None:
            raise BrokerError(f"start: expected a stopped broker, got one running at {self.url}")
        _quiet_amqtt()
        self._ready.clear()
        self._stop_requested.clear()
        self._loop = self._stop_event = None  # a previous run's, closed
        self._error = None
        self._thread = threading.Thread(target=self._run, name="qora-embedded-broker", daemon=True)
        self._thread.start()
        if not self._ready.wait(self._timeout):
            self._signal_stop()  # the daemon thread winds down whenever it gets that far
            self._thread = None
            raise BrokerError(f"start: expected the broker listening on {self.host} within "
                              f"{self._timeout} s, it was not")
        if self._error is not None:
            error, self._error = self._error, None
            self._thread.join(self._timeout)
            self._thread = None
            raise BrokerError(f"start: expected the broker to listen on {self.host}:"
                              f"{self._requested_port}, got {type(error).__name__}: {error}"
                              ) from error
        return self

    def _signal_stop(self) -> None:
        self._stop_requested.set()
        loop, event = self._loop, self._stop_event
        if loop is not None and event is not None:
            try:
                loop.call_soon_threadsafe(event.set)
            except RuntimeError:  # the loop has already closed: nothing left to stop
                pass

    def stop(self) -> None:
        """Disconnect every client, close the socket and join the thread. Idempotent."""
        thread = self._thread
        if thread is None:
            return
        self._signal_stop()
        thread.join(self._timeout)
        self._thread = None
        if thread.is_alive():
            raise BrokerError(f"stop: expected the broker thread to end within {self._timeout} s, "
                              "it is still running")
        self._port = None
        if self._error is not None:
            error, self._error = self._error, None
            raise BrokerError(f"stop: the broker failed while shutting down: {error}") from error

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as e:  # noqa: BLE001 - reported to the caller of start()/stop()
            self._error = e
        finally:
            self._ready.set()  # never leave start() waiting for a thread that died

    async def _serve(self) -> None:
        # Imported here, not at module level: amqtt is slow to import and only needed here.
        from amqtt.adapters import StreamReaderAdapter, StreamWriterAdapter
        from amqtt.broker import Broker

        self._loop = asyncio.get_running_loop()
        self._loop.set_exception_handler(_one_line_errors)
        self._stop_event = asyncio.Event()
        broker = Broker(self._config())
        # Connections are accepted here and handed to amqtt, not by amqtt's own listener, so
        # that stopping can close every client socket first. amqtt 0.11's shutdown() cancels
        # each session's reader task, and Python 3.11's asyncio.wait_for can swallow that
        # cancellation: shutdown() then waited forever on a still-connected client.
        connections: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}

        async def on_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            connections[task] = writer
            try:
                await broker.external_connected(
                    StreamReaderAdapter(reader), StreamWriterAdapter(writer), "default")
            finally:
                connections.pop(task, None)
                writer.close()

        await broker.start()
        try:
            server = await asyncio.start_server(on_connection, self.host, self._requested_port)
        except BaseException:
            await broker.shutdown()
            raise
        try:
            self._port = server.sockets[0].getsockname()[1]  # the real port when 0 was asked
            self._ready.set()
            if not self._stop_requested.is_set():
                await self._stop_event.wait()
        finally:
            server.close()
            for writer in list(connections.values()):
                writer.close()  # the session sees end of stream and ends the normal way
            if connections:
                await asyncio.wait(list(connections), timeout=self._timeout / 2)
            try:
                await broker.shutdown()
            except asyncio.CancelledError:
                # amqtt 0.11 gathers the QoS 1 deliveries it cancelled without
                # return_exceptions, so shutdown() can re-raise their cancellation. Nobody
                # cancels this task (stop() sets an event): the cancellation is amqtt's own.
                pass
            await server.wait_closed()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._port is not None else f"{self.host} (stopped)"
        return f"EmbeddedBroker({where})"
