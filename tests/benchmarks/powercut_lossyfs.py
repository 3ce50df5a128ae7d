#!/usr/bin/env python3
"""Power cuts under a running registry (lossyfs): do acknowledged uploads survive, whole, and does
`registry verify` pass after recovery? Run by hand, as root (FUSE), never by pytest:

    .venv/bin/python tests/benchmarks/powercut_lossyfs.py [--trial all|NAME,...] [--repeat 5] [--seed 1]
        [--workdir /tmp/powercut] [--startup-syncs 1,3,6,12,25] [--replay-syncs 1,2,4] [--tree DIR]

It installs what it lacks (apt fuse3 libfuse3-dev; /tmp/lossyfs-venv with pyfuse3, to run
/work/shared/tools/lossyfs/lossyfs.py); the registry runs with .venv, from --tree (default: here).
A trial: a fresh SRC (empty, or the seed: a data dir made once by the CLI on real disk), `lossyfs SRC
MNT`, `registry serve --workers 2` on MNT/data, 3 concurrent publishers (legacy uploads as twine
sends them; small and >1 MiB wheels; GETs of .metadata, which fill a cache), a power cut (SIGUSR1,
or lossyfs's --cut-after*), SIGKILL of the server's process group. IMAGE (what survived) is then
copied to real disk, a registry started on it (the journal replay) and checked: every upload
acknowledged with HTTP 200 is on the simple page (PEP 691 JSON) and downloads with its sha256 (else
lost / corrupt); `registry verify` exits 0; /_/health says "ok". WORKDIR/<trial>/ keeps ops.log,
report.json, lossyfs.err, server logs, recovered-verify.txt; failures print what the report and the
op log say of the paths involved.

  start-up       cut after the N-th sync of a first start on an empty data dir, and 1 s after it is ready:
                 recovery must start (bootstrapping again is fine) and verify; an admin token printed
                 before the cut counts as acknowledged and must still work.
  first-uploads  cut right after the 4th acknowledged upload.
  mid-burst      100 uploads (1 in 8 over 1 MiB), cut after a seeded random number of acks; --repeat
                 (the seed fixes when the cut comes, not how the threads interleave: outcomes vary).
  checkpoint     uploads, each followed by a .metadata GET, until the journal passes 1 MiB: /start cuts
                 right after its rename to registry-journal.retired, /done 3 acks after the checkpoint.
  big-upload     the bug report: a small wheel, a >1 MiB one in the same blobs/sha256/XX/ (/meta: XX made
                 by the small one's .metadata cache), 3 small ones, cut. /delay-*: the big wheel in a new
                 XX, its file's, its directory's or the journal's sync held back 0.5 s (lossyfs --delay),
                 the cut while it is pending (the op log tells whether it still was).
  replay-cut     a mid-burst cut (/base); a probe start on its image under lossyfs counts the syncs of a
                 start; for N in --replay-syncs and 5 points over that count: a start on the image under
                 lossyfs cut after its N-th sync (in the replay), recovery on disk, the first run's acks;
                 "as-base": verify finds exactly what it found in /base (the first cut's damage), no more.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from contextlib import suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PY = ROOT / ".venv" / "bin" / "python"
if Path(sys.prefix).resolve() != (ROOT / ".venv").resolve():  # httpx and the test helpers live there
    os.execv(str(PY), [str(PY), __file__, *sys.argv[1:]])
sys.path.insert(0, str(ROOT))
import httpx  # noqa: E402

from tests.support.helpers import free_port, make_wheel  # noqa: E402

LOSSYFS, LVENV = Path("/work/shared/tools/lossyfs/lossyfs.py"), Path("/tmp/lossyfs-venv")
WS, PROJECT, EMAIL = "acme", "burst", "dev@example.com"
BIG = 1_300_000  # payload of a big wheel, stored: the file is over 1 MiB (the journal's COPY_LIMIT)
TREE = ROOT  # the registry source tree that runs (--tree)


def sh(*args, timeout=600, **kw):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=timeout, **kw)


def ensure_setup() -> None:
    if not shutil.which("fusermount3"):
        sh("apt-get", "install", "-y", "fuse3", "libfuse3-dev", check=True)
    if not (LVENV / "bin/python").exists() or sh(LVENV / "bin/python", "-c", "import pyfuse3").returncode:
        sh("python3", "-m", "venv", LVENV, check=True)
        sh(LVENV / "bin/pip", "install", "-q", "pyfuse3", check=True)


def env() -> dict:
    e = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    return {**e, "PYTHONPATH": str(TREE), "REGISTRY_GC_GRACE_SECONDS": "86400", "REGISTRY_LOG_LEVEL": "info"}


def cli(data: Path, *args, check=True):
    p = sh(PY, "-m", "registry", "--data", data, *args, env=env(), timeout=300, cwd=TREE)
    if check and p.returncode:
        raise RuntimeError(f"registry {' '.join(map(str, args))} exited {p.returncode}: {p.stderr[-2000:]}")
    return p


def seed(workdir: Path) -> tuple[Path, str]:
    """SRC with a data dir holding workspace, project, repo, package, user, token: made once, on disk."""
    d = workdir / "seed"
    if not (d / "token").exists():
        shutil.rmtree(d, ignore_errors=True)
        for args in (["init"], ["workspace", "create", WS], ["project", "create", WS, "CORE"],
                     ["repo", "create", f"{WS}/utils", "--project", "CORE"],
                     ["package", "create", WS, PROJECT, "--repo", "utils"],
                     ["user", "create", EMAIL], ["grant", f"{WS}/utils", EMAIL, "write"]):
            cli(d / "src/data", *args)
        (d / "token").write_text(cli(d / "src/data", "token", "create", EMAIL).stdout.strip())
    return d / "src", (d / "token").read_text().strip()


def wait_for(pred, timeout: float, proc=None, step=0.01) -> bool:
    """Until pred() is true; False on timeout, or once `proc` (lossyfs) has exited (cut by itself)."""
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline or proc is not None and proc.poll() is not None:
            return False
        time.sleep(step)
    return True


def healthy(url: str) -> bool:
    with suppress(httpx.HTTPError):
        return httpx.get(f"{url}/_/health", timeout=1).status_code == 200
    return False


class Server:
    """`registry serve` in a session of its own (SIGKILLed whole: the power is gone)."""

    def __init__(self, data: Path, log: Path):
        port = free_port()
        self.log, self.url = log, f"http://127.0.0.1:{port}"
        with open(log, "w") as out:
            self.proc = subprocess.Popen([str(PY), "-m", "registry", "--data", str(data), "serve", "--host",
                                          "127.0.0.1",
                                          "--port", str(port), "--workers", "2"], stdout=out, stderr=subprocess.STDOUT,
                                         env=env(), cwd=TREE, start_new_session=True)

    def ready(self, timeout=90.0) -> bool:
        return wait_for(lambda: self.proc.poll() is not None or healthy(self.url), timeout,
                        step=0.1) and healthy(self.url)

    def kill(self) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with suppress(subprocess.TimeoutExpired):
            self.proc.wait(20)


def wheel(d: Path, version: str, payload=512) -> tuple[Path, str]:
    """A wheel of PROJECT (big ones stored: really over 1 MiB) and its sha256."""
    (out := d / "wheels" / version).mkdir(parents=True, exist_ok=True)
    p = make_wheel(out, PROJECT, version, payload=payload, stored=payload >= BIG)
    return p, hashlib.sha256(p.read_bytes()).hexdigest()


def meta_sha(path: Path) -> str:
    with zipfile.ZipFile(path) as z:
        return hashlib.sha256(z.read(next(n for n in z.namelist() if n.endswith(".dist-info/METADATA")))).hexdigest()


class Publishers:
    """Legacy uploads by 3 threads from a shared list; each acknowledgement (HTTP 200) is recorded,
    and every `meta_every`-th one is followed by a GET of an acknowledged file's .metadata."""

    def __init__(self, url: str, token: str, seed: int):
        self.url, self.auth, self.meta_every, self.threads = url, (EMAIL, token), 2, []
        self.acked, self.refused = [], []  # acked: (filename, sha256, version)
        self.lock, self.stop, self.rng = threading.Lock(), threading.Event(), random.Random(seed)

    def client(self) -> httpx.Client:
        return httpx.Client(auth=self.auth, timeout=60)

    def upload(self, client: httpx.Client, path: Path) -> None:
        data, version = path.read_bytes(), path.name.split("-")[1]
        sha = hashlib.sha256(data).hexdigest()
        form = {":action": "file_upload", "protocol_version": "1", "name": PROJECT, "version": version,
                "filetype": "bdist_wheel", "pyversion": "py3", "metadata_version": "2.1", "sha256_digest": sha}
        try:
            r = client.post(f"{self.url}/{WS}/", data=form,
                            files={"content": (path.name, data, "application/octet-stream")})
        except httpx.HTTPError as exc:
            return self.refused.append(f"{path.name}: {type(exc).__name__}")
        with self.lock:
            if r.status_code != 200:
                return self.refused.append(f"{path.name}: {r.status_code} {r.text[:100]!r}")
            self.acked.append((path.name, sha, version))
            pick = self.rng.choice(self.acked) if len(self.acked) % self.meta_every == 0 else None
        if pick:
            self.metadata(client, *pick)

    def metadata(self, client: httpx.Client, filename: str, sha: str, version: str) -> None:
        with suppress(httpx.HTTPError):
            client.get(f"{self.url}/{WS}/{PROJECT}/{version}/{filename}.metadata")

    def start(self, paths: list[Path]) -> None:
        def run() -> None:
            with self.client() as c:
                while not self.stop.is_set() and (p := next(todo, None)):  # (next() on a list iterator: atomic)
                    self.upload(c, p)
        todo = iter(paths)
        self.threads = [threading.Thread(target=run, daemon=True) for _ in range(3)]
        [t.start() for t in self.threads]

    def running(self) -> bool:
        return any(t.is_alive() for t in self.threads)

    def join(self) -> None:
        self.stop.set()
        [t.join(90) for t in self.threads]


