"""Nothing the ledger writes may be unreadable back (issue 21, item 1): for every operation that
writes a record, with what an attacker types in every field (text at and around every bound,
control characters, markup, NUL, non-ASCII, huge numbers), either the operation refuses with a 4xx
and nothing is committed, or what it accepted is written, read back by the ledger, listed (the
package list, the API list, the Simple index, the UI) and deletable, and the ledger stays whole.

One registry for the module (Hypothesis runs many examples on it), served in-process."""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient
from packaging.utils import canonicalize_name

from registry import (
    audit,
    dists,
    identity,
    layout,
    maintenance,
    model,
    operations,
    repair,
)
from registry.config import Settings
from registry.datadir import Registry
from registry.errors import MESSAGE_LIMIT, RegistryError
from registry.ledger import guard
from registry.reads import Reader, records
from registry.web.app import create_asgi
from tests.support.inputs import emails, keys, names, shown_names, slugs, texts, versions

WS, PUBLIC, ADMIN = "town", "pub", "admin@town.test"
EXAMPLES = settings(max_examples=30, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.large_base_example, HealthCheck.function_scoped_fixture])
OP = identity.operator()
SERIAL = itertools.count()


@dataclass
class Town:
    reg: Registry
    http: TestClient
    basic: dict[str, str]


@pytest.fixture(scope="module")
def town(tmp_path_factory):
    settings_ = Settings(data=str(tmp_path_factory.mktemp("town") / "data"), max_upload_bytes=2**20)
    reg = Registry.open(settings_, create=True)
    operations.create_workspace(reg, OP, "cli", WS, "Town")
    operations.create_project(reg, OP, "cli", WS, "CORE")
    operations.create_repository(reg, OP, "cli", WS, PUBLIC, "CORE", public=True)
    operations.create_user(reg, OP, "cli", ADMIN)
    operations.grant(reg, OP, "cli", WS, ADMIN, "admin")
    secret, _ = operations.create_token(reg, OP, "cli", ADMIN)
    basic = {"authorization": "Basic " + base64.b64encode(f"{ADMIN}:{secret}".encode()).decode()}
    with TestClient(app=create_asgi(settings_, reg)) as http:
        yield Town(reg, http, basic)


def attempt(reg: Registry, change: Callable[[], Any]) -> Any | None:
    """Run ``change``: a refusal must be a 4xx with a bounded message, and commit nothing."""
    head = reg.ledger.head()
    try:
        done = change()
        event("accepted")
        if reg.ledger.head() != head:  # (its commit reads back whole too: what it did, and who did it)
            commit = reg.ledger.commit(reg.ledger.head())
            assert audit.action(commit) is not audit.Action.UNKNOWN and commit.trailer("Actor"), commit
        return done
    except RegistryError as exc:
        event("refused")
        assert 400 <= exc.status < 500, exc.message
        assert len(exc.message) <= MESSAGE_LIMIT + 100 and "\n" not in exc.message
        assert reg.ledger.head() == head, f"refused ({exc.message}), yet something was committed"
        return None


def whole(reg: Registry) -> None:
    """Everything in the ledger reads back: what `registry verify` checks of records and trees."""
    assert repair.damaged(reg.snapshot()) == []


def get(town: Town, url: str, **kw) -> Any:
    r = town.http.get(url, **kw)
    assert r.status_code == 200, (url[:200], r.status_code, r.text[:300])
    return r


# --- tenancy -------------------------------------------------------------------------------------


@EXAMPLES
@given(slug=slugs(), name=shown_names())
def test_workspaces(town, slug, name):
    created = attempt(town.reg, lambda: operations.create_workspace(town.reg, OP, "cli", slug, name))
    if created is not None:
        assert town.reg.snapshot().get(layout.workspace(created.slug), model.Workspace) == created
        assert created.slug in [w.slug for w in Reader(town.reg, OP).workspaces()]
    whole(town.reg)


