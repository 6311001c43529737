# STAND-IN for umqtt.simple (tests only; see ../README.md). Same API as the board's client:
# MQTTClient(client_id, server, port, user, password, keepalive, ssl), set_callback,
# set_last_will, connect, publish, subscribe, check_msg, wait_msg, ping, disconnect, sock.
#
# Instead of a socket it talks to BROKER, an in-memory broker the test configures:
#   BROKER.retained[topic] = payload        retained messages (delivered on subscribe)
#   BROKER.script = [[(topic, payload, retain), ...], ...]
#                                           batches released one by one when the node idles
#   BROKER.fail_publish = [n, ...]          the n-th publish (1-based, all clients) fails with
#                                           OSError: the connection is lost, the will is sent
#   BROKER.idle_limit                       empty check_msg calls (script done) before
#                                           StandinStop ends the run (or BROKER.stop_with,
#                                           e.g. KeyboardInterrupt: Ctrl-C on a board)
# and it records everything in BROKER.events. Like umqtt.simple, the callback gets bytes
# topics and payloads, also while publish(qos=1) waits for the PUBACK.


class StandinStop(BaseException):
    """Ends a test run: the broker has nothing more to deliver."""


def _stop_exception():
    return BROKER.stop_with("nothing more to deliver (stand-in broker)")


def topic_matches(flt, topic):
    f = flt.split("/")
    t = topic.split("/")
    for i in range(len(f)):
        if f[i] == "#":
            return True
        if i >= len(t) or (f[i] != "+" and f[i] != t[i]):
            return False
    return len(f) == len(t)


def _s(x):
    return x if type(x) is str else str(x, "utf-8")


def _b(x):
    return x.encode("utf-8") if type(x) is str else bytes(x)


class StandinBroker:
    def __init__(self):
        self.reset()

    def reset(self):
        self.retained = {}
        self.script = []
        self.fail_publish = []
        self.refuse_connects = 0
        self.idle_limit = 3
        self.stop_with = StandinStop
        self.deliver_in_publish = True
        self.reverse_retained = True     # retained messages arrive in any order: test that
        self.events = []
        self.n_publish = 0
        self.client = None
        self.queue = []
        self.subs = []
        self.idle = 0

    def published(self, prefix=""):
        return [e for e in self.events if e[0] == "publish" and e[1].startswith(prefix)]

    def _route(self, topic, msg, retain):
        if retain:
            if msg:
                self.retained[topic] = msg
            elif topic in self.retained:
                del self.retained[topic]
        for f in self.subs:
            if topic_matches(f, topic):
                self.queue.append((topic, msg))
                break

    def release(self):
        """Deliver the next scripted batch; False when the script is done."""
        if not self.script:
            return False
        for topic, msg, retain in self.script.pop(0):
            self.events.append(("release", topic, len(msg)))
            self._route(topic, msg, retain)
        return True

    def lose(self, client, why):
        self.events.append(("lost", why))
        if client.will is not None:
            topic, msg, retain, qos = client.will
            self.events.append(("will", topic, msg, retain, qos))
            self._route(topic, msg, retain)
        client.dead = True
        if self.client is client:
            self.client = None
            self.subs = []
            self.queue = []


BROKER = StandinBroker()


class _Sock:
    def __init__(self, client):
        self.client = client

    def close(self):
        self.client.dead = True
        if BROKER.client is self.client:
            BROKER.client = None


class MQTTClient:
    def __init__(self, client_id, server, port=0, user=None, password=None, keepalive=0,
                 ssl=None, ssl_params={}):
        self.client_id = _s(client_id)
        self.server = server
        self.port = port
        self.user = user
        self.password = password
        self.keepalive = keepalive
        self.cb = None
        self.will = None
        self.dead = True
        self.sock = _Sock(self)

    def set_callback(self, f):
        self.cb = f

    def set_last_will(self, topic, msg, retain=False, qos=0):
        self.will = (_s(topic), _b(msg), retain, qos)

    def connect(self, clean_session=True, timeout=None):
        if BROKER.refuse_connects > 0:
            BROKER.refuse_connects -= 1
            BROKER.events.append(("refused", self.client_id))
            raise OSError(111)  # ECONNREFUSED
        BROKER.events.append(("connect", self.client_id, self.server, self.port, self.user,
                              self.password, self.keepalive, self.will, clean_session))
        BROKER.client = self
        BROKER.subs = []
        BROKER.queue = []
        self.dead = False
        return False

    def _alive(self):
        if self.dead:
            raise OSError(-1)

    def _deliver(self):
        topic, msg = BROKER.queue.pop(0)
        self.cb(_b(topic), _b(msg))

    def publish(self, topic, msg, retain=False, qos=0):
        self._alive()
        BROKER.n_publish += 1
        if BROKER.n_publish in BROKER.fail_publish:
            BROKER.lose(self, "publish %d failed" % BROKER.n_publish)
            raise OSError(104)  # ECONNRESET
        BROKER.events.append(("publish", _s(topic), _b(msg), retain, qos))
        BROKER._route(_s(topic), _b(msg), retain)
        if qos == 1 and BROKER.deliver_in_publish and BROKER.queue:
            self._deliver()  # umqtt.simple dispatches messages while it waits for the PUBACK

    def subscribe(self, topic, qos=0):
        self._alive()
        topic = _s(topic)
        BROKER.events.append(("subscribe", topic, qos))
        BROKER.subs.append(topic)
        for t in sorted(BROKER.retained, reverse=BROKER.reverse_retained):
            if topic_matches(topic, t):
                BROKER.queue.append((t, BROKER.retained[t]))

    def check_msg(self, attempts=2):
        self._alive()
        if BROKER.queue:
            BROKER.idle = 0
            self._deliver()
            return 0x30
        if BROKER.release():
            return None
        BROKER.idle += 1
        if BROKER.idle > BROKER.idle_limit:
            raise _stop_exception()
        return None

    def wait_msg(self):
        return self.check_msg()

    def ping(self):
        self._alive()
        BROKER.events.append(("ping",))

    def disconnect(self):
        self._alive()
        BROKER.events.append(("disconnect", self.client_id))
        self.dead = True
        BROKER.client = None
