"""Oversize and malformed input at every route and every CLI command (issue 21): names around 64 KiB,
control characters, markup, NUL, undecodable bytes, huge numbers, deeply nested JSON. Every answer
is a 4xx that says what was wrong (never a 500), every refused command exits non-zero with one line
on stderr (never a traceback), and nothing is committed.

The routes are the app's own route table (the OpenAPI document lists only the API's), walked with
one bad value at a time in each path parameter, every query parameter and every request body; the
commands are the CLI's own argument parser, walked the same way."""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import zipfile
from urllib.parse import quote

import pytest

from registry import identity, operations
from registry.cli import main as cli_main
from registry.cli.args import parser as cli_parser
from registry.errors import MESSAGE_LIMIT, RegistryError
from tests.support.helpers import make_wheel
from tests.support.inputs import HUGE_NUMBER
from tests.support.world import WS, publish, upload_form

OP = identity.operator()
# A path segment an HTTP client still sends (httpx stops at 64 KiB for the whole URL), and the rest.
IN_PATH = ["a" * 60_000, "é" * 300, "\x00", "a\nb", "<img src=x onerror=alert(1)>", HUGE_NUMBER, "..", "\ud800"]
IN_QUERY = ["a" * 60_000, "\x00", HUGE_NUMBER, "-1", "\ud800"]
GOOD = {"ws": WS, "project": "acme-utils", "name": "acme-utils", "version": "1.0", "at": "@HEAD", "tail": "json",
        "filename": "acme_utils-1.0-py3-none-any.whl", "key": "CORE", "repo": "utils", "secret": "rgl_x",
        "token_id": "0123456789abcdef", "commit_id": "0123456", "sha256": "0" * 64, "rest": "info/refs",
        "file_path": "ui/ui.css", "path": "swagger"}
QUERY = ("q", "page", "per_page", "type", "sort", "limit", "format", "wait", "service", "next", "repo")
NESTED = "[" * 100_000 + "]" * 100_000
BODIES = [
    json.dumps({"name": "a" * 100_000, "repository": "public-lib"}),
    json.dumps({"name": "ok-name", "repository": "a" * 65536}),
    json.dumps({"name": "x\u0000y", "repository": "public-lib"}), json.dumps({"reason": "a" * 100_000}),
    json.dumps({"reason": "a\x00\n<script>"}), json.dumps({"name": HUGE_NUMBER, "repository": 1e308}),
    '{"name": ' + HUGE_NUMBER + ', "reason": ' + HUGE_NUMBER + "}", NESTED, '{"reason": ' + NESTED + "}", "\udcff",
]


def _encoded(value: str) -> str:
    encoded = quote(value.encode("utf-8", "surrogatepass"), safe="")
    # (a client resolves a bare '..' itself: /versions/.. would be the package's own URL)
    return encoded.replace(".", "%2E") if value in (".", "..") else encoded


def _requests(app) -> list[tuple[str, str, dict]]:
    """(method, url, extra) for every route and method: one bad value in one place at a time."""
    out = []
    for route in app.routes:
        template = route.path
        params = re.findall(r"{(\w+):\w+}", template)
        for method in sorted(set(getattr(route, "methods", ())) - {"OPTIONS", "HEAD"}):
            def url(_params=params, _template=template, **given):
                values = {p: _encoded(given.get(p, GOOD.get(p, "x"))) for p in _params}
                return re.sub(r"{(\w+):\w+}", lambda m: values[m.group(1)], _template)

            for p in params:
                out += [(method, url(**{p: bad}), {}) for bad in IN_PATH]
            if method == "GET":
                out += [(method, url() + "?" + "&".join(f"{q}={_encoded(bad)}" for q in QUERY), {}) for bad in IN_QUERY]
            elif method == "POST":  # (a DELETE's body means nothing: with every parameter good, it deletes)
                out += [(method, url(), {"content": body.encode("utf-8", "surrogatepass"),
                                         "headers": {"content-type": "application/json"}}) for body in BODIES]
    return out


@pytest.fixture
def published(world, tmp_path):
    """The world, with a version of each package, so that a bad value elsewhere reaches deep code."""
    for name in ("Acme.Utils", "public-pkg"):
        publish(world.reg, OP, make_wheel(tmp_path, name, "1.0"))
    return world