@EXAMPLES
@given(key=keys(), name=shown_names())
def test_projects(town, key, name):
    created = attempt(town.reg, lambda: operations.create_project(town.reg, OP, "cli", WS, key, name))
    if created is not None:
        assert Reader(town.reg, OP).project(WS, created.key) == created
        get(town, f"/api/workspaces/{WS}/projects/{created.key}/packages", headers=town.basic)
    whole(town.reg)


@EXAMPLES
@given(slug=slugs(), uuid=st.none() | st.uuids().map(str) | texts())
def test_repositories(town, slug, uuid):
    created = attempt(town.reg, lambda: operations.create_repository(town.reg, OP, "cli", WS, slug, "CORE",
                                                                     public=True, uuid=uuid))
    if created is not None:
        assert created in Reader(town.reg, OP).repositories(WS)
        get(town, f"/api/workspaces/{WS}/repositories/{created.slug}/packages")
    whole(town.reg)


@EXAMPLES
@given(email=emails(), name=shown_names(), label=texts(), days=st.none() | st.integers(-10, 10**30))
def test_users_tokens_and_what_their_holders_write(town, email, name, label, days):
    user = attempt(town.reg, lambda: operations.create_user(town.reg, OP, "cli", email, name))
    if user is not None:
        assert town.reg.snapshot().get(layout.user(user.email), model.User) == user
        made = attempt(town.reg, lambda: operations.create_token(town.reg, OP, "cli", user.email, "write", days, label))
        if made is not None:
            secret, token = made
            assert token in Reader(town.reg, OP).tokens(user.email)
            # the user's own writes carry their name as the git author: each must land
            holder = identity.check_token(town.reg.snapshot(), user.email, secret)
            _, own = operations.create_token(town.reg, holder, "api", user.email, "read", label="own")
            operations.grant(town.reg, OP, "cli", WS, user.email, "write", repository=PUBLIC)
            assert operations.revoke_token(town.reg, holder, "api", user.email, own.id).revoked is not None
            assert operations.revoke_token(town.reg, OP, "cli", user.email, token.id).revoked is not None
    whole(town.reg)


@EXAMPLES
@given(email=st.just(ADMIN) | emails(), role=st.sampled_from(["read", "write", "admin"]) | texts(),
       key=st.none() | st.just("CORE") | keys())
def test_grants(town, email, role, key):
    target = {"project": key} if key is not None else {"repository": PUBLIC}
    done = attempt(town.reg, lambda: operations.grant(town.reg, OP, "cli", WS, email, role, **target) or True)
    if done:
        assert attempt(town.reg, lambda: operations.grant(town.reg, OP, "cli", WS, email, None, **target) or True)
    whole(town.reg)


@EXAMPLES
@given(issuer=st.sampled_from(["https://issuer.test/oidc",
                               "http://127.0.0.1:9/x"]) | texts().map(lambda t: "https://" + t)
       | texts(), audiences=st.lists(texts(), max_size=12))
def test_trust(town, issuer, audiences):
    trust = attempt(town.reg, lambda: operations.set_trust(town.reg, OP, "cli", WS, issuer, audiences))
    if trust is not None:
        assert town.reg.snapshot().get(layout.trusted_issuer(WS, trust.issuer), model.TrustedIssuer) == trust
        operations.remove_trust(town.reg, OP, "cli", WS)
    whole(town.reg)


# --- packages ------------------------------------------------------------------------------------


def listed(town: Town, package: model.Package) -> None:
    """The package is in every list: the ledger's, the API's, the Simple index, the UI's."""
    name = package.name
    assert package in records.list_packages(town.reg.snapshot(), WS)
    api = get(town, f"/api/workspaces/{WS}/packages", params={"q": name, "per_page": 500}).json()
    assert name in [i["name"] for i in api["items"]]
    assert {"name": package.display_name} in get(town, f"/{WS}/").json()["projects"]
    assert get(town, f"/{WS}/{name}/").json()["name"] == name
    assert f"/-/{WS}/packages/{name}/" in get(town, f"/-/{WS}/", params={"q": name}).text
    get(town, f"/-/{WS}/packages/{name}/")
    get(town, "/")


