"""`registry import`: from a directory and from another index (a PEP 691 JSON index, a PEP 503 HTML one),
in-process for the importer's rules (through the CLI against a live server, from pypiserver too, in
tests/e2e/clients/test_import.py)."""

from __future__ import annotations

import base64
import hashlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from registry import identity, importer, operations
from registry.errors import RegistryError
from registry.reads import records
from registry.web.negotiation import JSON
from registry.web.simple import render_project
from tests.support.helpers import (
    make_sdist,
    make_wheel,
)
from tests.support.world import publish
from tests.unit.test_dists import sdist, zip_sdist

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")
OP = identity.operator()


@pytest.fixture
def target(reg):
    """A workspace with two repositories, nothing published."""
    operations.create_workspace(reg, OP, "cli", "mig")
    operations.create_project(reg, OP, "cli", "mig", "MAIN")
    operations.create_repository(reg, OP, "cli", "mig", "libs", "MAIN")
    operations.create_repository(reg, OP, "cli", "mig", "other", "MAIN")
    return reg


async def imp(reg, source, repo="libs", ws="mig"):
    seen: list[importer.Outcome] = []
    summary = await importer.run(reg, OP, ws, repo, source, concurrency=3, on_file=seen.append)
    return summary, {o.filename: o for o in seen}


def files_of(reg, ws, name):
    return {f.filename: f for v in records.versions(reg.snapshot(), ws, name) for f in v.files}


# --- in-process: a directory ---------------------------------------------------------------------


async def test_a_directory_is_imported_file_by_file_and_a_rerun_skips_it_all(target, tmp_path):
    src = tmp_path / "packages"
    (src / "sub" / "deeper").mkdir(parents=True)
    (src / ".hidden").mkdir()
    wheels = [make_wheel(src, "Mig.Tool", f"1.{i}") for i in range(5)]
    sdist = make_sdist(src / "sub" / "deeper", "other-lib", "0.3")
    make_wheel(src / ".hidden", "hidden-pkg", "1.0")
    (src / "README.txt").write_text("not a distribution")
    (src / "broken-1.0-py3-none-any.whl").write_bytes(b"not a zip")
    before = target.ledger.head()

    summary, seen = await imp(target, importer.DirectorySource(src))
    assert summary.counts == {"imported": 6, "skipped": 0, "refused": 1, "conflict": 0}
    assert summary.ignored == 1 and summary.total == 7 and not summary.ok
    assert "not a zip archive" in seen["broken-1.0-py3-none-any.whl"].reason
    assert "hidden-pkg" not in str(seen)
    # packages created as needed, linked to the repository given
    assert records.get_package(target.snapshot(), "mig", "mig-tool").repository == "libs"
    assert records.get_package(target.snapshot(), "mig", "other-lib").display_name == "other-lib"
    assert set(files_of(target, "mig", "mig-tool")) == {w.name for w in wheels}
    # one commit per file (and one per package created), in the source's order, as an upload's
    commits = list(target.ledger.walk(since=before))
    publishes = [c for c in reversed(commits) if c.summary.startswith("publish ")]
    assert [c.trailer("File") for c in publishes] == sorted(w.name for w in wheels) + [sdist.name]
    assert len(commits) == 6 + 2
    last = publishes[-1]
    assert last.trailer("Channel") == "import" and last.trailer("Import-Source") == str(sdist)
    assert last.trailer("Sha256") == hashlib.sha256(sdist.read_bytes()).hexdigest()
    assert last.trailer("Upload-Time") is None  # a directory says nothing about when a file was uploaded
    record = files_of(target, "mig", "other-lib")[sdist.name]
    assert record.uploaded.channel == "import" and record.upload_time is None

    head = target.ledger.head()
    summary, seen = await imp(target, importer.DirectorySource(src))
    assert summary.counts == {"imported": 0, "skipped": 6, "refused": 1, "conflict": 0}
    assert target.ledger.head() == head  # nothing at all committed


