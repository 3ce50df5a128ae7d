"""The blob store's faults get a prompt, clear answer (issue 22, items 1, 5 and 6), with real processes.

- A bucket that stalls (SeaweedFS stopped with SIGSTOP) or dies (SIGKILL) while uploads, downloads,
  `.metadata` requests and writes that never touch it are made: each request is answered within
  DEADLINE, a refusal is a 503 that names the blob store and says nothing was changed; a write that
  needs no bucket (a yank, a new package) is answered as it is without a stall; once the bucket is
  back, everything that was acknowledged is there, byte for byte, and `registry verify` is clean.
- A small filesystem (a tmpfs of a few MiB) under the data directory, filled by concurrent uploads:
  every answer is a 200 or a 507 that names the disk, never a 500; reads go on; `/_/health` says so;
  once space is freed, uploads work again and `registry verify` is clean. Without a floor
  (`REGISTRY_MIN_FREE_BYTES=0`) the disk really fills (ENOSPC): still 507s, and nothing half-written.
- A server started on a bucket that misses files (restarted on it before the last `blobs migrate`):
  `/_/health` says how many, a download of one is a 503 that says what to do, `verify` names it.

Each test starts its own SeaweedFS (this module's), so stopping it breaks no other test.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.helpers import make_wheel, new_team, start_server
from tests.support.seaweed import Seaweed
from tests.support.world import upload_form

DEADLINE = 10.0  # seconds: the longest a request may wait on a stalled or dead bucket (issue 22's bar)
QUICK = 3.0  # seconds: a write that needs no bucket, whatever the bucket does (unloaded: some ms)
CLI_START = 5.0  # seconds a `registry` command may take to start (imports) on a loaded machine
MIB = 2**20

pytestmark = [pytest.mark.e2e, pytest.mark.s3]  # real servers on a SeaweedFS of its own


@pytest.fixture(scope="module")
def bucket(tmp_path_factory):
    """A SeaweedFS of this module's own: the tests stop and kill it."""
    server = Seaweed(tmp_path_factory.mktemp("own-seaweed")).start()
    yield server
    server.stop()


class Client:
    """A registry served by `registry serve`, as a team with a package sees it."""

    def __init__(self, live, name: str) -> None:
        self.live, self.name = live, name
        self.team = new_team(live)
        live.cli("package", "create", "default", name, "--repo", self.team["repo"])
        self.auth = (self.team["email"], self.team["token"])
        self.published: dict[str, bytes] = {}  # every file a 200 acknowledged, by its path

    def upload(self, wheel: Path, timeout: float = 3 * DEADLINE) -> tuple[int, str, float]:
        fields, files = upload_form(wheel)
        started = time.monotonic()
        r = httpx.post(self.live.index(), data=fields, files=files, auth=self.auth, timeout=timeout)
        took = time.monotonic() - started
        if r.status_code == 200:
            self.published[self.url(wheel).removeprefix(self.live.url)] = wheel.read_bytes()
        return r.status_code, r.text, took

    def url(self, wheel: Path) -> str:
        version = wheel.name.split("-")[1]
        return f"{self.live.url}/default/{self.name}/{version}/{wheel.name}"

    def get(self, url: str, **kwargs) -> tuple[httpx.Response, float]:
        started = time.monotonic()
        r = httpx.get(url, auth=self.auth, timeout=3 * DEADLINE, **kwargs)
        return r, time.monotonic() - started

    def yank(self, version: str, undo: bool = False) -> tuple[int, float]:
        url = f"{self.live.url}/api/workspaces/default/packages/pypi/{self.name}/versions/{version}/yank"
        started = time.monotonic()
        r = httpx.request("DELETE" if undo else "POST", url, auth=self.auth, timeout=3 * DEADLINE,
                          json=None if undo else {"reason": "fault test"})
        return r.status_code, time.monotonic() - started

    def create_package(self, name: str) -> tuple[int, float]:
        started = time.monotonic()
        r = httpx.post(f"{self.live.url}/api/workspaces/default/packages", auth=(self.live.admin, self.live.token),
                       json={"name": name, "repository": self.team["repo"]}, timeout=3 * DEADLINE)
        return r.status_code, time.monotonic() - started

    def version_exists(self, version: str) -> bool:
        url = f"{self.live.url}/api/workspaces/default/packages/pypi/{self.name}/versions/{version}"
        return httpx.get(url, auth=self.auth, timeout=3 * DEADLINE).status_code == 200

    def all_there(self) -> None:
        """Everything a 200 acknowledged downloads whole, and `registry verify` is clean."""
        for path, data in self.published.items():
            r, _ = self.get(self.live.url + path)
            assert r.status_code == 200 and r.content == data, (path, r.status_code, r.text[:300])
        verify = self.live.cli("verify", check=False)
        assert verify.returncode == 0, verify.stdout + verify.stderr


