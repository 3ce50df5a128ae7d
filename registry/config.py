"""Settings: one struct, read from REGISTRY_* environment variables and command-line overrides."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

ENV_PREFIX = "REGISTRY_"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    data: str = "registry-data"
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    # The public index's default per-file limit; 413 above it.
    max_upload_bytes: int = 100 * 2**20
    # The URL clients use to reach this server (behind a proxy, say); only used in printed settings.
    public_url: str | None = None
    committer_name: str = "registry"
    committer_email: str = "registry@localhost"
    # How long unreferenced blobs are kept before the background collector frees them.
    gc_grace_seconds: int = 3600
    # What GET /_/oidc/audience answers (default: the public URL); add it to a trust's audiences.
    oidc_audience: str | None = None
    log_level: str = "info"
    # Where distribution files live: "" for the data directory's blobs/, or s3://BUCKET[/PREFIX] (the
    # endpoint, region and credentials come from the usual AWS_* environment variables).
    blobs: str = ""
    # With S3: answer a download with a redirect to a short-lived presigned URL of the bucket.
    blobs_redirect: bool = False
    # A read replica: the primary's URL (`registry serve --follow URL`), and its replica token.
    follow: str | None = None
    follow_token: str | None = None
    # How long a write forwarded by a replica waits for its commit to arrive there (then a 504 that
    # says the primary did it): longer for a replica far from its primary.
    follow_wait_seconds: float = 10.0

    def __post_init__(self) -> None:
        if self.blobs and not self.blobs.startswith("s3://"):
            raise ValueError(f"blobs is {self.blobs!r}: leave it empty (the data directory's blobs/) or give "
                             "s3://BUCKET[/PREFIX] - `registry blobs migrate --to s3://...` moves existing blobs there")
        if not self.follow_wait_seconds > 0:
            raise ValueError(f"follow_wait_seconds is {self.follow_wait_seconds}: give a number of seconds above 0")

    @property
    def primary(self) -> str | None:
        return self.follow.rstrip("/") if self.follow else None

    @property
    def data_path(self) -> Path:
        return Path(self.data).expanduser().resolve()

    @property
    def ledger_path(self) -> Path:
        return self.data_path / "ledger.git"

    @property
    def blobs_path(self) -> Path:
        return self.data_path / "blobs"

    @property
    def keys_path(self) -> Path:
        """The private signing keys (mode 0700; never in the ledger)."""
        return self.data_path / "keys"

    @property
    def cache_path(self) -> Path:
        return self.data_path / "cache"

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    @classmethod
    def load(cls, **overrides) -> Settings:
        """Defaults, then REGISTRY_* variables, then explicit (non-None) overrides."""
        values: dict[str, object] = {}
        for field in msgspec.structs.fields(cls):
            raw = os.environ.get(ENV_PREFIX + field.name.upper())
            if raw is not None and raw != "":
                values[field.name] = raw
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return msgspec.convert(values, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise SystemExit(f"registry: invalid setting: {exc}") from None

    def to_env(self) -> dict[str, str]:
        """The same settings as environment variables, for worker processes."""
        return {
            ENV_PREFIX + f.name.upper(): str(getattr(self, f.name))
            for f in msgspec.structs.fields(self)
            if getattr(self, f.name) is not None
        }
