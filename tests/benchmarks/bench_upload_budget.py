"""CPU per upload byte (run by hand): python tests/benchmarks/bench_upload_budget.py [--expand-mib 2000]

Decompression bombs uploaded over real HTTP to `registry serve --workers 1` on 127.0.0.1, each as
the legacy upload form twine sends (fields first, then the file), once by a user with no role on
the package (a writer of another repository) and once by a writer of it. For each upload: the
answer's status and first words, and
the server's CPU seconds (user + system of the server's whole process tree, from /proc/<pid>/stat
before and after), in all and per MiB uploaded. The bar: a refusal for permission costs about what
receiving the bytes costs, and no upload costs more than a bounded multiple of its size.

The bombs: a .tar.gz sdist whose PKG-INFO comes after --expand-mib of zeros (as hatchling puts
PKG-INFO last); a .zip sdist and a wheel whose metadata file expands ~1000x to 10 MiB; a .tar.gz
with 200,000 empty members before its PKG-INFO.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import hashlib
import io
import os
import shutil
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

import httpx
from _common import basic, registry_cli, start_server

NAME, VERSION = "bomb-pkg", "1.0"
TICKS = os.sysconf("SC_CLK_TCK")


def pkg_info(padding: int = 0) -> bytes:
    head = f"Metadata-Version: 2.1\nName: {NAME}\nVersion: {VERSION}\nSummary: a bomb\n\n".encode()
    return head + b" " * padding  # (the padding is the description: it compresses ~1000x)


class Zeros(io.RawIOBase):
    def __init__(self, size: int) -> None:
        self.left = size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        n = min(len(buffer), self.left)
        buffer[:n] = bytes(n)
        self.left -= n
        return n


def tar_bomb(out: Path, expand: int) -> Path:
    path = out / f"bomb_pkg-{VERSION}.tar.gz"
    with gzip.open(path, "wb", compresslevel=9) as gz, tarfile.open(fileobj=gz, mode="w|") as tf:
        info = tarfile.TarInfo(f"bomb_pkg-{VERSION}/zeros.bin")
        info.size = expand
        tf.addfile(info, io.BufferedReader(Zeros(expand), 2**20))
        data = pkg_info()
        info = tarfile.TarInfo(f"bomb_pkg-{VERSION}/PKG-INFO")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return path


def members_bomb(out: Path, count: int = 200_000) -> Path:
    path = out / f"bomb_pkg-{VERSION}.tar.gz"
    with gzip.open(path, "wb", compresslevel=9) as gz, tarfile.open(fileobj=gz, mode="w|") as tf:
        for i in range(count):
            tf.addfile(tarfile.TarInfo(f"bomb_pkg-{VERSION}/e{i}"), io.BytesIO(b""))
        data = pkg_info()
        info = tarfile.TarInfo(f"bomb_pkg-{VERSION}/PKG-INFO")
        info.size = len(data)
        tf.addfile(info, io.BytesIO(data))
    return path


def zip_sdist_bomb(out: Path) -> Path:
    path = out / f"bomb_pkg-{VERSION}.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr(f"bomb_pkg-{VERSION}/PKG-INFO", pkg_info(10 * 2**20 - 200))
    return path


def wheel_bomb(out: Path) -> Path:
    path = out / f"bomb_pkg-{VERSION}-py3-none-any.whl"
    dist_info = f"bomb_pkg-{VERSION}.dist-info"
    files = {f"{dist_info}/METADATA": pkg_info(10 * 2**20 - 200),
             f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    record = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for member, data in files.items():
            zf.writestr(member, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{member},sha256={digest},{len(data)}")
        zf.writestr(f"{dist_info}/RECORD", "\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n")
    return path


def tree_cpu(root: int) -> float:
    """User + system CPU seconds of ``root`` and every process under it (granian's workers)."""
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
            for task in Path(f"/proc/{pid}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
    return total / TICKS


def upload(url: str, auth: str, path: Path) -> tuple[int, str]:
    data = path.read_bytes()
    sdist = not path.name.endswith(".whl")
    fields = {":action": "file_upload", "protocol_version": "1", "metadata_version": "2.1", "name": NAME,
              "version": VERSION, "filetype": "sdist" if sdist else "bdist_wheel",
              "pyversion": "source" if sdist else "py3", "sha256_digest": hashlib.sha256(data).hexdigest()}
    answer = httpx.post(url, data=fields, files={"content": (path.name, data, "application/octet-stream")},
                        headers={"authorization": auth}, timeout=600)
    return answer.status_code, answer.text.strip()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--expand-mib", type=int, default=2000, help="the .tar.gz bomb's zeros, in MiB")
    parser.add_argument("--rounds", type=int, default=5, help="uploads of each bomb by each user (their mean is shown)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(dir=os.environ.get("BENCH_DIR")))
    print(f"building the bombs ({args.expand_mib} MiB of zeros to compress)...", flush=True)
    bombs = {}
    for label, make in [("tar.gz sdist, PKG-INFO after the zeros", lambda d: tar_bomb(d, args.expand_mib * 2**20)),
                        ("tar.gz sdist, 200,000 empty members", members_bomb),
                        ("zip sdist, 10 MiB PKG-INFO", zip_sdist_bomb),
                        ("wheel, 10 MiB METADATA", wheel_bomb)]:
        out = tmp / "bombs" / str(len(bombs))
        out.mkdir(parents=True)
        bombs[label] = make(out)
    live = start_server(tmp / "data", workers=1)
    try:
        registry_cli(live.data, "package", "create", "default", NAME, "--repo", "packages")
        registry_cli(live.data, "repo", "create", "default/elsewhere", "--project", "MAIN")
        people = {}
        # the stranger writes to another repository (so sees the workspace) and has no role on the package's
        for who, repo in [("stranger@example.com", "elsewhere"), ("writer@example.com", "packages")]:
            registry_cli(live.data, "user", "create", who)
            registry_cli(live.data, "grant", f"default/{repo}", who, "write")
            people[who.split("@")[0]] = basic(who, registry_cli(live.data, "token", "create", who))
        print(f"{'upload':<42} {'by':<9} {'MiB':>5} {'CPU s':>7} {'CPU ms/MiB':>10}  answer")
        for label, path in bombs.items():
            mib = path.stat().st_size / 2**20
            for who, auth in people.items():
                before, answer = tree_cpu(live.process.pid), ""
                for _ in range(args.rounds):  # (/proc counts 10 ms ticks: the mean of several is finer)
                    status, text = upload(f"{live.url}/default/", auth, path)
                    answer = f"{status} {text[:90]}"
                time.sleep(0.2)  # (a refusal is sent before the worker's last bookkeeping)
                cost = (tree_cpu(live.process.pid) - before) / args.rounds
                print(f"{label:<42} {who:<9} {mib:5.2f} {cost:7.3f} {1000 * cost / mib:10.1f}  {answer}", flush=True)
    finally:
        live.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
