"""What most in-process tests share: the test workspace (`WS`), a world of role holders in it,
publishing a file without HTTP, the legacy upload form, and damaging a blob behind the registry's back.
The fixtures that build them are in tests/conftest.py."""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from registry import identity, operations
from registry.datadir import Registry

WS = "acme"


# The same assertions over both blob stores: `@BOTH` on a test (or `pytestmark = BOTH`) runs it with
# the data directory's blobs/ and with a bucket on a real S3 server (SeaweedFS, started once).
BOTH = pytest.mark.parametrize("backend", ["file", "s3"], indirect=True)


@dataclass
class World:
    """A workspace with every kind of role holder, and a write token for each of them."""

    reg: Registry
    ws: str = WS
    tokens: dict[str, str] = field(default_factory=dict)  # label (usually the email) -> secret

    @staticmethod
    def email(who: str) -> str:
        return "dev@acme.test" if who == "dev-readonly" else who

    def basic(self, who: str) -> dict[str, str]:
        value = base64.b64encode(f"{self.email(who)}:{self.tokens[who]}".encode()).decode()
        return {"authorization": f"Basic {value}"}

    def principal(self, who: str) -> identity.Principal:
        return identity.check_token(self.reg.snapshot(), self.email(who), self.tokens[who])


PEOPLE = {
    "wsadmin@acme.test": None,       # workspace admin
    "owner@acme.test": "admin",      # admin of acme/utils
    "dev@acme.test": "write",        # write on acme/utils
    "reader@acme.test": "read",      # read on acme/utils
    "projreader@acme.test": None,    # read on project CORE (so on every CORE repository)
    "outsider@acme.test": None,      # nothing at all
}


def publish(reg: Registry, who: identity.Principal, path: Path, ws: str = WS) -> operations.Published:
    """What the upload endpoint does with a file, minus HTTP."""
    from registry import dists as distmod

    with reg.blobs.stage() as staged:
        staged.write(path.read_bytes())
        staged.finish()
        with staged.open() as content:
            dist = distmod.inspect(content, path.name)
        return operations.publish_file(reg, who, "upload", ws, dist, staged)


def overwrite_blob(reg: Registry, sha256: str, data: bytes) -> None:
    """Damage a stored blob behind the registry's back (a disk's bit rot, an operator's mistake)."""
    if reg.blobs.remote:
        reg.blobs.bucket.client().put_object(Bucket=reg.blobs.location.bucket, Key=reg.blobs.bucket.key(sha256),
                                             Body=data)
    else:
        reg.blobs.local_path(sha256).write_bytes(data)


def upload_form(path: Path, **overrides) -> tuple[dict, dict]:
    """The legacy upload form, field for field as twine sends it."""
    import hashlib

    from registry import dists as distmod

    data = path.read_bytes()
    info = distmod.inspect(path, path.name)
    fields = {
        ":action": "file_upload", "protocol_version": "1", "metadata_version": info.metadata_version,
        "name": info.name, "version": info.version, "filetype": info.packagetype,
        "pyversion": info.python_version, "sha256_digest": hashlib.sha256(data).hexdigest(),
        "blake2_256_digest": hashlib.blake2b(data, digest_size=32).hexdigest(),
        "summary": info.summary, "classifiers": ["A :: B", "C :: D"],
    }
    filename = overrides.pop("filename", path.name)
    content = overrides.pop("content", data)
    fields.update(overrides)
    fields = {k: v for k, v in fields.items() if v is not None}
    return fields, {"content": (filename, content, "application/octet-stream")}
