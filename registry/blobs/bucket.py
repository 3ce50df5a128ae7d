"""`Bucket`: the connection to a bucket of S3-compatible object storage, and what its failures mean.

What the S3 store (s3.py), its uploads (s3upload.py) and its readers (s3read.py) share of it: where
it is (`Location`, the endpoint and region from the environment), botocore's thread-safe client and
aiobotocore's async one (one per event loop), the threads that send parts, an object's key, and an
S3 error as the store's 503 (`failing`, `missing`).

Every call is bounded (`_bounded`): a bucket that stalls is a 503 after `REGISTRY_BLOBS_TIMEOUT`
seconds (twice that at worst), never a request that hangs.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, ConnectTimeoutError, ReadTimeoutError

from .. import metrics
from ..errors import RegistryError
from .s3codes import Missing, Unavailable

TIMEOUT = 4.0  # seconds a call waits for the bucket (REGISTRY_BLOBS_TIMEOUT)
HEX64 = re.compile(r"[0-9a-f]{64}")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")

_process: tuple[int, Any, ThreadPoolExecutor] | None = None
_process_lock = threading.Lock()


def _shared() -> tuple[Any, ThreadPoolExecutor]:
    """One botocore session (its service model loaded once) and one pool of part senders per process."""
    global _process
    with _process_lock:
        if _process is None or _process[0] != os.getpid():
            import botocore.session

            pool = ThreadPoolExecutor(8, thread_name_prefix="s3-parts")
            _process = (os.getpid(), botocore.session.get_session(), pool)
        return _process[1], _process[2]


@dataclass(frozen=True)
class Location:
    bucket: str
    prefix: str  # "" or ending in "/"

    @classmethod
    def parse(cls, url: str) -> Location:
        """``s3://BUCKET`` or ``s3://BUCKET/PREFIX``; RegistryError (400) saying how to write it if it is
        neither."""
        bucket, _, prefix = url.removeprefix("s3://").partition("/")
        if not url.startswith("s3://") or not _BUCKET.fullmatch(bucket):
            raise RegistryError(f"{url!r} is not an S3 location: write s3://BUCKET or s3://BUCKET/PREFIX "
                                "(a bucket name is 3-63 lowercase letters, digits, dots and hyphens).")
        prefix = "/".join(p for p in prefix.split("/") if p)
        return cls(bucket, prefix + "/" if prefix else "")

    def __str__(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def endpoint_and_region() -> tuple[str | None, str]:
    """From the environment, as the AWS tools read them."""
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or None
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return endpoint, region


class Bucket:
    """One bucket (and prefix) and the clients that reach it. Thread-safe; the endpoint, region and
    credentials are the environment's when it is made."""

    def __init__(self, location: Location, timeout: float = TIMEOUT) -> None:
        self.location = location
        self.endpoint, self.region = endpoint_and_region()
        self.timeout = timeout
        self._lock = threading.Lock()
        self._client: Any = None
        self._pid: int | None = None
        self._aclients: dict[asyncio.AbstractEventLoop, tuple[Any, Any]] = {}

    def _kwargs(self) -> dict[str, Any]:
        from botocore.config import Config

        config = Config(region_name=self.region, signature_version="s3v4",
                        retries={"mode": "standard", "max_attempts": 5},  # (fewer in time: see _bounded)
                        # (a custom endpoint: no DNS name per bucket)
                        s3={"addressing_style": "path"} if self.endpoint else {},
                        max_pool_connections=16, connect_timeout=self.timeout, read_timeout=self.timeout,
                        tcp_keepalive=True,
                        # (our own sha256 checks content: CRC trailers only trip up S3-compatible stores)
                        request_checksum_calculation="when_required", response_checksum_validation="when_required")
        return dict(endpoint_url=self.endpoint, region_name=self.region, config=config)

    def client(self) -> Any:
        """botocore's client, for calls from threads (thread-safe; made again in a forked worker).
        Making it costs no round trip; its calls raise botocore's errors (see `failing`)."""
        with self._lock:
            if self._client is None or self._pid != os.getpid():
                session = _shared()[0]
                with _process_lock:  # (a botocore session is not thread-safe)
                    self._client = session.create_client("s3", **self._kwargs())
                _bounded(self._client.meta.events, self.timeout)
                self._pid = os.getpid()
            return self._client

    @property
    def pool(self) -> ThreadPoolExecutor:
        """The threads that send parts (shared by every bucket of the process)."""
        return _shared()[1]

    async def aclient(self) -> Any:
        """aiobotocore's client for the running event loop (made at its first use, kept until `aclose`)."""
        loop = asyncio.get_running_loop()
        if loop not in self._aclients:
            from aiobotocore.session import get_session

            context = get_session().create_client("s3", **self._kwargs())
            client = await context.__aenter__()
            _bounded(client.meta.events, self.timeout)
            if loop in self._aclients:  # (another request made one meanwhile)
                await context.__aexit__(None, None, None)
            else:
                self._aclients[loop] = (context, client)
        return self._aclients[loop][1]

    async def aclose(self) -> None:
        """Close the running event loop's async client, if it has one."""
        entry = self._aclients.pop(asyncio.get_running_loop(), None)
        if entry is not None:
            await entry[0].__aexit__(None, None, None)

    @contextmanager
    def failing(self, doing: str) -> Iterator[None]:
        """S3 errors in the block as `Unavailable` (503) saying what failed, ``doing`` (a 404 is the
        caller's to catch first, inside the block). Each block is timed, and counted if it fails."""
        try:
            with metrics.blob_call("s3", metrics.operation(doing)):
                yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            raise Unavailable(f"The blob store {self.location} failed {doing}: {error.get('Code', '?')} "
                              f"{error.get('Message', '')}".rstrip() + ". Nothing was changed; try again. If it "
                              "persists, check REGISTRY_BLOBS, AWS_ENDPOINT_URL and the credentials.") from None
        except BotoCoreError as exc:
            silent = (f"it did not answer within {self.timeout:g}s"
                      if isinstance(exc, (ReadTimeoutError, ConnectTimeoutError)) else str(exc))
            raise Unavailable(f"The blob store {self.location} could not be reached {doing} ({silent}). Nothing "
                              "was changed; try again in a moment. If it persists, check that it is up "
                              f"({self.endpoint or 'AWS S3'}), REGISTRY_BLOBS, AWS_ENDPOINT_URL and the "
                              "credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).") from None

    def missing(self, sha256: str, what: str) -> Missing:
        """The 503 for a referenced object the bucket lacks: what it is, and what the operator does."""
        return Missing(f"The content of {what} is missing from the blob store {self.location} (object "
                       f"{self.key(sha256)}): the ledger records it, the bucket doesn't hold it. Nothing is wrong "
                       "with this request; the registry's operator must put it back: if the files were moved to "
                       "the bucket, run `registry blobs migrate --to "
                       f"{str(self.location).rstrip('/')}` again where the old files are (it sends what is missing); "
                       "`registry verify` lists every missing file.")

    def key(self, sha256: str) -> str:
        """The object's key: `<prefix>sha256/<xx>/<sha256>`; ValueError if ``sha256`` is not a hex digest."""
        if not HEX64.fullmatch(sha256):
            raise ValueError(f"not a sha256 hex digest: {sha256!r}")
        return f"{self.location.prefix}sha256/{sha256[:2]}/{sha256}"


def _bounded(events: Any, timeout: float) -> None:
    """Bound every call of a client to answer within twice ``timeout``: each attempt waits at most
    ``timeout`` for the bucket (the client's connect and read timeouts), and botocore retries a
    failed one (a refused connection, a 500, a timeout) only while the retry, its backoff included,
    starts within ``timeout`` of the call's start. So a bucket that stops answering costs one
    ``timeout``; one that fails fast is retried two or three times."""
    def started(context: dict[str, Any], **_: Any) -> None:
        context["registry-started"] = time.monotonic()

    def past_deadline(attempts: int, request_dict: dict[str, Any], **_: Any) -> bool | None:
        began = request_dict.get("context", {}).get("registry-started")
        backoff = min(2 ** (attempts - 1), 20)  # (the most botocore's standard mode waits before the next)
        if began is not None and time.monotonic() - began + backoff > timeout:
            return False  # (the first answer that isn't None decides: no retry)
        return None

    events.register("before-call.s3", started)
    events.register_first("needs-retry.s3", past_deadline)