async def test_conflicts_and_refusals_are_reported_never_overwritten(target, tmp_path, reg):
    theirs, ours = tmp_path / "theirs", tmp_path / "ours"
    theirs.mkdir(), ours.mkdir()
    operations.create_package(reg, OP, "cli", "mig", "taken", "libs")
    publish(reg, OP, make_wheel(ours, "taken", "1.0"), ws="mig")  # same filename, other bytes
    publish(reg, OP, make_wheel(ours, "taken", "2.0"), ws="mig")
    operations.delete_version(reg, OP, "cli", "mig", "taken", "2.0")  # a spent filename
    operations.create_package(reg, OP, "cli", "mig", "elsewhere", "other")
    make_wheel(theirs, "taken", "1.0")
    make_wheel(theirs, "taken", "2.0")
    make_wheel(theirs, "elsewhere", "1.0")
    make_wheel(theirs, "taken", "3.0")
    head = reg.ledger.head()

    summary, seen = await imp(reg, importer.DirectorySource(theirs))
    assert summary.counts == {"imported": 1, "skipped": 0, "refused": 1, "conflict": 2}
    assert "other bytes" in seen["taken-1.0-py3-none-any.whl"].reason
    assert "never reused" in seen["taken-2.0-py3-none-any.whl"].reason
    assert "linked to repository mig/other" in seen["elsewhere-1.0-py3-none-any.whl"].reason
    assert records.get_package(reg.snapshot(), "mig", "elsewhere").repository == "other"  # not relinked
    assert files_of(reg, "mig", "taken")["taken-1.0-py3-none-any.whl"].sha256 == hashlib.sha256(
        (ours / "taken-1.0-py3-none-any.whl").read_bytes()).hexdigest()
    assert len(list(reg.ledger.walk(since=head))) == 1  # only taken 3.0
    assert [o.filename for o in summary.problems] == [
        "elsewhere-1.0-py3-none-any.whl", "taken-1.0-py3-none-any.whl", "taken-2.0-py3-none-any.whl"]


async def test_files_older_tools_wrote_are_imported_with_their_warnings(target, tmp_path):
    src = tmp_path / "packages"
    src.mkdir()
    legacy = "Metadata-Version: 2.1\nName: zope.interface\nVersion: 6.1\nLicense-File: LICENSE.txt\n"
    sdist(src, "zope.interface-6.1.tar.gz", "zope.interface-6.1", metadata=legacy)
    zip_sdist(src, "Old.Zip-1.0.zip", "Old.Zip-1.0", name="Old.Zip")
    summary, seen = await imp(target, importer.DirectorySource(src))
    assert summary.counts["imported"] == 2, seen
    zope = files_of(target, "mig", "zope-interface")["zope.interface-6.1.tar.gz"]
    assert zope.warnings[0] == "License-File is a Metadata-Version 2.4 field; this file declares 2.1."
    assert "PEP 625" in zope.warnings[1]
    assert "a .zip as older tools wrote" in files_of(target, "mig", "old-zip")["Old.Zip-1.0.zip"].warnings[0]


async def test_bad_input_is_an_error_before_any_commit(target, tmp_path):
    head = target.ledger.head()
    for ws, repo, err in [("nope", "libs", "Workspace 'nope' does not exist"),
                          ("mig", "nope", "Repository mig/nope does not exist")]:
        with pytest.raises(RegistryError, match=err):
            await imp(target, importer.DirectorySource(tmp_path), repo=repo, ws=ws)
    with pytest.raises(RegistryError, match="is not a directory"):
        await imp(target, importer.DirectorySource(tmp_path / "missing"))
    assert target.ledger.head() == head


# --- in-process: an index (PEP 691 JSON and PEP 503 HTML, over a mock transport) ------------------


