"""A filename can't rewrite the header, URL or page it ends up in.

Whatever filename the registry accepts is one packaging parses, holds only the characters a real
distribution's name can, and comes back, from the Content-Disposition it is downloaded with, as
exactly itself, with one filename* and nothing else: checked over generated names (Hypothesis) at
the gate the upload and the importer share, and over HTTP for names generated around the valid
ones. A file an earlier release accepted under a name that breaks a naive header (there is one in
issue 21) still downloads under exactly that name, from the registry and from a bucket.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import re
import zipfile
from email.message import Message
from email.utils import collapse_rfc2231_value
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from litestar.testing import TestClient
from packaging.utils import parse_sdist_filename, parse_wheel_filename
from werkzeug.http import parse_options_header

from registry import dists, identity, operations
from registry.config import Settings
from registry.datadir import Registry
from registry.disposition import attachment
from registry.errors import Invalid
from registry.web.app import create_asgi
from tests.support.world import BOTH, WS
from tests.unit.web.test_upload import state

SAFE = re.compile(r"[A-Za-z0-9._+!-]+")
EVIL = ["pkg-1.0-py3-none-any\";filename*=utf8''evil.exe;x=\".whl", "pkg-1.0-py3-none-<img src=x onerror=alert(1)>.whl",
        "pkg-1.0-py3-none-any.whl\r\nSet-Cookie: a=b", "pkg-1.0-py3-none-%41ny.whl", "pkg-1.0-py3-nöne-any.whl",
        "pkg-1.0-py3-none-any .whl", "pkg-1.0-py3-none-a\\ny.whl", "pkg';x=1-1.0.tar.gz", "pkg-1.0;.zip",
        "pkg-1.0-py3-none-any;.whl", "pkg-1.0-py3-none-any..whl", "pkg-1.0-py3-none-.any.whl", "pkg-1.0-py3--any.whl"]
REAL = ["numpy-2.1.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", "six-1.16.0-py2.py3-none-any.whl",
        "numpy-2.2.0-cp313-cp313t-win_amd64.whl", "pkg-1.0-graalpy311-graalpy242_311_native-manylinux_2_28_x86_64.whl",
        "torch-2.1.0+cu118-cp311-cp311-linux_x86_64.whl", "pkg-1!2.0-1a-pp310-pypy310_pp73-macosx_10_9_x86_64.whl",
        "Real.SetupTools69-1.0.0-py3-none-any.whl", "zope.interface-6.0.tar.gz", "Acme.Utils-1.0.0.zip",
        "foo-bar-1.0.post1.tar.gz", "acme_utils-2.0.0rc1+local.7.tar.gz",
        "pkg-1.0-cp313-cp313-ios_13_0_arm64_iphoneos.whl"]


def served_name(header: str, name: str) -> None:
    """``header`` names exactly ``name``: to an RFC 6266 reader (werkzeug's), to the standard library's
    MIME reader (both its filename and its filename*), with one filename* and a plain, safe filename."""
    assert parse_options_header(header) == ("attachment", {"filename": name}), header
    message = Message()
    message["content-disposition"] = header
    params = message.get_params(header="content-disposition")
    extended = [value for key, value in params if key == "filename" and isinstance(value, tuple)]
    assert len(extended) == 1 and extended[0][0] == "UTF-8" and collapse_rfc2231_value(extended[0]) == name, header
    plain = [value for key, value in params if key == "filename" and isinstance(value, str)]
    assert len(plain) == 1 and SAFE.fullmatch(plain[0]), header
    assert header.count("filename*") == 1 and "\r" not in header and "\n" not in header


def accepted(filename: str) -> bool:
    try:
        dists.check_filename(filename)
    except Invalid:
        return False
    return True


# --- the gate, over generated names --------------------------------------------------------------

PIECE = st.text(st.sampled_from("aZ09._+!-"), min_size=1, max_size=8)
ANYTHING = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=8)
PART = st.one_of(PIECE, ANYTHING, st.sampled_from(['any";filename*=x', "<img onerror=x>", "%22", "a b", "a\\b", "a;b"]))
NAME = st.from_regex(r"[A-Za-z][A-Za-z0-9_.]{0,6}[A-Za-z0-9]", fullmatch=True)
VERSION = st.from_regex(r"([0-9]!)?[0-9]{1,2}(\.[0-9]{1,2}){0,2}(rc[0-9]|\.post[0-9])?"
                        r"(\+[a-z0-9]{1,3}(\.[a-z0-9]{1,3})?)?", fullmatch=True)
BUILD = st.from_regex(r"[0-9][a-z0-9_]{0,3}", fullmatch=True)
TAGS = st.from_regex(r"[A-Za-z0-9_]{1,6}(\.[A-Za-z0-9_]{1,6}){0,2}", fullmatch=True)


def mostly(good):
    """``good``, or now and then (one time in eight) anything at all in its place."""
    return st.sampled_from(range(8)).flatmap(lambda i: PART if i == 7 else good)


WHEELS = st.builds(lambda n, v, b, t: "-".join([n, v, *b, *t]) + ".whl", mostly(NAME), mostly(VERSION),
                   st.lists(mostly(BUILD), max_size=1), st.tuples(mostly(TAGS), mostly(TAGS), mostly(TAGS)))
ARBITRARY = st.builds(lambda parts, ext: "-".join(parts) + ext, st.lists(PART, min_size=2, max_size=6),
                      st.sampled_from([".whl", ".tar.gz", ".zip"]))
SDISTS = st.builds(lambda n, v, ext: f"{n}-{v}{ext}", mostly(st.from_regex(r"[A-Za-z][A-Za-z0-9_.-]{0,6}[A-Za-z0-9]",
                                                                          fullmatch=True)),
                   mostly(VERSION), st.sampled_from([".tar.gz", ".zip"]))


@given(st.one_of(WHEELS, SDISTS, ARBITRARY, st.sampled_from(EVIL + REAL)))
@settings(max_examples=3000, deadline=None, derandomize=True, database=None)
@example(EVIL[0])
def test_every_accepted_filename_parses_is_safe_and_is_served_as_itself(filename):
    event("accepted" if accepted(filename) else "refused")  # (--hypothesis-show-statistics: both, often)
    if not accepted(filename):
        return
    if filename.endswith(".whl"):
        parse_wheel_filename(filename)
    else:
        parse_sdist_filename(filename)
    assert SAFE.fullmatch(filename)
    served_name(attachment(filename), filename)


def test_real_filenames_are_accepted_and_the_evil_ones_refused():
    assert [name for name in REAL if not accepted(name)] == []
    assert [name for name in EVIL if accepted(name)] == []


@given(st.text(min_size=1, max_size=300))
@settings(max_examples=2000, deadline=None, derandomize=True, database=None)
def test_any_name_at_all_is_served_as_itself(filename):
    """Whatever a ledger holds (an earlier release accepted more), the header names exactly it."""
    served_name(attachment(filename), filename)


# --- the registry, over HTTP ---------------------------------------------------------------------

VERSIONS = itertools.count(1)


def wheel_bytes(filename: str, name: str, version: str) -> bytes:
    name_part, version_part = filename.split("-")[:2]
    dist_info = f"{name_part}-{version_part}.dist-info"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{dist_info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
        zf.writestr(f"{dist_info}/WHEEL", "Wheel-Version: 1.0\nRoot-Is-Purelib: true\n")
        zf.writestr(f"{dist_info}/RECORD", "")
    return out.getvalue()


@pytest.fixture
def app(world):
    with TestClient(app=create_asgi(world.reg.settings, world.reg)) as client:
        yield client


@given(build=st.one_of(st.none(), mostly(BUILD)),
       local=st.one_of(st.none(), st.from_regex(r"[a-z0-9]{1,4}(\.[a-z0-9]{1,4})?", fullmatch=True)),
       tags=st.tuples(mostly(TAGS), mostly(TAGS), mostly(TAGS)),
       spelling=st.sampled_from(["public_pkg", "Public_Pkg", "public.pkg"]))
@settings(max_examples=100, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_whatever_the_registry_accepts_downloads_under_its_own_name(app, world, build, local, tags, spelling):
    version = f"1.{next(VERSIONS)}" + (f"+{local}" if local else "")
    filename = "-".join([spelling, version, *([build] if build is not None else []), *tags]) + ".whl"
    content = wheel_bytes(filename, "public-pkg", version)
    before = state(world)
    r = app.post(f"/{WS}/", headers=world.basic("wsadmin@acme.test"), files={"content": (filename, content)}, data={
        ":action": "file_upload", "name": "public-pkg", "version": version, "filetype": "bdist_wheel",
        "pyversion": "py3", "sha256_digest": hashlib.sha256(content).hexdigest()})
    event("accepted" if r.status_code == 200 else "refused")
    if r.status_code != 200:  # refused: for its name, and nothing changed
        assert r.status_code == 400 and "filename" in r.text, r.text
        assert state(world) == before
        return
    assert f": {filename} (commit" in r.text  # (the name as sent, not as a client re-encoded it)
    assert SAFE.fullmatch(filename)
    parse_wheel_filename(filename)
    for url in (f"/{WS}/public-pkg/{version}/{filename}", f"/-/{WS}/packages/public-pkg/{version}/files/{filename}"):
        got = app.get(url)  # (a public repository's file: anyone may)
        assert got.status_code == 200 and got.content == content, (url, got.status_code)
        served_name(got.headers["content-disposition"], filename)


# --- a file an earlier release accepted ----------------------------------------------------------


def record_as_an_earlier_release_did(reg: Registry, filename: str) -> bytes:
    """Publish a wheel of `pkg` 1.0 under ``filename``, as a release without today's filename rules
    accepted it (dists.inspect reading a recorded file applies none of them)."""
    op = identity.operator()
    operations.create_package(reg, op, "cli", WS, "pkg", "public-lib")
    content = wheel_bytes(filename, "pkg", "1.0")
    with reg.blobs.stage() as staged:
        staged.write(content)
        staged.finish()
        with staged.open() as source:
            dist = dists.inspect(source, filename, recorded=True)
        operations.publish_file(reg, op, "upload", WS, dist, staged)
    return content


@BOTH
@pytest.mark.parametrize("filename", ["pkg-1.0-py3-none-any\";filename*=utf8''evil.exe;x=\".whl",
                                      "pkg-1.0-py3-none-<img src=x onerror=alert(1)>.whl"])
def test_a_file_recorded_under_a_bad_name_still_downloads_as_itself(world, backend, filename):
    content = record_as_an_earlier_release_did(world.reg, filename)
    with TestClient(app=create_asgi(world.reg.settings, world.reg)) as app:
        for url in (f"/{WS}/pkg/1.0/{quote(filename)}", f"/-/{WS}/packages/pkg/1.0/files/{quote(filename)}"):
            got = app.get(url)
            assert got.status_code == 200 and got.content == content, (url, got.status_code, got.text[:200])
            served_name(got.headers["content-disposition"], filename)
    if backend == "s3":  # and from the bucket, by a presigned URL
        fields = world.reg.settings.__struct_fields__
        redirecting = Settings(**{**{f: getattr(world.reg.settings, f) for f in fields}, "blobs_redirect": True})
        with TestClient(app=create_asgi(redirecting, Registry(redirecting, world.reg.ledger, world.reg.blobs))) as app:
            r = app.get(f"/{WS}/pkg/1.0/{quote(filename)}", follow_redirects=False)
        assert r.status_code == 302
        got = httpx.get(r.headers["location"])
        assert got.status_code == 200 and got.content == content
        served_name(got.headers["content-disposition"], filename)
