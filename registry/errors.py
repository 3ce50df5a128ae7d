"""Refusals are part of the interface: each carries an HTTP status and a message that says what to do."""

from __future__ import annotations

import re

MESSAGE_LIMIT = 4000  # characters of a refusal's message
_CONTROL = re.compile("[\x00-\x1f\x7f\x85\u2028\u2029\ud800-\udfff]")  # (and undecodable bytes)


class RegistryError(Exception):
    """A refusal the caller can act on. Never a bug: bugs are plain exceptions (and 500s)."""

    status = 400
    permission = False  # a missing permission, named in the message (Denied)

    def __init__(self, message: str, *, status: int | None = None) -> None:
        # (one line, whatever it quotes: a refusal is printed, logged and sent in a header-like field)
        message = _CONTROL.sub(lambda m: repr(m.group())[1:-1], message)
        if len(message) > MESSAGE_LIMIT:  # (one that quotes what it was given: never echo 100 KB back)
            cut = MESSAGE_LIMIT // 2
            message = f"{message[:cut]} [... {len(message) - 2 * cut} characters left out ...] {message[-cut:]}"
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class Invalid(RegistryError):
    status = 400


class Unauthorized(RegistryError):
    """No usable credentials: clients retry with stored ones when they see 401 + WWW-Authenticate."""

    status = 401


class Forbidden(RegistryError):
    status = 403


class Denied(Forbidden):
    """A permission the caller lacks, named in the message (who may grant it is said there too)."""

    permission = True


class NotFound(RegistryError):
    status = 404


class Conflict(RegistryError):
    status = 409


class FileExists(Invalid):
    """The filename is taken by other bytes (a 400, as on the public index: clients look for it)."""


class FilenameSpent(Invalid):
    """The filename once held a file that has since been deleted: never accepted again."""


class Gone(RegistryError):
    """It was there (at the commit asked for), and has been deleted since."""

    status = 410


class TooMany(RegistryError):
    """Too many requests of one kind in too short a time (the message says how long to wait)."""

    status = 429


class TooLarge(RegistryError):
    status = 413


class Busy(RegistryError):
    """The ledger stayed locked longer than we are willing to wait."""

    status = 503


def size(n: int) -> str:
    """A size as a refusal states it: bytes, and KiB or MiB once it is that large (1.5 MiB, 600 bytes)."""
    for unit, scale in (("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n} bytes ({f'{n / scale:.1f}'.removesuffix('.0')} {unit})"
    return f"{n} bytes"