def blob_store_refusal(status: int, text: str, took: float) -> None:
    assert took < DEADLINE, f"answered after {took:.1f}s: {status} {text[:300]}"
    assert status == 503, text
    assert "blob store" in text and "Nothing was changed" in text and "try again" in text.lower(), text


def wheels(tmp_path: Path, name: str, version: str, size: int) -> Path:
    out = tmp_path / f"w-{uuid.uuid4().hex[:8]}"
    out.mkdir()
    return make_wheel(out, name, version, payload=size, stored=True)


# --- a stalled or dead bucket --------------------------------------------------------------------


@pytest.fixture
def on_bucket(bucket, tmp_path):
    live = start_server(tmp_path / "data", workers=2, env=bucket.env(), blobs=bucket.location())
    yield Client(live, f"faulty{uuid.uuid4().hex[:6]}")
    bucket.signal(signal.SIGCONT)
    live.stop()


def test_a_stalled_bucket_is_a_prompt_503_and_writes_without_it_go_on(bucket, on_bucket, tmp_path):
    c, name = on_bucket, on_bucket.name
    small, big = wheels(tmp_path, name, "1.0", 4000), wheels(tmp_path, name, "1.1", 14 * MIB)
    for wheel in (small, big):
        assert c.upload(wheel)[0] == 200
    c.yank("1.0")
    c.yank("1.0", undo=True)
    usual = max(c.yank("1.0")[1], c.yank("1.0", undo=True)[1])

    answers: dict[str, tuple] = {}
    bucket.signal(signal.SIGSTOP)
    try:
        with ThreadPoolExecutor(8) as pool:  # uploads and downloads stuck on the bucket, all at once
            stuck = {
                "small upload": pool.submit(c.upload, wheels(tmp_path, name, "2.0", 4000)),
                "big upload": pool.submit(c.upload, wheels(tmp_path, name, "2.1", 14 * MIB)),
                "download": pool.submit(c.get, c.url(small)),
                "range": pool.submit(c.get, c.url(big), headers={"range": "bytes=100-199"}),
                "metadata": pool.submit(c.get, c.url(big) + ".metadata"),  # (never asked for: not cached)
            }
            time.sleep(1.0)  # (they are waiting on the bucket now)
            answers["yank"] = c.yank("1.1")
            answers["new package"] = c.create_package(f"{name}-other")
            head = httpx.head(c.url(small), auth=c.auth, timeout=DEADLINE)  # (answered from the ledger)
            health = httpx.get(f"{c.live.url}/_/health", timeout=DEADLINE)
            for what, future in stuck.items():
                answers[what] = future.result()
        for command in ("verify", "gc"):  # (the CLI's walks of the bucket are bounded the same way)
            started = time.monotonic()
            done = c.live.cli(command, check=False)
            answers[command] = (done.returncode, done.stdout + done.stderr, time.monotonic() - started)
    finally:
        bucket.signal(signal.SIGCONT)
    print(f"\nstalled bucket: yank {answers['yank'][1]:.2f}s (without a stall {usual:.2f}s), new package "
          f"{answers['new package'][1]:.2f}s; " + ", ".join(
              f"{what} {a[-1]:.2f}s" for what, a in answers.items() if what not in ("yank", "new package")))

    assert answers["yank"][0] == 200 and answers["yank"][1] < QUICK, answers["yank"]
    assert answers["new package"][0] == 201 and answers["new package"][1] < QUICK, answers["new package"]
    assert head.status_code == 200 and health.status_code == 200
    for what in ("small upload", "big upload"):
        blob_store_refusal(*answers[what])
    for what in ("download", "range", "metadata"):
        r, took = answers[what]
        blob_store_refusal(r.status_code, r.text, took)
    assert not c.version_exists("2.0") and not c.version_exists("2.1")  # (refused: nothing was changed)
    for command in ("verify", "gc"):
        code, said, took = answers[command]
        assert code == 1 and "blob store" in said and took < DEADLINE + CLI_START, (command, took, said)

    for version, size in (("2.0", 4000), ("2.1", 14 * MIB)):  # back: the same uploads go through
        assert c.upload(wheels(tmp_path, name, version, size))[0] == 200
    c.all_there()