class FakeIndex:
    """A Simple API over httpx.MockTransport: JSON or HTML, files on the index or another host."""

    def __init__(self, root: Path, fmt: str = "json", auth: str | None = None) -> None:
        self.files: dict[str, tuple[str, bytes, str | None]] = {}  # filename -> (project, bytes, upload-time)
        self.fmt, self.auth, self.requests, self.lie = fmt, auth, [], set()
        self.root = root

    def add(self, path: Path, project: str, upload_time: str | None = None) -> None:
        self.files[path.name] = (project, path.read_bytes(), upload_time)

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if self.auth and request.url.host == "index.test" and request.headers.get("authorization") != self.auth:
            return httpx.Response(401, headers={"WWW-Authenticate": "Basic"})
        path = request.url.path
        if path.startswith("/files/"):
            name = path.rsplit("/", 1)[1]
            return httpx.Response(200, content=self.files[name][1])
        projects = sorted({p for p, _, _ in self.files.values()})
        if path == "/simple/":
            if self.fmt == "json":
                return self._json({"meta": {"api-version": "1.1"}, "projects": [{"name": p} for p in projects]})
            return self._html("".join(f'<a href="{p}/">{p}</a>' for p in projects))
        name = path.strip("/").split("/")[-1]
        mine = [(f, data, t) for f, (p, data, t) in self.files.items() if p == name]
        if not mine:
            return httpx.Response(404)
        digest = {f: hashlib.sha256(b"lie" if f in self.lie else data).hexdigest() for f, data, _ in mine}
        if self.fmt == "json":
            return self._json({"meta": {"api-version": "1.1"}, "name": name, "files": [
                {"filename": f, "url": f"../../files/{f}", "hashes": {"sha256": digest[f]}, "upload-time": t}
                for f, _, t in mine]})
        # absolute URLs on another host: credentials must not follow them there
        return self._html("".join(f'<a href="http://files.test/files/{f}#sha256={digest[f]}">{f}</a>'
                                  for f, _, _ in mine))

    @staticmethod
    def _json(data) -> httpx.Response:
        return httpx.Response(200, json=data, headers={"content-type": "application/vnd.pypi.simple.v1+json"})

    @staticmethod
    def _html(body: str) -> httpx.Response:
        return httpx.Response(200, text=f"<!DOCTYPE html><html><body>{body}</body></html>",
                              headers={"content-type": "text/html"})

    def source(self, projects=(), **kwargs) -> importer.IndexSource:
        return importer.IndexSource("http://index.test/simple/", projects, transport=httpx.MockTransport(self.handler),
                                    **kwargs)

    def downloads(self) -> list[str]:
        return [r.url.path.rsplit("/", 1)[1] for r in self.requests if r.url.path.startswith("/files/")]


