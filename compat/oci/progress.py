"""What the registry client is waiting for, on a terminal: one short line on stderr,
overwritten in place, shown once a wait passes ~2 s and erased when the request ends.
Nothing at all when stderr is not a terminal (scripts and schedulers read stderr)."""
from __future__ import annotations

import sys
import time

from compat.errors import printable

SHOW_AFTER_S = 2.0


class WaitNotice:
    def __init__(self, host: str, stream=None):
        self.host = printable(host, 80)
        self.stream = stream if stream is not None else sys.stderr
        try:
            self.tty = self.stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        self.what = ""
        self.started = None
        self.shown = False
        self._last = ""

    def begin(self, what: str) -> None:
        self.what = printable(what, 60)
        if self.started is None:
            self.started = time.monotonic()

    def _write(self, text: str) -> None:
        if not self.tty or text == self._last:
            return
        self._last = text
        try:
            self.stream.write("\r\x1b[K" + text[:100])
            self.stream.flush()
        except (OSError, ValueError):
            self.tty = False
            return
        self.shown = True

    def on_wait(self, waited: float) -> None:
        """A socket wait has lasted ``waited`` seconds."""
        if waited >= SHOW_AFTER_S:
            self._write(f"compat: waiting {waited:.0f} s for {self.host} ({self.what})")

    def retrying(self, reason: str, delay: float, next_try: int) -> None:
        if self.started is not None and time.monotonic() - self.started + delay >= SHOW_AFTER_S:
            self._write(f"compat: {self.host}: {printable(reason, 40)}; retrying in {delay:.1f} s (try {next_try})")

    def end(self) -> None:
        self.started = None
        self._last = ""
        if self.shown:
            self.shown = False
            try:
                self.stream.write("\r\x1b[K")
                self.stream.flush()
            except (OSError, ValueError):
                pass
