"""How long, and of which characters, each piece of text a user gives the registry may be.

Everything a user types ends up in a record, a ledger path or a commit message, so each kind is
bounded here, and a refusal names the bound and what was given. Names that become path segments in
the ledger stay well under 255 bytes (what checkouts and filesystems take); text that becomes a git
author or a commit line holds no control characters (git would cut or misread it).
"""

from __future__ import annotations

import re

from .errors import Invalid

PACKAGE_NAME = 200  # a name this long still leaves room for a version and tags in a 255-byte filename
VERSION = 128  # PEP 440 sets none; real versions, local labels included, stay far below it
EMAIL = 250  # `users/<xx>/<email>.json`: the segment must stay under 255 bytes
EMAIL_LOCAL = 64  # RFC 5321
DISPLAY_NAME = 250  # a user's, a workspace's or a project's name as shown (a user's is their email by default)
TOKEN_LABEL = 200
YANK_REASON = 512  # the public index's bound on a summary
ISSUER = 1024  # an issuer URL (Bitbucket's are about 90 characters)
AUDIENCE = 150  # Bitbucket's limits on an OIDC audience, and on how many a token may carry
AUDIENCES = 10
BRANCH_GLOB = 255  # a branch name is a ref: git stores each as a file
BRANCH_GLOBS = 100
ENVIRONMENTS = 100
JWKS_BYTES = 64 * 2**10  # an issuer's public keys, when given inline
TOKEN_DAYS = 3650  # ten years; a token without --expires-days never expires
SHOWN = 60  # characters of a refused value a message quotes

# Characters no line of text may hold: C0 and C1 controls (NUL, newline, escape...), the Unicode
# line and paragraph separators, and lone surrogates (what undecodable bytes become in argv).
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def shown(value: str, limit: int = SHOWN) -> str:
    """``value`` quoted for a message, cut short when long: a refusal never echoes 100 KB back."""
    if len(value) <= limit:
        return repr(value)
    return f"{value[:limit]!r}... ({len(value)} characters)"


def at_most(value: str, limit: int, things: str) -> str:
    """``value`` if it has at most ``limit`` characters; ``things`` names them ("Package names")."""
    if len(value) > limit:
        raise Invalid(f"{things} are at most {limit} characters; this one has {len(value)}.")
    return value


def one_line(value: str, limit: int, things: str, *, empty: bool = False) -> str:
    """``value`` stripped, if it is one line of at most ``limit`` characters without control characters."""
    text = at_most(value, limit, things).strip()
    if not text and not empty:
        raise Invalid(f"{things} can't be empty.")
    found = _CONTROL.search(text)
    if found:
        raise Invalid(f"{things} are one line of text: this one holds U+{ord(found.group()):04X} at position "
                      f"{found.start() + 1} (a control character, a line break or an undecodable byte).")
    return text


def secret(value: str, limit: int, things: str) -> str:
    """A credential as given (never stripped: a space may belong to it), if it has at most ``limit``
    characters and none that can't be sent in a header (controls, undecodable bytes)."""
    at_most(value, limit, things)
    found = _CONTROL.search(value)
    if found:
        raise Invalid(f"{things} can't hold U+{ord(found.group()):04X} (a control character or an undecodable byte), "
                      f"found at position {found.start() + 1}.")
    return value


AUTHOR_TRIMS = " \"',:;\\"  # what git (and libgit2) trim off both ends of an author's name and email


def person_name(value: str) -> str:
    """A user's name as shown and as the git author of their changes: one line, without '<' or '>'."""
    name = one_line(value, DISPLAY_NAME, "Names")
    if "<" in name or ">" in name:
        raise Invalid(f"Names can't hold '<' or '>' (this one is {shown(name)}): the name is the author of the "
                      "person's commits in the ledger, and git's author lines can't hold them.")
    if not name.strip(AUTHOR_TRIMS):
        raise Invalid(f"A name needs a letter or a digit (this one is {shown(name)}): the name is the author of the "
                      "person's commits in the ledger, and git trims spaces and punctuation like these away.")
    return name


def is_person_name(value: str) -> bool:
    try:
        return person_name(value) == value
    except Invalid:
        return False


def count(values: list, limit: int, things: str) -> list:
    if len(values) > limit:
        raise Invalid(f"At most {limit} {things} can be given; these are {len(values)}.")
    return values
