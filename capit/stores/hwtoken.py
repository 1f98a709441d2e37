"""What the hardware slots share: the touch wait (prompt, timeout, cancel) and messages.

The touch prompt is printed only when the device says it is waiting for a touch (the
keepalive "user presence needed" status of yubikit and python-fido2), once per operation.
The wait is bounded by ``CAPIT_TOUCH_TIMEOUT`` seconds (default 30): a timer sets the
library's cancel ``Event``, the library cancels the request on the device, and capit reports
it on one line.  Ctrl-C goes through the libraries' own KeyboardInterrupt handling (they
cancel the request on the device first) and then capit's usual exit 130.
"""

from __future__ import annotations

import os
import threading
from types import TracebackType

from capit import ui
from capit.errors import CapitError, ExitCode

DEFAULT_TOUCH_TIMEOUT = 30.0
MAX_TOUCH_TIMEOUT = 600.0
STATUS_UPNEEDED = 2  # yubikit STATUS_UPNEEDED and fido2 STATUS.UPNEEDED


def touch_timeout() -> float:
    """Seconds to wait for a touch: CAPIT_TOUCH_TIMEOUT, default 30."""
    value = os.environ.get("CAPIT_TOUCH_TIMEOUT", "").strip()
    if not value:
        return DEFAULT_TOUCH_TIMEOUT
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= MAX_TOUCH_TIMEOUT:
        raise CapitError(
            f"CAPIT_TOUCH_TIMEOUT must be a number of seconds above 0 and at most "
            f"{MAX_TOUCH_TIMEOUT:g}, got {value!r}",
            ExitCode.USAGE,
        )
    return seconds


def _seconds(value: float) -> str:
    return f"{value:g} s"


class TouchWait:
    """One device operation that may wait for a touch: prompt once, time out, cancel.

    ``event`` is handed to the library as its cancel event and ``on_keepalive`` as its
    keepalive callback.
    """

    def __init__(self, prompt: str, timeout: float | None = None) -> None:
        self.prompt = prompt
        self.timeout = touch_timeout() if timeout is None else timeout
        self.event = threading.Event()
        self.prompted = False
        self.expired = False
        self._timer: threading.Timer | None = None

    def _expire(self) -> None:
        self.expired = True
        self.event.set()

    def __enter__(self) -> TouchWait:
        self._timer = threading.Timer(self.timeout, self._expire)
        self._timer.daemon = True
        self._timer.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def on_keepalive(self, status: int) -> None:
        if int(status) == STATUS_UPNEEDED and not self.prompted:
            self.prompted = True
            ui.info(self.prompt)

    def timed_out(self, what: str) -> CapitError:
        """The error for a touch that did not come (the device's own timeout or ours)."""
        if self.expired:
            detail = f"within {_seconds(self.timeout)} (CAPIT_TOUCH_TIMEOUT)"
        else:
            detail = "before it gave up waiting"
        return CapitError(f"{what} was not touched {detail}; nothing was changed",
                          ExitCode.CANCELLED)


def gone(what: str, exc: BaseException, code: ExitCode) -> CapitError:
    """A device that stopped answering mid-operation (unplugged, or an I/O error)."""
    detail = str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__
    return CapitError(f"{what} stopped answering ({detail}); was it unplugged? "
                      "Nothing was changed", code)