def unlisted(town: Town, name: str) -> None:
    assert name not in [p.name for p in records.list_packages(town.reg.snapshot(), WS)]
    assert name not in [canonicalize_name(p["name"]) for p in get(town, f"/{WS}/").json()["projects"]]


@EXAMPLES
@given(name=names(), branches=st.lists(texts(), max_size=3), environments=st.lists(texts(), max_size=2))
def test_packages_and_their_policies(town, name, branches, environments):
    package = attempt(town.reg, lambda: operations.create_package(town.reg, OP, "cli", WS, name, PUBLIC))
    if package is not None:
        listed(town, package)
        policy = attempt(town.reg, lambda: operations.set_publish_policy(town.reg, OP, "cli", WS, package.name,
                                                                          branches, environments))
        if policy is not None:
            assert records.get_package(town.reg.snapshot(), WS, package.name) == policy
            listed(town, policy)
        operations.delete_package(town.reg, OP, "cli", WS, package.name)
        unlisted(town, package.name)
    whole(town.reg)


def wheel(name: str, version: str) -> tuple[str, bytes]:
    """A minimal valid wheel, in memory (its filename may be longer than a filesystem takes)."""
    norm = name.lower().replace("-", "_").replace(".", "_")
    dist_info = f"{norm}-{version}.dist-info"
    files = {f"{norm}/__init__.py": b"",
             f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode(),
             f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"}
    buf = io.BytesIO()
    if len(dist_info) > 4096:  # (zip can't name such a member: send the name with junk, as an attacker may)
        return f"{norm}-{version}-py3-none-any.whl", b"PK junk"
    with zipfile.ZipFile(buf, "w") as zf:
        record = []
        for member, data in files.items():
            zf.writestr(member, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{member},sha256={digest},{len(data)}")
        zf.writestr(f"{dist_info}/RECORD", "\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n")
    return f"{norm}-{version}-py3-none-any.whl", buf.getvalue()


def _utf8(text: str) -> bool:
    try:
        return bool(text.encode())
    except UnicodeEncodeError:  # (a lone surrogate: no file can be named with it)
        return False


def publish(reg: Registry, ws: str, filename: str, data: bytes) -> operations.Published:
    """What the upload endpoint does with a file, minus HTTP."""
    with reg.blobs.stage() as staged:
        staged.write(data)
        staged.finish()
        with staged.open() as content:
            dist = dists.inspect(content, filename)
        return operations.publish_file(reg, OP, "upload", ws, dist, staged)


@EXAMPLES
@given(version=versions(), reason=texts())
def test_publishing_yanking_and_deleting_versions(town, version, reason):
    name = f"ver-{next(SERIAL)}"
    operations.create_package(town.reg, OP, "cli", WS, name, PUBLIC)
    published = attempt(town.reg, lambda: publish(town.reg, WS, *wheel(name, version))) if _utf8(version) else None
    if published is not None:
        v = published.version.version
        assert records.get_version(town.reg.snapshot(), WS, name, v) == published.version
        assert published.file.filename in get(town, f"/{WS}/{name}/").text
        get(town, f"/api/workspaces/{WS}/packages/pypi/{name}/versions/{v}")
        yanked = attempt(town.reg, lambda: operations.yank(town.reg, OP, "cli", WS, name, v, reason))
        if yanked is not None:
            assert records.get_version(town.reg.snapshot(), WS, name, v) == yanked
            files = get(town, f"/{WS}/{name}/").json()["files"]
            assert [f["yanked"] for f in files] == [yanked.yanked_reason or True]
            operations.yank(town.reg, OP, "cli", WS, name, v, undo=True)
        operations.delete_version(town.reg, OP, "cli", WS, name, v)
        assert records.get_version(town.reg.snapshot(), WS, name, v) is None
    # whatever version was asked for, a read of it is a 4xx, never a 500
    asked = quote(version.encode("utf-8", "surrogatepass"), safe="")
    for url in (f"/api/workspaces/{WS}/packages/pypi/{name}/versions/{asked}", f"/{WS}/pypi/{name}/{asked}/json",
                f"/-/{WS}/packages/{name}/{asked}/"):
        if len(url) < 65_000:  # (what an HTTP client sends at all)
            assert town.http.get(url).status_code < 500, url[:200]
    operations.delete_package(town.reg, OP, "cli", WS, name)
    whole(town.reg)


# --- the storage engine's own guard --------------------------------------------------------------


segments = st.one_of(texts(), st.sampled_from(["ok", "a" * 255, "a" * 256, "é" * 127, "é" * 128, ".", "..", ".GIT",
                                               "git~1",
                                               "<img src=x onerror=alert(1)>", "名前", "a b", "-", ".json"]))
authors = st.sampled_from(["Dev Eloper", "O'Brien, \"Dev\"", "名前 ✓", "a" * 1000]) | texts()
emails_ = st.sampled_from(["dev@example.com", "x", "a+b@c"]) | texts()


@settings(EXAMPLES, max_examples=100)  # (cheap: no HTTP, and most are refused)
@given(path=st.lists(segments, min_size=1, max_size=3), author=authors, email=emails_, summary=texts(),
       trailers=st.lists(st.tuples(st.sampled_from(["Actor", "Key", "Bad key", "X:", ""]), texts() | st.just("ok")),
                         max_size=2),
       body=st.just("") | texts() | st.just("Actor: forged\nChannel: web"))
def test_the_ledger_writes_only_what_it_reads_back(town, path, author, email, summary, trailers, body):
    """Whatever a future operation forgets to bound: the ledger refuses it, or reads it back whole."""
    from registry.ledger import Change, Commit

    ledger = town.reg.ledger
    target = "/".join(["scratch", *path])
    change = Change(summary=summary, author=(author, email), time=model.now(), writes={target: b"data\n"},
                    trailers=tuple(trailers), body=body)
    head = ledger.head()
    try:
        committed = ledger.transact(lambda snap: change)
    except guard.Unwritable as exc:
        event("refused by the guard")
        assert exc.status == 400 and ledger.head() == head
        return
    event("written")
    try:
        commit: Commit = committed.commit
        assert ledger.snapshot().raw(target) == b"data\n"
        # (git trims spaces and some punctuation off both ends of an ident, as every git tool reads it)
        assert (commit.author_name, commit.author_email) == (author.strip(guard.AUTHOR_TRIMS),
                                                             email.strip(guard.AUTHOR_TRIMS))
        # (no more, none forged)
        assert commit.trailers == tuple((key, " ".join(value.split())) for key, value in trailers)
        assert commit.summary == " ".join(summary.split())
        assert [f.problem for f in ledger.snapshot().walk() if f.problem] == []
    finally:
        ledger.transact(lambda snap: Change(summary="clean up", author=("t", "t@t"), time=model.now(),
                                            writes={"scratch": None}, trailers=(("Action", "test"),)))


def test_after_all_of_it_verify_is_clean(town):
    report = maintenance.verify(town.reg)
    assert report.ok, report.problems



def test_every_commit_verifies_in_the_process_that_made_it(town):
    """A commit just made is read from memory (ledger/packs.py), where no NUL follows it: reading its
    signature must not run on into whatever memory is next (libgit2's extraction did)."""
    from registry.ledger import Change
    from registry.trust import commit_signatures as signatures

    ledger, made = town.reg.ledger, []
    for i in range(80):
        change = Change(summary=f"signed {i}", author=("Dev " + "é" * (i % 7), "dev@example.com"), time=model.now(),
                        writes={"scratch/signed": b"x" * i}, trailers=(("Action", "test"),))
        made.append(ledger.transact(lambda snap, change=change: change).commit.id)
        repo = ledger.repo()
        assert signatures.check_commit(repo, repo[made[-1]], True)[0] is None
    ledger.transact(lambda snap: Change(summary="clean up", author=("t", "t@t"), time=model.now(),
                                        writes={"scratch": None}, trailers=(("Action", "test"),)))
    assert signatures.check_history(ledger.repo(), ledger.head()).ok