async def test_every_route_refuses_malformed_input_with_a_4xx(client, published):
    reg, head = published.reg, published.reg.ledger.head()
    as_admin = published.basic("wsadmin@acme.test")
    failures = []
    for method, url, extra in _requests(client.served.app):
        if len(url) > 65_000:
            continue
        headers = {**as_admin, **extra.pop("headers", {})}
        r = await client.request(method, url, headers=headers, **extra)
        # (a request that was good after all, a body with nothing wrong in what the route reads, may change things)
        if r.status_code >= 500 or (r.status_code >= 400 and reg.ledger.head() != head):
            failures.append((method, url[:160], r.status_code, r.text[-300:]))
        head = reg.ledger.head()
        if r.headers.get("content-type", "").startswith("application/problem+json"):
            assert len(r.json()["detail"]) <= MESSAGE_LIMIT + 100
    assert failures == [], "\n".join(map(repr, failures))


async def test_the_upload_form_refuses_malformed_fields_with_a_4xx(client, published, tmp_path):
    reg, head = published.reg, published.reg.ledger.head()
    path = make_wheel(tmp_path, "Acme.Utils", "2.0")
    bad_fields = {"name": IN_PATH, "version": [*IN_PATH, "1." + "9" * 200, "1.0+" + "a" * 300], "filetype": IN_PATH[:4],
                  "sha256_digest": IN_PATH[:4], "filename": ["a" * 60_000 + ".whl", "\x00.whl"]}
    failures = []
    for field, values in bad_fields.items():
        for bad in values:
            fields, files = upload_form(path)
            if field == "filename":
                files = {"content": (bad, path.read_bytes(), "application/octet-stream")}
            else:
                fields[field] = bad.encode("utf-8", "surrogatepass")
            r = await client.post(f"/{WS}/", data=fields, files=files, headers=published.basic("dev@acme.test"))
            if not 400 <= r.status_code < 500 or reg.ledger.head() != head:
                failures.append((field, bad[:40], r.status_code, r.text[:200]))
                head = reg.ledger.head()
    assert failures == [], "\n".join(map(repr, failures))


async def test_a_huge_version_inside_the_file_is_a_400(client, published, tmp_path):
    """The version the metadata gives is bounded too, before packaging parses it."""
    path = make_wheel(tmp_path, "Acme.Utils", "3.0")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(tmp_path / "huge.whl", "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            dst.writestr(info, data.replace(b"Version: 3.0", b"Version: " + HUGE_NUMBER.encode()) if
                         info.filename.endswith("METADATA") else data)
    fields, files = upload_form(path)
    files = {"content": (path.name, (tmp_path / "huge.whl").read_bytes(), "application/octet-stream")}
    fields.pop("sha256_digest"), fields.pop("blake2_256_digest")
    fields["md5_digest"] = hashlib.md5(files["content"][1]).hexdigest()
    head = published.reg.ledger.head()
    r = await client.post(f"/{WS}/", data=fields, files=files, headers=published.basic("dev@acme.test"))
    assert r.status_code == 400 and "Versions are at most 128 characters; this one has 5001" in r.text, r.text
    assert published.reg.ledger.head() == head


# --- the command line ----------------------------------------------------------------------------

IN_ARGV = ["a" * 65536, "a\nb", "Eve <img src=x onerror=alert(1)>", HUGE_NUMBER, "\udcff"]
NOT_HERE = {"serve", "witness", "blobs", "init", "backup", "restore"}  # (they start servers, reach out, or make
# a new data directory or a backup directory: where a test runs; tests/unit/backups/ refuses their bad input)
ARGV_GOOD = {"slug": "newws", "workspace": WS, "key": "NEWKEY", "target": f"{WS}/utils", "email": "dev@acme.test",
             "token_id": "0123456789abcdef", "name": "acme-utils", "version": "1.0", "role": "read", "url": "http://127.0.0.1:1",
             "directory": "/nonexistent", "package": "acme-utils", "paths": "workspaces/nothing"}


