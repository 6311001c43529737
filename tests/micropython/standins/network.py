# STAND-IN for the ESP32's `network` module (tests only; see README.md in this directory).
# WLAN(STA_IF) joins any network at once; FAIL_SSIDS lists SSIDs that never connect.

STA_IF = 0
AP_IF = 1
JOINED = []
FAIL_SSIDS = []


class WLAN:
    def __init__(self, interface=STA_IF):
        self.interface = interface
        self._active = False
        self._ssid = None

    def active(self, on=None):
        if on is not None:
            self._active = bool(on)
        return self._active

    def connect(self, ssid, password=""):
        if not self._active:
            raise OSError("WLAN not active (stand-in)")
        JOINED.append((ssid, password))
        self._ssid = None if ssid in FAIL_SSIDS else ssid

    def isconnected(self):
        return self._ssid is not None

    def ifconfig(self):
        return ("10.0.0.42", "255.255.255.0", "10.0.0.1", "10.0.0.1")

    def disconnect(self):
        self._ssid = None
