"""What the ledger refuses to write: anything it, git or a checkout could not read back.

Every commit passes `check` before any object is written, whatever operation made it: the backstop
for a bound an operation forgot. A tree entry's name is a path segment: libgit2 can't parse a tree
holding one over 65,535 bytes, filesystems take at most 255, git refuses '.', '..' and '.git'.
An author is a line of the commit's header; a trailer is a line of the block `parse_trailers` reads.
"""

from __future__ import annotations

import re

from ..bounds import AUTHOR_TRIMS
from ..errors import Invalid

SEGMENT_BYTES = 255
_CONTROL = re.compile("[\x00-\x1f\x7f]")
_NOT_IN_AUTHOR = re.compile("[\x00-\x1f\x7f<>]")
_TRAILER_KEY = re.compile(r"[A-Za-z][A-Za-z0-9-]*\Z")
_PLAIN = re.compile(rb"[A-Za-z0-9_@+=-][A-Za-z0-9._@+=-]{0,254}")  # (no leading '.': '.git' and '..' are checked)


class Unwritable(Invalid):
    """A change the ledger could not read back once written; nothing was written."""


def segment_problem(name: bytes) -> str | None:
    """Why git, libgit2 or a checkout can't take ``name`` as a tree entry, or None if they can."""
    if _PLAIN.fullmatch(name):  # (what nearly every ledger path is made of: nothing more to check)
        return None
    if not name:
        return "an empty name"
    if len(name) > SEGMENT_BYTES:
        what = "libgit2 can't parse the tree that holds it" if len(name) > 0xFFFF else "no filesystem can hold it"
        return f"a name of {len(name)} bytes (at most {SEGMENT_BYTES}: {what})"
    if name in (b".", b".."):
        return f"the name {name.decode()!r}"
    if _dotgit(name):
        return f"a name git reserves ({_shown(name)})"
    if b"/" in name or b"\\" in name:
        return f"a separator inside the name {_shown(name)}"
    if _CONTROL.search(name.decode("utf-8", "replace")):
        return f"a control character in the name {_shown(name)}"
    try:
        name.decode("utf-8")
    except UnicodeDecodeError:
        return f"a name that is not UTF-8 ({_shown(name)})"
    return None


def _dotgit(name: bytes) -> bool:
    """`.git` as git's fsck sees it: any case, and as Windows and NTFS read it (trailing dots and spaces, `git~1`)."""
    folded = name.decode("utf-8", "replace").lower().rstrip(". ")
    return folded in (".git", "git~1") or folded.startswith(".git:")


def _shown(name: bytes, limit: int = 60) -> str:
    text = name.decode("utf-8", "replace")
    return repr(text) if len(text) <= limit else f"{text[:limit]!r}... ({len(name)} bytes)"


def check(change) -> None:
    """Refuse ``change`` (a `Change`) if anything it writes could not be read back. Removals are
    never refused: taking out an entry the ledger can't read is how it is repaired."""
    for path, data in change.writes.items():
        if data is None:
            continue
        for segment in path.split("/"):
            problem = segment_problem(segment.encode()) if _encodable(segment) else "a name that is not text"
            if problem:
                raise Unwritable(f"The ledger refuses to write {_shown(path.encode('utf-8', 'replace'), 120)}: "
                                 f"{problem}. Nothing was changed.")
    name, email = change.author
    for what, value in (("author name", name), ("author email", email)):
        if not value.strip(AUTHOR_TRIMS) or _NOT_IN_AUTHOR.search(value) or not _encodable(value):
            raise Unwritable(f"The ledger refuses a commit whose {what} is {_shown(value.encode('utf-8', 'replace'))}: "
                             "git's author lines can't hold it (nothing but spaces and punctuation git trims, '<', "
                             "'>', a control character). Nothing was changed.")
    if change.body.strip() and not change.trailers:  # (the last paragraph is the trailer block)
        raise Unwritable("The ledger refuses a commit with a body and no trailers: its body could be read as "
                         "trailers. Nothing was changed.")
    for key, value in change.trailers:
        flat = " ".join(str(value).split())  # (as Change.message writes it)
        if not _TRAILER_KEY.match(key):
            raise Unwritable(f"The ledger refuses the commit trailer key {key!r}. Nothing was changed.")
        if not flat or _CONTROL.search(flat) or not _encodable(flat):
            shown = _shown(str(value).encode("utf-8", "replace"))
            raise Unwritable(f"The ledger refuses the commit trailer {key}: {shown} "
                             "(empty, or holding a control character, it would end or break the trailer block). "
                             "Nothing was changed.")
    if not change.summary.split():
        raise Unwritable("The ledger refuses a commit without a summary: its trailers would be read as one. "
                         "Nothing was changed.")
    for what, text in (("summary", change.summary), ("body", change.body)):
        if "\0" in text or not _encodable(text):
            raise Unwritable(f"The ledger refuses a commit whose {what} holds a NUL or an undecodable byte "
                             "(git would cut the message there). Nothing was changed.")


def _encodable(text: str) -> bool:
    try:
        text.encode()
        return True
    except UnicodeEncodeError:
        return False