def _commands() -> list[tuple[list[str], dict[str, argparse.Action]]]:
    """Every subcommand's words, and its arguments by destination."""
    found = []

    def walk(parser: argparse.ArgumentParser, words: list[str]) -> None:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            found.append((words, {a.dest: a for a in parser._actions if a.dest not in ("help", "data", "actor")}))
        for sub in subs:
            for name, child in sub.choices.items():
                if not words and name in NOT_HERE:
                    continue
                walk(child, [*words, name])

    walk(cli_parser(), [])
    return found


def _argv(words: list[str], actions: dict[str, argparse.Action], bad_dest: str | None, bad: str) -> list[str]:
    argv = list(words)
    for dest, action in actions.items():
        value = bad if dest == bad_dest else ARGV_GOOD.get(dest)
        if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
            continue
        if action.option_strings:
            if dest == bad_dest:
                argv += [action.option_strings[0], value]
        elif value is not None:
            argv.append(value)
        elif action.nargs not in ("?", "*"):
            argv.append("x")
    return argv


def test_every_command_refuses_malformed_arguments_in_one_line(world, capsys):
    reg = world.reg
    data = ["--data", str(reg.settings.data_path)]
    failures = []
    for words, actions in _commands():
        takes_values = [d for d, a in actions.items() if a.nargs != 0]  # (flags take none)
        for dest in [*takes_values, *(["actor"] if words == ["workspace", "list"] else [])]:
            for bad in IN_ARGV:
                argv = [*data, *(["--actor", bad] if dest == "actor" else []),
                        *_argv(words, actions, dest if dest != "actor" else None, bad)]
                head = reg.ledger.head()
                try:
                    code = cli_main(argv)
                except SystemExit as exc:  # argparse's own refusal (exit 2, its usage)
                    code = exc.code
                except Exception as exc:  # a traceback
                    failures.append((words, dest, bad[:30], f"{type(exc).__name__}: {str(exc)[:200]}"))
                    continue
                err = capsys.readouterr().err
                if code == 1 and len(err.strip().splitlines()) != 1:
                    failures.append((words, dest, bad[:30], f"stderr: {err[:300]!r}"))
                if code != 0 and reg.ledger.head() != head:
                    failures.append((words, dest, bad[:30], "refused, yet committed"))
    assert failures == [], "\n".join(map(repr, failures))
    assert cli_main([*data, "verify", "--quick"]) == 0, capsys.readouterr().out


def test_the_number_is_in_the_message(world):
    """A bound's refusal says the bound and what was given."""
    reg = world.reg
    cases = [
        (lambda v: operations.create_package(reg, OP, "cli", WS, v, "utils"), "p" * 100_000,
         "Package names are at most 200 characters; this one has 100000."),
        (lambda v: operations.create_user(reg, OP, "cli", v), "u@" + "d" * 300,
         "Email addresses are at most 250 characters; this one has 302."),
        (lambda v: operations.create_user(reg, OP, "cli", "new@acme.test", v), "n" * 251,
         "Names are at most 250 characters; this one has 251."),
        (lambda v: operations.yank(reg, OP, "cli", WS, "acme-utils", "1.0", v), "r" * 513,
         "Yank reasons are at most 512 characters; this one has 513."),
        (lambda v: operations.delete_version(reg, OP, "cli", WS, "acme-utils", v), HUGE_NUMBER,
         "Versions are at most 128 characters; this one has 5001."),
        (lambda v: operations.create_token(reg, OP, "cli", "dev@acme.test", label=v), "l" * 201,
         "Token labels are at most 200 characters; this one has 201."),
        (lambda v: operations.create_workspace(reg, OP, "cli", "w" * 63), None,
         "Workspace slugs are at most 62 characters; this one has 63."),
    ]
    head = reg.ledger.head()
    for call, value, message in cases:
        with pytest.raises(RegistryError) as refused:
            call(value)
        assert getattr(refused.value, "status", None) == 400 and refused.value.message == message
    with pytest.raises(RegistryError) as refused:
        operations.create_user(reg, OP, "cli", "eve@acme.test", "Eve <eve@evil.example>")
    assert "Names can't hold '<' or '>'" in refused.value.message
    with pytest.raises(RegistryError) as refused:
        operations.create_user(reg, OP, "cli", "eve@acme.test", "Eve\x00")
    assert "one line of text: this one holds U+0000" in refused.value.message
    assert reg.ledger.head() == head