def test_a_bucket_that_stalls_while_an_upload_streams_refuses_it_promptly(bucket, on_bucket, tmp_path):
    """Stopped while a big upload's parts are on their way: the upload is refused within DEADLINE of
    the stall (not of its end), and a yank meanwhile is answered at once."""
    c = on_bucket
    wheel = wheels(tmp_path, c.name, "3.0", 24 * MIB)
    assert c.upload(wheels(tmp_path, c.name, "1.0", 4000))[0] == 200
    fields, files = upload_form(wheel)
    boundary = uuid.uuid4().hex
    head = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                    for k, values in fields.items() for v in (values if isinstance(values, list) else [values]))
    head += (f'--{boundary}\r\nContent-Disposition: form-data; name="content"; filename="{wheel.name}"\r\n'
             "Content-Type: application/octet-stream\r\n\r\n").encode()
    data, halfway, go = wheel.read_bytes(), threading.Event(), threading.Event()

    def body():
        yield head
        for i in range(0, len(data) // 2, MIB):
            yield data[i:min(i + MIB, len(data) // 2)]
        halfway.set()
        go.wait(30)
        for i in range(len(data) // 2, len(data), MIB):
            yield data[i:i + MIB]
        yield f"\r\n--{boundary}--\r\n".encode()

    def send():
        try:
            r = httpx.post(c.live.index(), content=body(), auth=c.auth, timeout=3 * DEADLINE,
                           headers={"content-type": f"multipart/form-data; boundary={boundary}"})
            return r.status_code, r.text, time.monotonic()
        except httpx.HTTPError as exc:
            return 0, f"{type(exc).__name__}: {exc}", time.monotonic()

    with ThreadPoolExecutor(1) as pool:
        upload = pool.submit(send)
        assert halfway.wait(30)
        time.sleep(0.5)  # (its first parts are in the bucket's hands)
        bucket.signal(signal.SIGSTOP)
        stalled = time.monotonic()
        go.set()
        try:
            time.sleep(0.5)
            yank = c.yank("1.0")
            status, text, ended = upload.result()
        finally:
            bucket.signal(signal.SIGCONT)
    print(f"\nstall mid-upload: refused {ended - stalled:.2f}s after the stall; yank meanwhile {yank[1]:.2f}s")
    assert yank[0] == 200 and yank[1] < QUICK, yank
    blob_store_refusal(status, text, ended - stalled)
    assert not c.version_exists("3.0")
    c.all_there()


def test_a_dead_bucket_is_a_prompt_503_and_nothing_acknowledged_is_lost(bucket, on_bucket, tmp_path):
    c, name = on_bucket, on_bucket.name
    small, big = wheels(tmp_path, name, "1.0", 4000), wheels(tmp_path, name, "1.1", 9 * MIB)
    for wheel in (small, big):
        assert c.upload(wheel)[0] == 200
    bucket.kill()
    try:
        answers = {"small upload": c.upload(wheels(tmp_path, name, "2.0", 4000)),
                   "big upload": c.upload(wheels(tmp_path, name, "2.1", 9 * MIB))}
        r, took = c.get(c.url(small))
        answers["download"] = (r.status_code, r.text, took)
        r, took = c.get(c.url(big) + ".metadata")
        answers["metadata"] = (r.status_code, r.text, took)
        yank = c.yank("1.0")
    finally:
        bucket.start()
    print("\ndead bucket: " + ", ".join(f"{what} {a[-1]:.2f}s" for what, a in answers.items())
          + f", yank {yank[1]:.2f}s")
    for answer in answers.values():
        blob_store_refusal(*answer)
    assert yank[0] == 200 and yank[1] < QUICK
    assert c.upload(wheels(tmp_path, name, "2.0", 4000))[0] == 200
    c.all_there()


# --- a full disk ---------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A filesystem of 24 MiB of its own (a tmpfs: mounting one takes root), for a data directory
    (the server's log goes beside it, where there is room)."""
    where = tmp_path / "disk"
    where.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=24m", "tmpfs", str(where)],
                                           capture_output=True).returncode != 0:
        pytest.skip("mounting a small filesystem takes root (mount -t tmpfs)")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fill(path: Path, leave: int) -> None:
    """A file that takes all but ``leave`` bytes of ``path``'s filesystem, or all there is when the
    registry's own background work (the history index's catch-up) took some of that room between
    the measure and the writes: a fuller disk than asked is still a full disk to test against."""
    with open(path, "wb", buffering=0) as fh:  # (unbuffered: nothing left over to fail again on close)
        left = free_bytes(path.parent) - leave
        try:
            while left > 0:
                left -= fh.write(b"\0" * min(left, MIB))
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise


def full_disk_refusal(status: int, text: str) -> None:
    assert status == 507, text
    assert "disk" in text and "free" in text and "Nothing was changed" in text, text


@pytest.mark.parametrize("floor", [4 * MIB, 0], ids=["below-the-floor", "enospc"])
def test_a_full_disk_is_a_507_reads_go_on_and_freeing_space_heals(small_disk, tmp_path, floor):
    floor_env = {"REGISTRY_MIN_FREE_BYTES": str(floor)}  # (the server's and its CLI's)
    live = start_server(small_disk, workers=2, env=floor_env)
    try:
        c = Client(live, f"filler{uuid.uuid4().hex[:6]}")
        first = wheels(tmp_path, c.name, "0.1", 4000)
        assert c.upload(first)[0] == 200
        filler = small_disk / "filler"
        fill(filler, leave=floor + 6 * MIB)
        sizes = [300_000, 700_000, 1_500_000, 3 * MIB]  # (in memory, in the journal, spilled, streamed)
        batch = [wheels(tmp_path, c.name, f"1.{n}", sizes[n % len(sizes)]) for n in range(16)]
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(c.upload, batch))
        statuses = [a[0] for a in answers]
        print(f"\nfull disk ({floor} bytes floor): {statuses}")
        assert set(statuses) <= {200, 507} and 507 in statuses, answers
        for status, text, _ in answers:
            if status == 507:
                full_disk_refusal(status, text)
        if floor == 0:
            fill(small_disk / "filler-2", leave=0)  # (whatever is left: every write now meets ENOSPC)
            status, _ = c.create_package(f"{c.name}-late")
            r = httpx.post(f"{live.url}/api/workspaces/default/packages", auth=(live.admin, live.token),
                           json={"name": f"{c.name}-later", "repository": c.team["repo"]}, timeout=DEADLINE)
            assert status in (201, 507) and r.status_code == 507, r.text
            full_disk_refusal(r.status_code, r.text)
            assert c.yank("0.1")[0] in (200, 507)
        # reads go on
        for path, data in c.published.items():
            r, _ = c.get(live.url + path)
            assert r.status_code == 200 and r.content == data
        r, _ = c.get(f"{live.url}/default/{c.name}/")
        assert r.status_code == 200
        fill(small_disk / "filler-3", leave=floor // 2)  # (under the floor, whatever the uploads left)
        health = httpx.get(f"{live.url}/_/health", timeout=DEADLINE).json()
        assert health["status"] != "ok" and health["disk"]["free"] < max(floor, MIB), health
        assert health["disk"]["floor"] == floor
        # freed: uploads work again, and nothing was left half-written
        filler.unlink()
        (small_disk / "filler-2").unlink(missing_ok=True)
        (small_disk / "filler-3").unlink()
        assert c.upload(wheels(tmp_path, c.name, "9.0", 1_500_000))[0] == 200
        assert httpx.get(f"{live.url}/_/health", timeout=DEADLINE).json()["status"] == "ok"
        staging = small_disk / "blobs" / "staging"
        assert list(staging.iterdir()) == [], list(staging.iterdir())
        assert not [p for p in (small_disk / "ledger.git").rglob("tmp_*")]
        assert "Traceback" not in live.log.read_text()
        c.all_there()
    finally:
        live.stop()
    live = start_server(small_disk, workers=1, env=floor_env)  # (a restart replays nothing it shouldn't)
    try:
        c.live = live
        c.all_there()
        for wheel, (status, _, _) in zip(batch, answers, strict=True):  # what was refused is not there after all
            assert c.version_exists(wheel.name.split("-")[1]) == (status == 200), wheel.name
        if floor == 0:
            url = f"{live.url}/api/workspaces/default/packages/pypi/{c.name}-later"
            assert httpx.get(url, auth=c.auth).status_code == 404
    finally:
        live.stop()


def workers_of(pid: int) -> set[int]:
    """The processes ``pid`` started (granian's workers), from /proc."""
    found = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        found.update(int(child) for child in (task / "children").read_text().split())
    return found


def test_a_disk_full_from_the_start_kills_no_worker(small_disk, tmp_path):
    """Whatever a worker keeps on the data disk as it serves (counts, caches, logs) must not kill it
    when that disk is full: a write through a memory map to a file the disk has no room for is a
    SIGBUS, not an error (the metrics' files were there once: a worker died on the first new series).
    Every request is answered, the workers that started are the ones that serve at the end, and a
    scrape counts what they answered."""
    live = start_server(small_disk, workers=2, env={"REGISTRY_MIN_FREE_BYTES": "0"})
    try:
        c = Client(live, f"early{uuid.uuid4().hex[:6]}")
        assert c.upload(wheels(tmp_path, c.name, "0.1", 4000))[0] == 200
        workers = workers_of(live.process.pid)
        fill(small_disk / "filler", leave=0)
        asked = [f"/default/{c.name}/", f"/default/{c.name}-nothing/", "/default/", "/_/health", "/_/ready",
                 f"/api/workspaces/default/packages/pypi/{c.name}", "/api/workspaces/default/packages",
                 "/api/workspaces/nowhere", "/nowhere/at/all", "/_/metrics"]
        for _ in range(3):  # (flushed to the counts each second: three rounds span flushes)
            for path in asked:
                for method in ("GET", "HEAD", "POST", "DELETE", "OPTIONS"):
                    r = httpx.request(method, live.url + path, auth=c.auth, timeout=DEADLINE)
                    assert r.status_code < 500 or r.status_code in (503, 507), (method, path, r.text)
            time.sleep(1.2)
        assert workers_of(live.process.pid) == workers, live.log.read_text()[-3000:]
        scrape = httpx.get(f"{live.url}/_/metrics", auth=(live.admin, live.token), timeout=DEADLINE)
        assert scrape.status_code == 200 and "registry_http_requests_total" in scrape.text
    finally:
        live.stop()


def test_a_commit_that_meets_a_full_disk_leaves_nothing(small_disk):
    """At every amount of room from none to what a commit needs, a commit either lands or is a 507
    that leaves nothing of itself: no pack, no temporary file, no journal record (a replay, when
    the ledger is opened again, makes nothing of it)."""
    from registry import identity, operations
    from registry.config import Settings
    from registry.datadir import Registry
    from registry.diskspace import DiskFull

    settings = Settings(data=str(small_disk / "data"), min_free_bytes=0)
    reg, op = Registry.open(settings, create=True), identity.operator()
    operations.create_workspace(reg, op, "cli", "ws", "W")
    operations.create_project(reg, op, "cli", "ws", "P", "P")
    operations.create_repository(reg, op, "cli", "ws", "r", "P")
    ledger, refused = settings.ledger_path, 0
    journal = ledger / "registry-journal"
    for leave in range(0, 128 * 1024, 4096):
        head, packs = reg.ledger.head(), sorted(os.listdir(ledger / "objects" / "pack"))
        length = journal.stat().st_size if journal.exists() else 0
        fill(small_disk / "filler", leave)
        try:
            operations.create_package(reg, op, "cli", "ws", f"p{leave}", "r")
        except DiskFull as exc:
            refused += 1
            assert "disk is full" in exc.message and exc.status == 507
            assert reg.ledger.head() == head and sorted(os.listdir(ledger / "objects" / "pack")) == packs
            assert (journal.stat().st_size if journal.exists() else 0) == length, leave
            assert not list(ledger.rglob("tmp_*")) and not (ledger / "refs/heads/main.lock").exists(), leave
            assert Registry.open(settings).ledger.head() == head  # (its replay makes nothing of it)
        finally:
            (small_disk / "filler").unlink()
    print(f"\ncommits refused by a full disk: {refused} of {128 // 4}")
    assert refused  # (the smallest rooms refused it)
    assert operations.create_package(reg, op, "cli", "ws", "after", "r")


# --- a bucket that misses files ------------------------------------------------------------------


def test_a_server_on_a_bucket_that_misses_files_says_so(bucket, tmp_path):
    """Moved to a bucket while serving (the first `blobs migrate`), restarted on it before the last:
    what was published in between is only in the old blobs/. That is damage, said as such."""
    data, location = tmp_path / "data", bucket.location()
    live = start_server(data, workers=1, env=bucket.env())
    c = Client(live, f"moved{uuid.uuid4().hex[:6]}")
    before, after = wheels(tmp_path, c.name, "1.0", 4000), wheels(tmp_path, c.name, "1.1", 3 * MIB)
    assert c.upload(before)[0] == 200
    assert live.cli("blobs", "migrate", "--to", location).returncode == 0
    assert c.upload(after)[0] == 200  # (the running server still stores in blobs/)
    live.stop()
    live = c.live = start_server(data, workers=2, env=bucket.env())
    try:
        deadline = time.monotonic() + 30  # (a check after start finds it; so does a download)
        while (health := httpx.get(f"{live.url}/_/health").json()).get("blobs", {}).get("missing") != 1:
            assert time.monotonic() < deadline, health
            time.sleep(0.2)
        assert health["status"] == "damaged" and "registry verify" in health["action"], health
        for url in (c.url(after), c.url(after) + ".metadata"):
            r, took = c.get(url)
            assert r.status_code == 503 and took < DEADLINE, r.text
            assert "missing from the blob store" in r.text and "blobs migrate" in r.text, r.text
        assert c.get(c.url(before))[0].status_code == 200
        verify = live.cli("verify", check=False)
        assert verify.returncode == 1 and after.name in verify.stdout + verify.stderr
        assert "missing" in verify.stdout + verify.stderr
        assert live.cli("blobs", "migrate", "--to", location).returncode == 0  # what the hint says
        c.all_there()
        assert httpx.get(f"{live.url}/_/health").json()["status"] == "ok"
    finally:
        live.stop()