class Trial:
    """One run in WORKDIR/<name>: lossyfs on SRC (None: empty) at mnt, a server on it, a power cut."""

    def __init__(self, name: str, workdir: Path, src: Path | None, token: str, opts=()):
        self.name, self.token, self.opts, self.notes = name, token, list(opts), []
        self.d = workdir / name.replace("/", "_")
        shutil.rmtree(self.d, ignore_errors=True)
        (self.d / "src").mkdir(parents=True)
        self.src, self.mnt, self.image = src or self.d / "src", self.d / "mnt", self.d / "image"
        self.lossy = self.server = self.pub = None

    def mount_and_serve(self, wait_ready=True) -> None:
        self.mnt.mkdir()
        ready, d = self.d / "lossyfs.pid", self.d
        with open(d / "lossyfs.err", "w") as err:
            self.lossy = subprocess.Popen([str(LVENV / "bin/python"), str(LOSSYFS), str(self.src), str(self.mnt),
                                           "--out", str(self.image),
                                           "--ready", str(ready), "--log", str(d / "ops.log"), "--report",
                                           str(d / "report.json"),
                                           *map(str, self.opts)], stdout=err, stderr=err, start_new_session=True)
        if not wait_for(lambda: ready.exists() and ready.read_text().strip(), 60, self.lossy):
            raise RuntimeError(f"lossyfs did not start: {(d / 'lossyfs.err').read_text()[-2000:]}")
        self.server = Server(self.mnt / "data", d / "server.log")
        if wait_ready and not self.server.ready():
            raise RuntimeError(f"the registry did not start on the mount (see {self.server.log})")
        self.pub = Publishers(self.server.url, self.token, seed=sum(map(ord, self.name)))

    def alive(self) -> bool:
        return self.lossy.poll() is None

    def power_cut(self) -> dict:
        """Cut now (nothing, if lossyfs cut by itself), kill the server, wait for the image."""
        if self.alive():
            self.lossy.send_signal(signal.SIGUSR1)
        self.server.kill()
        self.pub and self.pub.join()
        with suppress(subprocess.TimeoutExpired):
            self.lossy.wait(180)
        if not self.image.is_dir():
            raise RuntimeError(f"lossyfs wrote no image (see {self.d / 'lossyfs.err'})")
        report = json.loads((self.d / "report.json").read_text())
        self.notes.append(f"cut {report['trigger']}")
        return report

    def cut_or_started(self, n) -> None:
        """Wait for lossyfs's own --cut-after-syncs N; if the server got up first, cut by hand."""
        wait_for(lambda: not self.alive() or healthy(self.server.url), 90, step=0.05)
        if self.alive() and not wait_for(lambda: not self.alive(), 2):
            self.notes.append(f"fewer than {n} syncs: cut by hand once started")

    def cleanup(self) -> None:
        self.server and self.server.kill()
        self.pub and self.pub.join()
        if self.lossy and self.alive():
            self.lossy.send_signal(signal.SIGTERM)  # unmount, no image
            with suppress(subprocess.TimeoutExpired):
                self.lossy.wait(15)
            self.lossy.kill()
        if f" {self.mnt} " in Path("/proc/self/mounts").read_text():
            sh("fusermount3", "-u", "-z", self.mnt, timeout=30)


