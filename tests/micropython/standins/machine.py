# STAND-IN for the ESP32's `machine` module (tests only; see README.md in this directory).


class StandinReset(BaseException):
    """Raised by the stand-in reset(): a real board would reboot here."""


RESETS = []


def reset():
    RESETS.append(1)
    raise StandinReset("machine.reset() (stand-in)")


def unique_id():
    return b"\x00\x11\x22\x33\x44\x55"
