"""A primary that stalls or dies under publishes through a replica, workers killed under load, replicas
restarted while the primary publishes and while it is down: every request gets an answer within a
stated deadline, with the status and words expected; nothing acknowledged is lost; the replica keeps
following and ends up holding every file its ledger references (`registry verify` finds none missing).

Real processes on 127.0.0.1 (tests/e2e/replica/test_replica.py's Cluster), faults made with signals. The deadlines
are the settings' plus slack for a loaded machine (2 cores shared with other work), stated below.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import httpx
import pytest

from registry.config import Settings
from registry.datadir import Registry
from registry.replica.fill import Filler
from registry.replica.follow import Follower
from registry.replica.start import prepare
from tests.e2e.replica.test_replica import Cluster, team, upload_form
from tests.support.helpers import LiveServer, make_wheel, start_server
from tests.support.powerloss import Disk, fresh, observe

pytestmark = [pytest.mark.e2e, pytest.mark.filterwarnings("ignore::ResourceWarning")]  # real servers, killed

TIMEOUT = 8.0  # REGISTRY_FOLLOW_TIMEOUT_SECONDS's default: how long a replica waits on a silent primary
SLACK = 6.0  # scheduling on a loaded 2-core machine
STALLED = TIMEOUT + SLACK  # a write through a replica to a stopped primary is answered within this
DEAD = 5.0  # ... to a dead one (its port refuses connections)
RECOVER = 15.0  # after a worker is killed, every request started this long after is answered as usual
CONVERGE = 30.0  # after the primary is back, a replica holds every file its ledger references
PKG = "faulty"


# --- processes -------------------------------------------------------------------------------------


def _parent(pid: int) -> int | None:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def workers(server: LiveServer) -> list[int]:
    """The granian worker processes of ``server`` (the children of its main process)."""
    main = server.process.pid
    return sorted(int(p) for p in os.listdir("/proc") if p.isdigit() and _parent(int(p)) == main)


def signal_all(server: LiveServer, sig: int) -> None:
    """``sig`` to the main process, its workers and theirs (git fetches): the whole server."""
    pids, frontier = [server.process.pid], [server.process.pid]
    while frontier:
        kids = [int(p) for p in os.listdir("/proc") if p.isdigit() and _parent(int(p)) in frontier]
        pids += kids
        frontier = kids
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def restart_primary(cluster: Cluster, port: int) -> None:
    old = cluster.primary
    cluster.primary = start_server(old.data, workers=len(workers(old)) or 1, port=port)
    cluster.primary.token = old.token


def restart_replica(cluster: Cluster, replica: LiveServer, workers_: int = 2) -> LiveServer:
    port = int(replica.url.rsplit(":", 1)[1])
    again = start_server(replica.data, workers=workers_, port=port, env={"REGISTRY_FOLLOW_TOKEN": cluster.token},
                         follow=cluster.primary.url)
    cluster.replicas = [again if r is replica else r for r in cluster.replicas]
    return again


def stop(cluster: Cluster) -> None:
    """Every server of the cluster, even one a failed test left stopped (SIGSTOP ignores SIGTERM)."""
    for server in [cluster.primary, *cluster.replicas]:
        if server.process.poll() is None:
            signal_all(server, signal.SIGCONT)
    cluster.stop()


def kill(server: LiveServer) -> None:
    signal_all(server, signal.SIGKILL)
    server.process.wait(30)


# --- load ------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    kind: str
    started: float
    ended: float
    status: int | None  # None: no HTTP answer (the connection failed), text says how
    text: str
    filename: str = ""

    @property
    def took(self) -> float:
        return self.ended - self.started


@dataclass
class Load:
    """Threads making requests in a loop, every outcome recorded, until stopped."""

    outcomes: list[Outcome] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self, kind: str, request) -> None:
        def loop() -> None:
            i = 0
            while not self._stop.is_set():
                i += 1
                started = time.monotonic()
                try:
                    response, filename = request(i)
                    status, text = response.status_code, response.text[:600]
                except httpx.HTTPError as exc:
                    status, text, filename = None, f"{type(exc).__name__}: {exc}", ""
                self.outcomes.append(Outcome(kind, started, time.monotonic(), status, text, filename))
                time.sleep(0.05)

        thread = threading.Thread(target=loop, daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> list[Outcome]:
        self._stop.set()
        for thread in self._threads:
            thread.join(120)
            assert not thread.is_alive(), "a request never got an answer"
        return self.outcomes


def publisher(server: LiveServer, email: str, token: str, tmp: Path, series: int):
    """A request function that publishes version SERIES.i of PKG to ``server``."""
    def publish(i: int):
        wheel = make_wheel(tmp, PKG, f"{series}.{i}")
        data, files = upload_form(wheel, PKG, f"{series}.{i}")
        return httpx.post(f"{server.url}/default/", auth=(email, token), data=data, files=files,
                          timeout=120), wheel.name
    return publish


def reader(server: LiveServer, email: str, token: str):
    def read(i: int):
        return httpx.get(f"{server.url}/default/{PKG}/", auth=(email, token), timeout=120), ""
    return read


def listed(server: LiveServer, email: str, token: str) -> set[str]:
    page = httpx.get(f"{server.url}/default/{PKG}/", auth=(email, token), timeout=30,
                     headers={"accept": "application/vnd.pypi.simple.v1+json"})
    assert page.status_code == 200, page.text
    return {f["filename"] for f in page.json()["files"]}


def assert_nothing_lost(cluster: Cluster, replica: LiveServer, outcomes: list[Outcome], email: str, token: str) -> None:
    """Every publish answered as done (200, or a 504 that says the primary did it) is on the primary and
    on the replica, which agree on the rest too."""
    acknowledged = {o.filename for o in outcomes if o.kind.startswith("publish") and
                    (o.status == 200 or "did the write" in o.text)}
    cluster.caught_up(replica, timeout=30)
    on_primary, on_replica = listed(cluster.primary, email, token), listed(replica, email, token)
    assert acknowledged <= on_primary, acknowledged - on_primary
    assert on_replica == on_primary


def said_why(o: Outcome, primary: str) -> bool:
    """A write that met a fault of the primary's was answered with what happened, never an empty reason:
    not done (503), maybe done (504), or done but not here yet (504)."""
    if "()" in o.text:
        return False
    if o.status == 503:
        return f"The primary registry at {primary} is unreachable (" in o.text and "nothing was changed" in o.text
    return o.status == 504 and (
        (f"The primary registry at {primary} stopped answering (" in o.text and "may or may not" in o.text)
        or f"The primary at {primary} did the write (commit " in o.text)


def worst(outcomes: list[Outcome]) -> str:
    """The slowest answer of each kind, and how many there were."""
    kinds: dict[str, list[float]] = {}
    for o in outcomes:
        kind = (f"{o.status} done, not here yet" if "did the write" in o.text else
                f"{o.status} sent, no answer" if "stopped answering" in o.text else f"{o.status}")
        kinds.setdefault(kind, []).append(o.took)
    return ", ".join(f"{k} x{len(v)}: worst {max(v):.1f} s" for k, v in sorted(kinds.items()))


def health(server: LiveServer) -> dict:
    return httpx.get(f"{server.url}/_/health", timeout=10).json()


def wait_health(server: LiveServer, check, timeout: float) -> tuple[dict, float]:
    """The first health that passes ``check``, and how long it took to come."""
    started = time.monotonic()
    while True:
        got = health(server)
        if check(got):
            return got, time.monotonic() - started
        assert time.monotonic() - started < timeout, got
        time.sleep(0.2)


def missing_by_verify(server: LiveServer) -> list[str]:
    checked = server.cli("verify", check=False)
    problems = [line for line in (checked.stdout + checked.stderr).splitlines() if "is missing" in line]
    assert checked.returncode == 0 or problems, checked.stdout + checked.stderr
    return problems


def converged(cluster: Cluster, replica: LiveServer, timeout: float = CONVERGE) -> float:
    """Seconds until the replica holds the primary's head and every file it references (`registry
    verify` finds none missing); its health then says so too."""
    head, started = cluster.head(), time.monotonic()
    while True:
        at, missing = health(replica)["ledger"], missing_by_verify(replica)
        if at == head and not missing:
            break
        assert time.monotonic() - started < timeout, (at, head, missing)
        time.sleep(0.5)
    took = time.monotonic() - started
    wait_health(replica, lambda h: h.get("files", {}).get("missing") == 0 and h["files"]["cursor"] == head, 10)
    return took


# --- a primary that stops, then dies -----------------------------------------------------------------


def test_a_stopped_then_killed_primary_is_answered_in_bounded_time(tmp_path):
    cluster = Cluster(tmp_path)
    try:
        replica = cluster.replica("replica", workers=2)
        email, token = team(cluster.primary, PKG)
        cluster.caught_up(replica)  # (the token is the primary's: a read on the replica waits for it)
        port = int(cluster.primary.url.rsplit(":", 1)[1])
        load = Load()
        for series in (1, 2, 3):
            load.start(f"publish-{series}", publisher(replica, email, token, tmp_path, series))
        load.start("read", reader(replica, email, token))
        time.sleep(3)

        signal_all(cluster.primary, signal.SIGSTOP)
        stopped = time.monotonic()
        got, noticed = wait_health(replica, lambda h: not h["primary_reachable"], STALLED)
        assert cluster.primary.url in got["error"] and re.search(r"\w+(Timeout|Error): ", got["error"]), got
        time.sleep(max(0.0, 2 * STALLED - (time.monotonic() - stopped)))
        signal_all(cluster.primary, signal.SIGCONT)
        resumed = time.monotonic()
        _, back = wait_health(replica, lambda h: h["primary_reachable"], STALLED)
        time.sleep(5)

        died = time.monotonic()
        kill(cluster.primary)
        time.sleep(DEAD + 3)
        restart_primary(cluster, port)
        restarted = time.monotonic()
        time.sleep(5)
        outcomes = load.stop()

        writes = [o for o in outcomes if o.kind.startswith("publish")]
        in_stall = [o for o in writes if stopped <= o.ended and o.started <= resumed]
        in_death = [o for o in writes if died <= o.ended and o.started <= restarted]
        print(f"stopped primary: health said so in {noticed:.1f} s, reachable again {back:.1f} s after resume; "
              f"answers to {len(in_stall)} writes: {worst(in_stall)}")
        print(f"killed primary: answers to {len(in_death)} writes: {worst(in_death)}")
        print(f"reads from the replica meanwhile: {worst([o for o in outcomes if o.kind == 'read'])}")
        for o in outcomes:  # every request answered, within the deadline of the fault it met
            assert o.status is not None, o
            assert o.took < STALLED, o
        for o in in_stall + in_death:
            assert o.status == 200 or said_why(o, cluster.primary.url), o
        assert any(o.status == 504 and "a check on a new connection failed" in o.text for o in in_stall)
        for o in in_death:
            if o.status != 200 and o.started > died + 1:  # (sent once it was dead: refused at once)
                assert o.took < DEAD and o.status == 503 and "unreachable (ConnectError" in o.text, o
        # around each fault only writes fail; reads go on, and writes made after it ends succeed
        assert all(o.status == 200 for o in outcomes if o.kind == "read"), [o for o in outcomes if o.status != 200]
        healed = [o for o in writes if resumed + 1 < o.started and o.ended < died or o.started > restarted + 3]
        assert healed and all(o.status == 200 for o in healed), [
            (o.started - resumed, o.started - restarted, o.took, o.text) for o in healed if o.status != 200]
        assert_nothing_lost(cluster, replica, outcomes, email, token)
        converged(cluster, replica)
    finally:
        stop(cluster)


def test_a_big_upload_at_a_slow_pace_passes_through_a_replica(tmp_path):
    """The deadline is on progress, not the whole transfer: 12 MB at 1 MB/s passes the 8 s of silence allowed."""
    cluster = Cluster(tmp_path, env={"REGISTRY_MAX_UPLOAD_BYTES": str(64 * 2**20)})
    try:
        replica = cluster.replica("replica", workers=1)
        email, token = team(cluster.primary, PKG)
        cluster.caught_up(replica)  # (the token is the primary's: a read on the replica waits for it)
        wheel = make_wheel(tmp_path, PKG, "1.0", payload=12 * 2**20, stored=True)
        data, files = upload_form(wheel, PKG, "1.0")
        request = httpx.Request("POST", f"{replica.url}/default/", data=data, files=files)
        body = request.read()

        def slowly():
            for at in range(0, len(body), 2**20):
                yield body[at:at + 2**20]
                time.sleep(1)

        started = time.monotonic()
        response = httpx.post(f"{replica.url}/default/", auth=(email, token), content=slowly(), timeout=120,
                              headers={"content-type": request.headers["content-type"],
                                       "content-length": str(len(body))})
        assert response.status_code == 200, response.text
        assert time.monotonic() - started > TIMEOUT
        got = httpx.get(f"{replica.url}/default/{PKG}/1.0/{wheel.name}", auth=(email, token), timeout=60)
        assert hashlib.sha256(got.content).hexdigest() == hashlib.sha256(wheel.read_bytes()).hexdigest()
    finally:
        stop(cluster)


# --- workers killed -----------------------------------------------------------------------------------


def test_every_worker_killed_in_turn_under_load(tmp_path):
    cluster = Cluster(tmp_path, workers=2)
    try:
        replica = cluster.replica("replica", workers=2)
        email, token = team(cluster.primary, PKG)
        cluster.caught_up(replica)  # (the token is the primary's: a read on the replica waits for it)
        load = Load()
        load.start("publish-1", publisher(replica, email, token, tmp_path, 1))
        load.start("publish-2", publisher(cluster.primary, email, token, tmp_path, 2))
        load.start("read-replica", reader(replica, email, token))
        load.start("read-primary", reader(cluster.primary, email, token))
        time.sleep(3)
        kills: list[float] = []
        for server in (cluster.primary, replica):
            for pid in workers(server):
                before = set(workers(server))
                os.kill(pid, signal.SIGKILL)
                kills.append(time.monotonic())
                deadline = time.monotonic() + RECOVER
                while not (len(now := set(workers(server))) == 2 and now != before):
                    assert time.monotonic() < deadline, f"worker {pid} was not replaced: {now}"
                    assert server.process.poll() is None, server.log.read_text()[-3000:]
                    time.sleep(0.1)
                time.sleep(6)  # (granian takes a second death of the same worker within 5.5 s for a crash loop)
        outcomes = load.stop()
        for server in (cluster.primary, replica):
            assert server.process.poll() is None, server.log.read_text()[-3000:]
        failed = [o for o in outcomes if o.status != 200]
        print(f"{len(outcomes)} requests, {len(failed)} failed, {len(kills)} workers killed; worst answer "
              f"{max(o.took for o in outcomes):.1f} s; failures: {[(o.kind, o.status, o.text[:80]) for o in failed]}")
        assert max(o.took for o in outcomes) < STALLED
        for o in failed:  # only requests in flight around a kill, and the few that met the dead worker's socket
            assert any(k - 1 <= o.ended and o.started <= k + RECOVER for k in kills), o
        for kind in {o.kind for o in outcomes}:  # each kind of request succeeded after the last kill's recovery
            assert any(o.kind == kind and o.status == 200 and o.started > kills[-1] for o in outcomes), kind
        # the replica still follows (whichever worker leads now), and fetches the files
        wheel = make_wheel(tmp_path, PKG, "9.0")
        data, files = upload_form(wheel, PKG, "9.0")
        assert httpx.post(f"{cluster.primary.url}/default/", auth=(email, token), data=data, files=files,
                          timeout=60).status_code == 200
        cluster.caught_up(replica, timeout=15)
        assert_nothing_lost(cluster, replica, outcomes, email, token)
        converged(cluster, replica)
    finally:
        stop(cluster)


# --- replicas restarted -------------------------------------------------------------------------------


def test_replicas_restarted_while_the_primary_publishes_and_while_it_is_down_converge(tmp_path):
    cluster = Cluster(tmp_path)
    try:
        replica = cluster.replica("replica", workers=2)
        email, token = team(cluster.primary, PKG)
        cluster.caught_up(replica)  # (the token is the primary's: a read on the replica waits for it)
        port = int(cluster.primary.url.rsplit(":", 1)[1])
        load = Load()
        load.start("publish-1", publisher(cluster.primary, email, token, tmp_path, 1))
        for _ in range(3):  # killed (as by the OOM killer) and started again, while the primary publishes
            time.sleep(2)
            kill(replica)
            time.sleep(1)
            replica = restart_replica(cluster, replica)
        time.sleep(2)
        load.stop()
        took = converged(cluster, replica)
        print(f"restarted while the primary publishes: converged in {took:.1f} s")

        # stopped; the primary publishes; the primary goes down; the replica starts without it
        replica.stop()
        load = Load()
        load.start("publish-2", publisher(cluster.primary, email, token, tmp_path, 2))
        time.sleep(3)
        load.stop()
        kill(cluster.primary)
        replica = restart_replica(cluster, replica)
        restart_primary(cluster, port)
        took = converged(cluster, replica)
        print(f"restarted while the primary is down: converged in {took:.1f} s after it came back")

        # a replica of the release before the cursor, with holes (as the issue found), started with the
        # primary down: health counts them, a read of one is a 503 that says why; then it heals
        page = httpx.get(f"{replica.url}/default/{PKG}/", auth=(email, token), timeout=30,
                         headers={"accept": "application/vnd.pypi.simple.v1+json"}).json()
        replica.stop()
        holes = [f["hashes"]["sha256"] for f in page["files"]][:5]
        for sha in holes:
            (replica.data / "blobs" / "sha256" / sha[:2] / sha).unlink()
        (replica.data / "replica" / "files-cursor").unlink()
        kill(cluster.primary)
        replica = restart_replica(cluster, replica)
        got, _ = wait_health(replica, lambda h: h.get("files", {}).get("missing") == len(holes)
                             and "unreachable" in h["files"].get("error", ""), STALLED + 10)
        assert len(missing_by_verify(replica)) == len(holes)
        url = next(f["url"] for f in page["files"] if f["hashes"]["sha256"] == holes[0])
        hole = httpx.get(httpx.URL(f"{replica.url}/default/{PKG}/").join(url), auth=(email, token), timeout=30)
        assert hole.status_code == 503 and f"the primary at {cluster.primary.url} is unreachable (ConnectError" \
            in hole.text, hole.text
        restart_primary(cluster, port)
        took = converged(cluster, replica)
        print(f"holes healed in {took:.1f} s after the primary came back")
    finally:
        stop(cluster)


def test_a_stopped_primary_is_noticed_by_an_idle_replica(tmp_path):
    """Nothing forwarded: the follower's long poll alone notices the silence, and the replica resumes by itself."""
    cluster = Cluster(tmp_path)
    try:
        replica = cluster.replica("replica", workers=1)
        email, token = team(cluster.primary, PKG)
        cluster.caught_up(replica)  # (the token is the primary's: a read on the replica waits for it)
        wait_health(replica, lambda h: h["primary_reachable"], 15)
        signal_all(cluster.primary, signal.SIGSTOP)
        got, took = wait_health(replica, lambda h: not h["primary_reachable"], STALLED)
        assert re.search(r"is unreachable \(.*\w+(Timeout|Error): .*\)", got["error"]), got
        print(f"an idle replica noticed the stopped primary in {took:.1f} s")
        signal_all(cluster.primary, signal.SIGCONT)
        wheel = make_wheel(tmp_path, PKG, "1.0")
        data, files = upload_form(wheel, PKG, "1.0")
        assert httpx.post(f"{cluster.primary.url}/default/", auth=(email, token), data=data, files=files,
                          timeout=60).status_code == 200
        got, took = wait_health(replica, lambda h: h["primary_reachable"] and h["ledger"] == cluster.head(), STALLED)
        converged(cluster, replica)
    finally:
        stop(cluster)


# --- the files cursor and power cuts --------------------------------------------------------------------


def test_every_power_cut_leaves_the_files_cursor_behind_what_is_durable(tmp_path):
    """A replica's fill round runs on the real disk while `powerloss.Disk` records what each sync made
    durable; after a cut at any of them, every file the cursor vouches for is there, whole. Two files
    start out there unsynced (one whole, as another worker's fetch leaves it mid-adopt; one torn)."""
    cluster = Cluster(tmp_path)
    try:
        email, token = team(cluster.primary, PKG)
        published: dict[str, bytes] = {}
        for i, payload in enumerate((512, 1_300_000, 512, 1_300_000, 512, 512)):
            wheel = make_wheel(tmp_path, PKG, f"1.{i}", payload=payload)
            data, files = upload_form(wheel, PKG, f"1.{i}")
            assert httpx.post(f"{cluster.primary.url}/default/", auth=(email, token), data=data, files=files,
                              timeout=60).status_code == 200
            published[hashlib.sha256(wheel.read_bytes()).hexdigest()] = wheel.read_bytes()
        root = tmp_path / "replica"
        settings = Settings(data=str(root), follow=cluster.primary.url, follow_token=cluster.token)
        prepare(settings)
        reg = Registry.open(settings)
        follower = Follower(settings, reg.ledger)
        disk = Disk(root)
        try:
            with observe(disk):
                unsynced, torn = list(published)[1], list(published)[4]
                for sha, data in ((unsynced, published[unsynced]), (torn, published[torn][:100])):
                    (root / "blobs" / "sha256" / sha[:2] / sha).write_bytes(data)  # (never synced)
                done = anyio.run(Filler(reg, follower).round)
            assert done.cursor == reg.ledger.head() and done.missing == 0 and done.fetched == len(published) - 1
            cuts = list(disk.cuts(random.Random(3)))
            vouched = 0
            for n, (synced, extra) in enumerate(cuts):
                image = disk.image(synced, extra, fresh(tmp_path / "cut"))
                cursor_file = image / "replica" / "files-cursor"
                if not cursor_file.exists():
                    continue
                cursor = cursor_file.read_text().strip()
                assert cursor in {c.id for c in reg.ledger.walk()}, f"cut {n}: a torn cursor {cursor!r}"
                for commit in reg.ledger.walk(since=None):
                    if commit.id != cursor and not reg.ledger.repo().descendant_of(cursor, commit.id):
                        continue
                    for sha in commit.trailers_named("Sha256"):
                        kept = image / "blobs" / "sha256" / sha[:2] / sha
                        assert kept.exists() and kept.read_bytes() == published[sha], \
                            f"cut {n} (sync {synced} +{extra}): the cursor {cursor[:12]} vouches for {sha[:12]}, " \
                            "not durable"
                        vouched += 1
            assert vouched >= len(published)  # (some cut had the cursor at the head)
        finally:
            disk.close()
    finally:
        stop(cluster)


def test_every_transport_error_is_said_in_words():
    """`str()` of many httpx errors is empty (a timeout from the event loop's own clock): the reason a
    replica gives names the error's class and what it means, whichever it is."""
    from registry.replica.primary import describe

    def every(cls):
        for sub in cls.__subclasses__():
            yield sub
            yield from every(sub)

    kinds = {cls for cls in every(httpx.TransportError) if not cls.__name__.startswith("_")}
    assert len(kinds) >= 10
    for cls in kinds:
        said = describe(cls(""), 8)
        assert said.startswith(f"{cls.__name__}: ") and len(said) > len(cls.__name__) + 10, said
        assert "()" not in said and "the request failed" not in said, said
    assert describe(TimeoutError(), 4) == "TimeoutError: no answer within 4 s"
    assert describe(httpx.ConnectError("[Errno 111] Connection refused"), 8) == \
        "ConnectError: it could not be connected to ([Errno 111] Connection refused)"