def new_row(t: Trial, acked: int, **kw) -> dict:
    return {"trial": t.name, "acked": acked, "lost": 0, "corrupt": 0, "verify": False, "health": "-", "dir": t.d,
            "missing": [], "problems": [], "notes": t.notes, **kw}


def recover(t: Trial, acked: list[tuple[str, str, str]], check=None) -> dict:
    """The image on real disk, a registry started on it (the replay), then what was promised."""
    disk = t.d / "recovered"
    shutil.copytree(t.image, disk, symlinks=True)
    row = new_row(t, len(acked))
    srv = Server(disk / "data", t.d / "recovered-server.log")
    try:
        if not srv.ready():
            row["problems"].append(f"the registry did not start on the recovered data (see {srv.log})")
        else:
            if "Bootstrapped a new registry" in srv.log.read_text():
                t.notes.append("recovery bootstrapped a new registry")
            with httpx.Client(auth=(EMAIL, t.token), timeout=60) as c:
                page = c.get(f"{srv.url}/{WS}/{PROJECT}/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
                files = {f["filename"] for f in page.json()["files"]} if page.status_code == 200 else set()
                for filename, sha, version in acked:
                    r = c.get(f"{srv.url}/{WS}/{PROJECT}/{version}/{filename}") if filename in files else None
                    if r is None:
                        row["lost"] += 1
                        row["missing"].append((filename, sha, "lost"))
                    elif r.status_code != 200 or hashlib.sha256(r.content).hexdigest() != sha:
                        row["corrupt"] += 1
                        row["missing"].append((filename, sha, f"corrupt ({r.status_code}, {len(r.content)} bytes)"))
            row["problems"] += check(srv.url) if check else []
            h = httpx.get(f"{srv.url}/_/health", timeout=10)
            row["health"] = h.json().get("status", "?") if h.status_code == 200 else str(h.status_code)
            t.notes.append(f"health {h.text.strip()[:160]}")
        v = cli(disk / "data", "verify", check=False)
        (t.d / "recovered-verify.txt").write_text(v.stdout + v.stderr)
        row["verify"], lines = v.returncode == 0, [ln for ln in (v.stdout + v.stderr).splitlines() if ln.strip()]
        t.notes += [f"verify {ln}" for ln in lines if ln.startswith("note")]
        row["problems"] += [] if row["verify"] else lines
    finally:
        srv.kill()
    return row


def explain(row: dict) -> None:
    """For a failure: what lossyfs's report and op log say about the paths involved."""
    print(f"   work dir {row['dir']} (ops.log, report.json, lossyfs.err, *server.log, recovered-verify.txt)")
    [print(f"   problem: {p}") for p in row["problems"][:10]]
    [print(f"   {how}: {fn} (sha256 {sha[:12]}..., in blobs/sha256/{sha[:2]}/)") for fn, sha, how in row["missing"][:6]]
    with suppress(OSError, ValueError):
        report = json.loads((row["dir"] / "report.json").read_text())
        log = (row["dir"] / "ops.log").read_text().splitlines()
        print(f"   report: {report['trigger']}; losses {report['losses_by_kind']}")
        shas = [sha for _, sha, _ in row["missing"]] + re.findall(r"blob ([0-9a-f]{64})", "\n".join(row["problems"]))
        for sha in list(dict.fromkeys(shas))[:4]:  # the blob, its fan-out directory: lost how, synced when
            fan, short = f"/data/blobs/sha256/{sha[:2]}", lambda s, sha=sha: s.replace(sha, sha[:12] + "...")
            for rec in [r for r in report["lost"] if r["path"] == fan or sha in r["path"]]:
                print(f"   report: {short(rec['path'])}: {rec['loss']} "
                      + " ".join(f"{k}={v}" for k, v in rec.items() if k not in ("path", "loss")))
            [print(f"   log: {short(ln)}")
             for ln in [ln for ln in log if sha in ln or f" {fan} " in ln or ln.endswith(f" {fan}")][:6]]
            if not any(f"fsyncdir {fan} " in ln for ln in log):
                print(f"   log: no fsyncdir of {fan} at all")
        # root causes
        for rec in [] if shas else [r for r in report["lost"] if "parent not durable" not in r["loss"]][:8]:
            print(f"   report: {rec['path']}: {rec['loss']} "
                  + " ".join(f"{k}={v}" for k, v in rec.items() if k not in ("path", "loss")))
            [print(f"   log: {ln}")
             for ln in [ln for ln in log if f" {rec['path']} " in ln or ln.endswith(f" {rec['path']}")][:3]]


def run_trial(t: Trial, drive, acked=None, check=None) -> dict:
    try:
        drive(t)
        return recover(t, acked if acked is not None else (t.pub.acked if t.pub else []), check)
    except Exception as exc:  # the harness's own trouble: a row saying so, the files kept
        return new_row(t, len(t.pub.acked) if t.pub else 0, lost="?", corrupt="?",
                       problems=[f"harness: {type(exc).__name__}: {exc}"])
    finally:
        t.cleanup()


# --- the trials ----------------------------------------------------------------------------------

def startup(args, token, src):
    rows = []
    for n in [*args.startup_syncs, "ready"]:
        t = Trial(f"start-up/{n if n == 'ready' else f'syncs={n}'}", args.workdir, None, token,
                  [] if n == "ready" else ["--cut-after-syncs", n])
        printed = []

        def drive(t, n=n, printed=printed):
            t.mount_and_serve(wait_ready=False)
            if n != "ready":
                t.cut_or_started(n)
            elif t.server.ready():
                time.sleep(1)
            t.power_cut()
            m = re.search(r"admin API token \(shown only this once\): (\S+)", t.server.log.read_text())
            printed.extend([m.group(1)] if m else [])

        def check(url, printed=printed):  # the one promise of a first start: the token it printed
            r = httpx.get(f"{url}/default/", auth=("admin@localhost", printed[0]), timeout=10) if printed else None
            if r and r.status_code != 200:
                return [f"the admin token printed before the cut now gets {r.status_code}"]
            return []

        row = run_trial(t, drive, check=check)
        row["acked"] = len(printed)
        if row["lost"] != "?":
            row["lost"] = sum("admin token printed" in p for p in row["problems"])
        rows.append(row)
    return rows


def burst(t: Trial, paths: list[Path], acks: int, extra=0.0):
    """3 publishers on `paths`; the power cut after `acks` acknowledgements (+ `extra` seconds)."""
    t.mount_and_serve()
    t.pub.start(paths)
    if not wait_for(lambda: len(t.pub.acked) >= acks or not t.pub.running(), 300, t.lossy) or len(t.pub.acked) < acks:
        t.notes.append(f"only {len(t.pub.acked)} acks when cut (refused: {t.pub.refused[:3]})")
    time.sleep(extra)
    t.power_cut()


def burst_wheels(d: Path, n=100, big_every=8):
    return [wheel(d, f"1.0.{i}", BIG if i % big_every == big_every - 1 else 512)[0] for i in range(n)]


def first_uploads(args, token, src):
    t = Trial("first-uploads", args.workdir, src, token)
    return [run_trial(t, lambda t: burst(t, burst_wheels(t.d, 12, 3), 4))]


def mid_burst(args, token, src, i, name="mid-burst"):
    rng = random.Random(args.seed * 1000 + i)
    t = Trial(f"{name}/{i}", args.workdir, src, token)
    k, extra = rng.randint(5, 90), rng.uniform(0, 0.05)
    t.notes.append(f"cut after {k} acks + {extra * 1000:.0f} ms")
    return t, run_trial(t, lambda t: burst(t, burst_wheels(t.d), k, extra))


def checkpoint(args, token, src):
    rows = []
    for variant in ("start", "done"):
        t = Trial(f"checkpoint/{variant}", args.workdir, src, token,
                  ["--cut-after", "rename", r"/registry-journal\.retired$"] if variant == "start" else [])
        paths = [wheel(t.d, f"3.0.{i}", 16_000)[0] for i in range(160)]  # ~20 KB journal records

        def drive(t, variant=variant, paths=paths):
            t.mount_and_serve()
            t.pub.meta_every = 1
            t.pub.start(paths)
            journal, seen = t.mnt / "data/ledger.git/registry-journal", {"size": 0, "shrank": False}

            def checkpointed():  # the journal shrank (retired, a new one begun) and the retired one is gone
                size = journal.stat().st_size if journal.exists() else 0
                seen["shrank"], seen["size"] = seen["shrank"] or size < seen["size"], size
                return seen["shrank"] and not journal.with_name("registry-journal.retired").exists()
            if variant == "start":
                wait_for(lambda: not t.pub.running(), 300, t.lossy, 0.05)
            elif wait_for(lambda: checkpointed() or not t.pub.running(), 300, t.lossy, 0.005) and t.pub.running():
                n = len(t.pub.acked)
                wait_for(lambda: len(t.pub.acked) >= n + 3 or not t.pub.running(), 60, t.lossy)
            if (t.alive() if variant == "start" else not seen["shrank"]):
                t.notes.append("no checkpoint seen")
            t.power_cut()
        rows.append(run_trial(t, drive))
    return rows


def big_upload(args, token, src):
    rows = []
    for variant in ("shared-dir", "meta", "delay-file", "delay-dir", "delay-journal"):
        t = Trial(f"big-upload/{variant}", args.workdir, src, token)
        big, bsha = wheel(t.d, "2.0.0", BIG)
        xx, target = bsha[:2], f"/data/blobs/sha256/{bsha[:2]}/{bsha}"
        if variant == "shared-dir":  # a small wheel whose blob lands in the big one's fan-out dir
            small = next(p for i in range(100000) if (p := wheel(t.d, f"1.0.{i}"))[1][:2] == xx)[0]
        else:  # meta: one whose core metadata (cached on GET) lands there; delays: a fan-out dir of its own
            small = next(p for i in range(100000) if (p := wheel(t.d, f"1.0.{i}"))[1][:2] != xx
                         and (meta_sha(p[0])[:2] == xx) == (variant == "meta"))[0]
        after = [wheel(t.d, f"2.1.{i}")[0] for i in range(3)]
        # (a big file may be fsynced where it was staged, before its rename, or at its address)
        t.opts = {"delay-file": ["--delay", "fsync", rf"(/blobs/staging/incoming-\w+|{re.escape(target)})$", "0.5"],
                  "delay-dir": ["--delay", "fsyncdir", re.escape(target[:-65]) + "$", "0.5"],
                  "delay-journal": ["--delay", "fsync", r"/ledger\.git/registry-journal$", "0.5"]}.get(variant, [])
        t.notes.append(f"big {big.name} in blobs/sha256/{xx}/ after {small.name}")

        def drive(t, variant=variant, small=small, big=big, after=after, target=target):
            t.mount_and_serve()
            with t.pub.client() as c:
                t.pub.upload(c, small)
                if variant == "meta":
                    t.pub.metadata(c, *t.pub.acked[-1])
                if not variant.startswith("delay"):
                    [t.pub.upload(c, p) for p in [big, *after]]
                else:  # the big upload in the background; the cut while its held-back sync is pending
                    threading.Thread(target=t.pub.upload, args=(t.pub.client(), big), daemon=True).start()
                    size = big.stat().st_size

                    def landed():  # the big file whole, staged or at its address: its syncs come next
                        with suppress(OSError):
                            for p in [Path(f"{t.mnt}{target}"), *(t.mnt / "data/blobs/staging").iterdir()]:
                                with suppress(OSError):
                                    if p.stat().st_size == size:
                                        return True
                        return False
                    if wait_for(landed, 60, t.lossy, 0.002):
                        time.sleep(0.2)
            t.power_cut()
            if variant.startswith("delay"):  # from the op log: was the held-back sync still pending?
                log = (t.d / "ops.log").read_text().splitlines()
                i = max([i for i, ln in enumerate(log) if " DELAY " in ln], default=None)
                op, path = log[i].split()[3:5] if i is not None else ("no sync", "was")
                done = i is None or any(ln.split()[2:4] == [op, path] for ln in log[i + 1:])
                t.notes.append(f"held-back {op} {path} {'had completed' if done else 'still pending'} at the cut")
        rows.append(run_trial(t, drive))
    return rows


def replay_cut(args, token, src):
    base, row = mid_burst(args, token, src, 0, "replay-cut")
    row["trial"], rows, acked = "replay-cut/base", [row], base.pub.acked if base.pub else []
    probe = Trial("replay-cut/probe", args.workdir, base.image, token)
    try:  # how many syncs a start on this image makes, the replay's included
        probe.mount_and_serve()
        counts = probe.power_cut()["counts"]
        total = counts.get("fsync", 0) + counts.get("fsyncdir", 0)
    finally:
        probe.cleanup()
    row["notes"].append(f"a start on the image makes {total} syncs")
    for n in sorted({*args.replay_syncs, *(max(1, round(total * f)) for f in (0.2, 0.4, 0.6, 0.8, 0.95))}):
        t = Trial(f"replay-cut/syncs={n}", args.workdir, base.image, token, ["--cut-after-syncs", n])

        def drive(t, n=n):
            t.mount_and_serve(wait_ready=False)
            t.pub = None
            t.cut_or_started(n)
            t.power_cut()
        rows.append(r := run_trial(t, drive, acked=acked))
        if row["problems"] and r["problems"] == row["problems"] and r["lost"] == r["corrupt"] == 0:
            r["inherited"] = True  # nothing new: the damage the first cut did
            r["notes"].append("exactly replay-cut/base's verify problems: the first cut's, not the replay's")
    return rows


def main() -> int:
    global TREE
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--trial", default="all", help="all, or a comma-separated list of: start-up, first-uploads, "
                    "mid-burst, checkpoint, big-upload, replay-cut")
    ints = lambda s: [int(x) for x in s.split(",") if x]  # noqa: E731
    for flag, kw in (("--repeat", dict(type=int, default=5, help="mid-burst runs")),
                     ("--seed", dict(type=int, default=1)),
                     ("--workdir", dict(type=Path, default=Path("/tmp/powercut"))),
                     ("--startup-syncs", dict(type=ints, default=[1, 3, 6, 12, 25])),
                     ("--replay-syncs", dict(type=ints, default=[1, 2, 4])),
                     ("--tree", dict(type=Path, default=ROOT,
                                     help="the registry source tree to run (default: this one)"))):
        ap.add_argument(flag, **kw)
    args = ap.parse_args()
    TREE, args.workdir = args.tree.resolve(), args.workdir.resolve()
    trials = {"start-up": startup, "first-uploads": first_uploads, "checkpoint": checkpoint, "big-upload": big_upload,
              "replay-cut": replay_cut, "mid-burst": lambda a, tok,
              s: [mid_burst(a, tok, s, i)[1] for i in range(a.repeat)]}
    wanted = ["start-up", "first-uploads", "mid-burst", "checkpoint", "big-upload", "replay-cut"]
    wanted = wanted if args.trial == "all" else args.trial.split(",")
    if set(wanted) - set(trials):
        ap.error(f"unknown trial(s): {sorted(set(wanted) - set(trials))}")
    if os.geteuid() != 0:
        sys.exit("run as root (FUSE)")
    ensure_setup()
    args.workdir.mkdir(parents=True, exist_ok=True)
    src, token = seed(args.workdir)
    rows = []
    for name in wanted:
        for r in trials[name](args, token, src):
            r["ok"] = r["lost"] == r["corrupt"] == 0 and r["verify"] and r["health"] == "ok" and not r["problems"]
            r["result"] = "pass" if r["ok"] else "as-base" if r.get("inherited") else "FAIL"
            print(f"{r['result'].upper()} {r['trial']}: acked {r['acked']}, lost {r['lost']}, corrupt {r['corrupt']}, "
                  f"verify {'ok' if r['verify'] else 'FAILED'}; {'; '.join(r['notes'])}", flush=True)
            if r["result"] == "FAIL":
                explain(r)
            rows.append(r)
    print(f"\n{'trial':26} {'acked':>5} {'lost':>5} {'corrupt':>7}  verify  health   result")
    [print(f"{r['trial']:26} {r['acked']:>5} {r['lost']:>5} {r['corrupt']:>7}  {'ok' if r['verify'] else 'FAIL':6}  "
           f"{r['health']:7}  {r['result']}") for r in rows]
    count = {k: sum(r["result"] == k for r in rows) for k in ("pass", "FAIL", "as-base")}
    print(f"\n{count['pass']} passed, {count['FAIL']} failed, "
          f"{count['as-base']} with only the first cut's damage (replay-cut); "
          f"work dirs under {args.workdir}")
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