async def test_an_index_keeps_upload_times_verifies_hashes_and_resumes_without_downloading(target, tmp_path):
    index = FakeIndex(tmp_path)
    old = make_wheel(tmp_path, "json-lib", "1.0")
    new = make_wheel(tmp_path, "json-lib", "2.0")
    lying = make_wheel(tmp_path, "json-lib", "3.0")
    index.add(old, "json-lib", "2020-01-02T03:04:05.678901Z")
    index.add(new, "json-lib", "2024-05-06T07:08:09Z")
    index.add(lying, "json-lib")
    index.lie.add(lying.name)  # the index gives a sha256 the bytes don't have

    summary, seen = await imp(target, index.source())
    assert summary.counts == {"imported": 2, "skipped": 0, "refused": 1, "conflict": 0}
    assert "doesn't match the sha256" in seen[lying.name].reason
    record = files_of(target, "mig", "json-lib")[old.name]
    assert record.upload_time == datetime(2020, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    snap = target.snapshot()
    page = json.loads(render_project(records.get_package(snap, "mig", "json-lib"),
                                     records.versions(snap, "mig", "json-lib"), JSON, "/mig/json-lib/"))
    times = {f["filename"]: f["upload-time"] for f in page["files"]}
    assert times == {old.name: "2020-01-02T03:04:05.678901Z", new.name: "2024-05-06T07:08:09.000000Z"}
    commit = next(c for c in target.ledger.walk() if c.trailer("File") == old.name)
    assert commit.trailer("Import-Source") == f"http://index.test/files/{old.name}"
    assert commit.trailer("Upload-Time") == "2020-01-02T03:04:05.678901+00:00"

    index.requests.clear()
    head = target.ledger.head()
    summary, seen = await imp(target, index.source())
    assert summary.counts == {"imported": 0, "skipped": 2, "refused": 1, "conflict": 0}
    assert index.downloads() == [lying.name]  # the name and sha256 we hold are enough to skip
    assert target.ledger.head() == head


async def test_an_html_index_with_credentials_that_never_leave_its_origin(target, tmp_path):
    secret = "Basic " + base64.b64encode(b"__token__:s3cret").decode()
    index = FakeIndex(tmp_path, fmt="html", auth=secret)
    for project in ("html-a", "html-b"):
        index.add(make_wheel(tmp_path, project, "1.0"), project)
    with pytest.raises(RegistryError, match="answered 401 Unauthorized.*--token"):
        await imp(target, index.source())
    summary, seen = await imp(target, index.source(["HTML_B"], token="s3cret"))
    assert summary.counts["imported"] == 1 and list(seen) == ["html_b-1.0-py3-none-any.whl"]
    pages = [r for r in index.requests if r.url.host == "index.test"]
    files = [r for r in index.requests if r.url.host == "files.test"]
    assert pages and all(r.headers["authorization"] == secret for r in pages[1:])
    assert files and not any("authorization" in r.headers for r in files)
    assert all(r.headers["accept"].startswith("application/vnd.pypi.simple.v1+json") for r in pages)
    with pytest.raises(RegistryError, match="has no project 'missing'"):
        await imp(target, index.source(["missing"], token="s3cret"))


async def test_an_unreachable_index_is_one_error(target):
    def refuse(request):
        raise httpx.ConnectError("connection refused", request=request)

    source = importer.IndexSource("http://index.test/simple", transport=httpx.MockTransport(refuse))
    with pytest.raises(RegistryError, match="Can't reach the index at http://index.test/simple/"):
        await imp(target, source)




def test_on_a_terminal_a_progress_bar_then_the_summary(target, tmp_path, capsys, monkeypatch):
    from registry import cli

    (tmp_path / "src").mkdir()
    for i in range(3):
        make_wheel(tmp_path / "src", "tty-pkg", f"1.{i}")
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    code = cli.main(["--data", target.settings.data, "import", "mig", "--repo", "libs", str(tmp_path / "src")])
    out = capsys.readouterr().out
    assert code == 0
    assert "3/3" in out and "files/s" in out and "3 new" in out  # rich's bar, as last drawn
    assert "imported  " not in out  # (no line per file on a terminal)
    assert out.splitlines()[-1].endswith(" MiB/s)") and "imported 3, skipped 0, refused 0, conflicts 0 (3 files" in out


@pytest.mark.parametrize("front", ["pypiserver", "404", "none"])
@pytest.mark.parametrize("given", ["http://index.test", "http://index.test/"])
async def test_an_index_given_by_its_root_is_read_at_its_simple_api(target, tmp_path, front, given):
    """pypiserver's `/` is a welcome page that links to `/simple/` (and `/packages/`, "here"): read
    as a project list, its links became projects ("refused here/"). The root as users give it finds
    the Simple API, and says so; a root that is the Simple API itself is read as it is."""
    index = FakeIndex(tmp_path, fmt="html")
    index.add(make_wheel(tmp_path, "root-lib", "1.0"), "root-lib")

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/":
            index.requests.append(request)
            if front == "404":
                return httpx.Response(404)
            if front == "pypiserver":
                return index._html('<p>The list of all packages is <a href="/packages/">here</a> or via the '
                                   '<a href="/simple/">simple</a> index.</p>')
            request = httpx.Request("GET", "http://index.test/simple/", headers=request.headers)  # (a PEP 503 root)
        return index.handler(request)

    source = importer.IndexSource(given, transport=httpx.MockTransport(handler))
    summary, seen = await imp(target, source)
    assert summary.counts == {"imported": 1, "skipped": 0, "refused": 0, "conflict": 0}, seen
    assert list(seen) == ["root_lib-1.0-py3-none-any.whl"]
    if front == "none":
        assert source.notes == [] and summary.source == "http://index.test/"
    else:
        assert summary.source == "http://index.test/simple/"
        what = "front page" if front == "pypiserver" else "root (a 404)"
        assert source.notes == [f"http://index.test/ is the index's {what}, not its Simple API: imported from "
                                "http://index.test/simple/, the index URL pip takes."]


async def test_a_root_that_is_not_an_index_and_has_none_under_it_is_one_error(target):
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404)

    head = target.ledger.head()
    with pytest.raises(RegistryError, match=r"Nothing at http://index.test/ \(404\)"):
        await imp(target, importer.IndexSource("http://index.test/", transport=httpx.MockTransport(handler)))
    assert target.ledger.head() == head
