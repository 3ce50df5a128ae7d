"""What the pipe prints: plain lines a person can follow in the step log, with every secret masked,
also in the tools' own output and in DEBUG lines."""

from __future__ import annotations

import base64
import sys

MASK = "********"
# As Bitbucket's own pipes end: a red ✖ or a green ✔ line (the step log shows ANSI colours).
RED, GREEN, RESET = "\x1b[31m", "\x1b[32m", "\x1b[0m"


class Console:
    def __init__(self, debug: bool = False, colour: bool = False) -> None:
        self.debug_enabled = debug
        self.colour = colour
        self._secrets: set[str] = set()

    def add_secret(self, value: str | None, username: str | None = None) -> None:
        """Mask ``value`` from now on; with ``username``, also the Basic header a tool might log."""
        if not value:
            return
        self._secrets.add(value)
        if username is not None:
            self._secrets.add(base64.b64encode(f"{username}:{value}".encode()).decode())

    def mask(self, text: str) -> str:
        for secret in sorted(self._secrets, key=len, reverse=True):  # longest first: one may contain another
            text = text.replace(secret, MASK)
        return text

    def info(self, message: str = "") -> None:
        print(self.mask(message), flush=True)

    def debug(self, message: str) -> None:
        if self.debug_enabled:
            print(self.mask(f"DEBUG: {message}"), flush=True)

    def warn(self, message: str) -> None:
        print(self.mask(f"WARNING: {message}"), flush=True)

    def success(self, message: str) -> None:
        print(self._paint(GREEN, self.mask(f"✔ {message}")), flush=True)

    def fail(self, message: str) -> None:
        """The one-line reason the step failed, last in the log and on stderr."""
        sys.stdout.flush()
        print(self._paint(RED, self.mask(f"✖ {' '.join(message.split())}")), file=sys.stderr, flush=True)

    def _paint(self, colour: str, line: str) -> str:
        return f"{colour}{line}{RESET}" if self.colour else line


def size_text(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / 1024 / 1024:.1f} MiB"
