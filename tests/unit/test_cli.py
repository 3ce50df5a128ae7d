import re
import subprocess
import sys

import pytest

from registry.cli import main
from registry.ledger import Ledger


@pytest.fixture
def cli(tmp_path, capsys, monkeypatch):
    data = tmp_path / "data"
    monkeypatch.delenv("REGISTRY_DATA", raising=False)

    def run(*args):
        code = main(["--data", str(data), *args])
        out, err = capsys.readouterr()
        return code, out, err

    run.data = data
    run.head = lambda: Ledger.open(data / "ledger.git").head()
    return run


@pytest.fixture
def seeded(cli):
    for args in [
        ["init"],
        ["workspace", "create", "acme", "--name", "Acme Inc", "--uuid", "1DE489BE-CE6A-42A0-A8C8-EADBF1174AC7"],
        ["project", "create", "acme", "core", "--name", "Core"],
        ["repo", "create", "acme/utils", "--project", "CORE"],
        ["user", "create", "dev@example.com", "--name", "Dev Eloper"],
    ]:
        assert cli(*args)[0] == 0, args
    return cli


def test_the_documented_commands(seeded):
    cli = seeded
    code, out, err = cli("token", "create", "dev@example.com", "--scope", "read", "--expires-days", "30")
    assert code == 0 and out.startswith("rgy_") and len(out.strip()) > 40 and out.count("\n") == 1
    assert "shown only once" in err and "(read, expires" in err
    token_id = err.split()[1]
    assert cli("grant", "acme/utils", "dev@example.com", "write")[0] == 0
    assert cli("user", "create", "boss@example.com")[0] == 0
    assert cli("grant", "acme", "boss@example.com", "admin")[0] == 0
    assert cli("grant", "acme", "--project", "core", "dev@example.com", "read")[0] == 0
    assert cli("--actor", "boss@example.com", "package", "create", "acme", "Acme.Utils", "--repo", "utils")[0] == 0
    assert cli("revoke", "acme/utils", "dev@example.com")[0] == 0
    assert cli("token", "revoke", "dev@example.com", token_id)[0] == 0
    code, out, _ = cli("token", "list", "dev@example.com")
    assert token_id in out and "revoked" in out
    code, out, _ = cli("log")
    assert code == 0
    assert "create package acme-utils in acme, linked to acme/utils" in out
    assert "boss@example.com" in out  # --actor is recorded as the author
    code, out, _ = cli("log", "acme", "acme-utils")
    assert out.count("\n    create package") == 1 and "revoke" not in out
    code, out, _ = cli("workspace", "list")
    assert out.strip() == "acme\t{1de489be-ce6a-42a0-a8c8-eadbf1174ac7}\tAcme Inc"


@pytest.mark.parametrize("args, message", [
    (["workspace", "create", "Bad Slug"], "Invalid workspace slug"),
    (["workspace", "create", "acme"], "already exists"),
    (["workspace", "create", "other", "--uuid", "1de489be-ce6a-42a0-a8c8-eadbf1174ac7"], "already belongs"),
    (["workspace", "create", "x", "--uuid", "not-a-uuid"], "Invalid UUID"),
    (["project", "create", "nope", "CORE"], "Workspace 'nope' does not exist"),
    (["project", "create", "acme", "core"], "already exists"),
    (["project", "create", "acme", "9lives"], "Invalid project key"),
    (["repo", "create", "acme/utils", "--project", "CORE"], "already exists"),
    (["repo", "create", "acme/new", "--project", "NOPE"], "Project NOPE does not exist"),
    (["repo", "create", "acme", "--project", "CORE"], "Expected WS/REPO"),
    (["repo", "create", "acme/Bad Repo", "--project", "CORE"], "Invalid repository slug"),
    (["user", "create", "not-an-email"], "Invalid email"),
    (["user", "create", "dev@example.com"], "already exists"),
    (["token", "create", "ghost@example.com"], "does not exist"),
    (["token", "create", "dev@example.com", "--expires-days", "0"], "positive"),
    (["token", "revoke", "dev@example.com", "abcdef0123"], "has no token"),
    (["grant", "acme/utils", "dev@example.com", "owner"], "Invalid role"),
    (["grant", "acme/utils", "ghost@example.com", "read"], "does not exist"),
    (["grant", "acme/nope", "dev@example.com", "read"], "Repository acme/nope does not exist"),
    (["grant", "acme", "dev@example.com", "write"], "only the admin role"),
    (["revoke", "acme/utils", "dev@example.com"], "has no grant"),
    (["package", "create", "acme", "bad name!", "--repo", "utils"], "Invalid package name"),
    (["package", "create", "acme", "pkg", "--repo", "nope"], "does not exist"),
    (["package", "create", "nope", "pkg", "--repo", "utils"], "does not exist"),
    (["token", "create", "dev@example.com", "--witness", "--replica"], "Give one of --scope, --witness and --replica"),
    (["token", "create", "dev@example.com", "--witness", "--scope", "read"], "Give one of --scope, --witness"),
    (["import", "acme", "--repo", "utils", "--index-url", "http://127.0.0.1:9/simple/", "--username", "u"],
     "--username needs --password ('-' reads the password from stdin)"),
    (["import", "acme", "--repo", "utils", "--index-url", "http://127.0.0.1:9/simple/", "--password", "p"],
     "--password needs --username"),
    (["import", "acme", "--repo", "utils", "--index-url", "http://127.0.0.1:9/simple/", "--token", "t",
      "--username", "u", "--password", "p"], "Give --token, or --username and --password, not both"),
    (["trust", "acme", "--audience", "x"], "--audience and --jwks-file need --issuer"),
    (["trust", "acme", "--jwks-file", "/nonexistent"], "--audience and --jwks-file need --issuer"),
    (["trust", "--audience", "x"], "--audience and --jwks-file need --issuer"),
    (["trust", "acme", "--remove", "--audience", "x"], "--remove takes no --audience or --jwks-file"),
    (["untrust", "acme"], "Workspace acme trusts no pipeline issuer."),
    (["untrust", "acme", "--issuer", "https://example.com/" + "x" * 2000], "Issuer URLs are at most"),
    (["repo", "set", "acme/nope", "--create-on-publish"], "Repository acme/nope does not exist"),
    (["repo", "set", "nope/utils", "--no-create-on-publish"], "does not exist"),
])
def test_bad_input_is_one_clear_line_and_commits_nothing(seeded, args, message):
    head = seeded.head()
    code, out, err = seeded(*args)
    assert code != 0
    assert err.startswith("registry: ") and message in err and err.count("\n") == 1, err
    assert seeded.head() == head


def test_duplicate_package_names_are_refused_after_normalisation(seeded):
    assert seeded("package", "create", "acme", "Acme.Utils", "--repo", "utils")[0] == 0
    code, _, err = seeded("package", "create", "acme", "acme_utils", "--repo", "utils")
    assert code == 1 and "already exists" in err


def test_commands_need_an_initialised_data_directory(cli):
    code, _, err = cli("workspace", "create", "acme")
    assert code == 1 and "registry init" not in err  # (that would make a second, empty registry)
    assert f"No registry at {cli.data}" in err and "--data DIR or REGISTRY_DATA=DIR" in err


def test_outside_the_data_directory_it_says_where_it_looked_and_how_to_point_at_it(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("REGISTRY_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["token", "list", "dev@example.com"]) == 1
    err = capsys.readouterr().err
    assert f"No registry at {tmp_path / 'registry-data'} (the default, ./registry-data" in err
    assert err.count("\n") == 1 and "Traceback" not in err


@pytest.mark.parametrize("args, message", [
    (["package", "list", "nope"], "Workspace 'nope' does not exist (workspaces: acme)"),
    (["log", "nope"], "Workspace 'nope' does not exist"),
    (["log", "acme", "nope"], "Package 'nope' does not exist in workspace acme, and never did"),
    (["token", "list", "ghost@example.com"], "There is no user ghost@example.com"),
    (["package", "delete", "acme", "nope"], "Package 'nope' does not exist in workspace acme."),
    (["version", "delete", "acme", "nope", "1.0"], "Package 'nope' does not exist in workspace acme."),
])
def test_looking_up_what_does_not_exist_is_an_error(seeded, args, message):
    code, out, err = seeded(*args)
    assert code == 1 and out == "" and err.startswith(f"registry: {message}") and err.count("\n") == 1, err


def test_a_token_is_revoked_by_its_id_or_by_the_leaked_secret_which_is_never_printed(seeded):
    cli = seeded
    _, secret, err = cli("token", "create", "dev@example.com", "--label", "laptop")
    secret = secret.strip()
    token_id = err.split()[1]
    _, other, _ = cli("token", "create", "dev@example.com")
    code, out, err = cli("token", "revoke", "dev@example.com", secret.upper())  # mangled: not a token
    assert code == 1 and secret.upper() not in err and secret.lower() not in err.lower() and "Invalid token id" in err
    code, out, err = cli("token", "revoke", "dev@example.com", secret)
    assert code == 0 and out.startswith(f"revoked token {token_id} of dev@example.com (write, created ")
    assert "'laptop'" in out and secret not in out + err
    code, _, err = cli("token", "revoke", "dev@example.com", "rgy_" + "x" * 43)  # a secret we never issued
    assert code == 1 and "has no token with that secret" in err and "rgy_" not in err
    code, out, _ = cli("token", "list", "dev@example.com")
    lines = out.splitlines()
    assert lines[0].split() == ["ID", "SCOPE", "CREATED", "STATE", "LABEL"] and len(lines) == 3
    assert "revoked" in lines[1] and "laptop" in lines[1] and "active" in lines[2]
    assert secret not in out and other.strip() not in out


def test_an_expired_token_is_listed_as_expired(seeded, monkeypatch):
    from datetime import timedelta

    from registry import model

    cli = seeded
    real = model.now
    monkeypatch.setattr(model, "now", lambda: real() - timedelta(days=3))  # created three days ago...
    cli("token", "create", "dev@example.com", "--expires-days", "1")  # ...for one day
    monkeypatch.undo()
    cli("token", "create", "dev@example.com", "--expires-days", "1")
    rows = cli("token", "list", "dev@example.com")[1].splitlines()[1:]
    assert [r.split()[3] for r in rows] == ["expired", "expires"]


def test_console_script_entry_point(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "registry", "--data", str(tmp_path / "d"), "init"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "created an empty ledger" in proc.stdout
    proc = subprocess.run([sys.executable, "-m", "registry", "--data", str(tmp_path / "d"), "init"],
                          capture_output=True, text=True)
    assert proc.returncode == 1 and "already exists" in proc.stderr


def test_a_busy_port_is_refused_before_anything_is_bootstrapped(tmp_path):
    """Another program on the port: `serve` says so in one line, and creates nothing (a token it
    printed and then lost would be gone for good)."""
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        proc = subprocess.run([sys.executable, "-m", "registry", "--data", str(tmp_path / "data"), "serve",
                               "--port", str(port)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr == (f"registry: 127.0.0.1:{port} is already in use (another registry, or another program, "
                           "listens there): stop it, or choose another port with --port or REGISTRY_PORT.\n")
    assert not (tmp_path / "data").exists()


def test_the_startup_settings_tell_twine_users_where_the_reason_is():
    from registry.server import client_settings

    text = client_settings("http://127.0.0.1:8080/default", "a@example.com", "rgy_x")
    assert "--verbose" in text and "a%40example.com" in text and "uv add --index registry=" in text


def test_package_policy_without_options_prints_the_policy_and_changes_nothing(seeded):
    assert seeded("package", "create", "acme", "Acme.Utils", "--repo", "utils")[0] == 0
    head = seeded.head()
    assert seeded("package", "policy", "acme", "acme-utils") == (
        0, "publish policy of acme-utils: any pipeline of the linked repository may publish\n", "")
    assert seeded.head() == head
    assert seeded("package", "policy", "acme", "acme-utils", "--branch", "main")[0] == 0
    code, out, _ = seeded("package", "policy", "acme", "Acme_Utils")
    assert code == 0 and out == "publish policy of acme-utils: pipelines may publish from branches main\n"
    code, out, err = seeded("package", "policy", "acme", "nope")
    assert code == 1 and out == "" and err == "registry: Package 'nope' does not exist in workspace acme.\n"


def test_every_command_names_the_function_that_runs_it():
    """main dispatches on ``args.run`` alone: a command whose parser names no function would be a
    traceback (AttributeError) rather than a command."""
    import argparse

    from registry.cli.args import parser

    def leaves(p: argparse.ArgumentParser, words: list[str]):
        subs = [a for a in p._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            yield words, p
        for sub in subs:
            for name, child in sub.choices.items():
                yield from leaves(child, [*words, name])

    found = list(leaves(parser(), []))
    assert len(found) > 25
    unnamed = [" ".join(words) for words, p in found if not callable(p.get_default("run"))]
    assert unnamed == [], f"no set_defaults(run=...) for: {unnamed}"


def test_the_global_options_work_before_and_after_the_command(seeded, tmp_path):
    from registry.cli.args import parser

    data = str(seeded.data)
    assert main(["workspace", "create", "late", "--data", data, "--actor", "dev@example.com"]) == 0
    assert main(["--data", data, "--actor", "dev@example.com", "workspace", "create", "early"]) == 0
    code, out, _ = seeded("log", "--limit", "2")  # (its output follows the two creations' own)
    assert out.count("Z  dev@example.com\n") == 2 and "create workspace late" in out and "create workspace early" in out
    args = parser().parse_args(["serve", "--follow", "http://127.0.0.1:9/", "--data", "replica-data"])
    assert args.data == "replica-data" and args.follow == "http://127.0.0.1:9/"
    assert parser().parse_args(["--data", "a", "workspace", "list"]).data == "a"  # (not reset by the subcommand)
    assert parser().parse_args(["--data", "a", "workspace", "list", "--data", "b"]).data == "b"


@pytest.mark.parametrize("env, args, message", [
    ({"REGISTRY_PORT": "abc"}, [], "invalid setting REGISTRY_PORT='abc': expected an integer"),
    ({"REGISTRY_BLOBS_REDIRECT": "yes"}, [],
     "invalid setting REGISTRY_BLOBS_REDIRECT='yes': expected 1/0 or true/false"),
    ({"REGISTRY_PORT": "0"}, [], "invalid setting REGISTRY_PORT='0': give a port from 1 to 65535"),
    ({}, ["--port", "99999"], "invalid setting --port=99999: give a port from 1 to 65535"),
    ({}, ["--workers", "0"], "invalid setting --workers=0: give 1 or more worker processes"),
    ({"REGISTRY_WORKERS": "-2"}, [], "invalid setting REGISTRY_WORKERS='-2': give 1 or more worker processes"),
    ({"REGISTRY_LOG_LEVEL": "verbose"}, [],
     "invalid setting REGISTRY_LOG_LEVEL='verbose': give one of debug, info, warning, error, critical (in any case)"),
    ({}, ["--public-url", "pypi.example.com"],
     "invalid setting --public-url='pypi.example.com': give http:// or https:// and a host, e.g. https://pypi.example.com"),
    ({"REGISTRY_PUBLIC_URL": "ftp://example.com"}, [], "give http:// or https:// and a host"),
    ({}, ["--public-url", "https://example.com/pypi?x=1"], "give the URL without a query or fragment"),
    ({}, ["--public-url", "https://example.com/#top"], "give the URL without a query or fragment"),
    ({"REGISTRY_RETENTION_APPLY": "weekly"}, [], "invalid setting REGISTRY_RETENTION_APPLY='weekly': give off (only "
                                                 "`registry retention apply` deletes) or daily"),
    ({"REGISTRY_RETENTION_APPLY": "yes"}, [], "invalid setting REGISTRY_RETENTION_APPLY='yes': give off"),
    ({"REGISTRY_RETENTION_INTERVAL": "0"}, [],
     "invalid setting REGISTRY_RETENTION_INTERVAL='0': give a number of seconds from 1 to 31622400 (366 days)"),
    ({"REGISTRY_RETENTION_INTERVAL": "-5"}, [], "REGISTRY_RETENTION_INTERVAL='-5': give a number of seconds from 1"),
    ({"REGISTRY_RETENTION_INTERVAL": "999999999"}, [], "REGISTRY_RETENTION_INTERVAL='999999999': give a number"),
    ({"REGISTRY_RETENTION_INTERVAL": "1d"}, [],
     "invalid setting REGISTRY_RETENTION_INTERVAL='1d': expected an integer"),
    ({"REGISTRY_RETENTION_INTERVAL": "1.5"}, [],
     "invalid setting REGISTRY_RETENTION_INTERVAL='1.5': expected an integer"),
])
def test_serve_refuses_a_bad_setting_in_one_line_naming_it_before_creating_anything(tmp_path, env, args, message):
    from tests.support.helpers import free_port

    clean = {k: v for k, v in __import__("os").environ.items() if not k.startswith("REGISTRY_")}
    port = [] if "--port" in args or "REGISTRY_PORT" in env else ["--port", str(free_port())]
    proc = subprocess.run([sys.executable, "-m", "registry", "serve", "--data", str(tmp_path / "data"), *port, *args],
                          capture_output=True, text=True, timeout=60, env=clean | env)
    assert proc.returncode != 0 and proc.stdout == ""
    assert proc.stderr.startswith("registry: ") and message in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert not (tmp_path / "data").exists()


@pytest.mark.e2e
def test_a_log_level_in_capitals_serves(tmp_path):
    """REGISTRY_LOG_LEVEL=DEBUG was a traceback after "Serving the registry" (granian's levels are lowercase)."""
    from tests.support.helpers import start_server

    live = start_server(tmp_path / "data", workers=1, log_level="DEBUG")
    try:
        assert "Traceback" not in live.log.read_text()
    finally:
        live.stop()


def test_a_public_url_with_a_path_is_accepted():
    from registry.config import Settings

    assert Settings(public_url="https://example.com/pypi/").base_url == "https://example.com/pypi"


def test_login_link_refuses_a_url_that_is_not_http(seeded):
    assert seeded("user", "create", "boss@example.com")[0] == 0
    head = seeded.head()
    code, out, err = seeded("login-link", "boss@example.com", "--url", "ftp://x")
    assert code == 1 and out == "" and err.count("\n") == 1
    assert err == "registry: --url ftp://x: give http:// or https:// and a host, e.g. https://pypi.example.com.\n"
    assert seeded.head() == head


def test_trust_with_nothing_trusted_says_so_and_how_to_add_one(seeded):
    assert seeded("trust") == (
        0, "no workspace trusts a pipeline issuer yet: registry trust WS --issuer URL adds one\n", "")


def test_success_lines_say_what_was_made_as_it_was_made(seeded):
    # (keys are upper case)
    assert seeded("project", "create", "acme", "lower") == (0, "created project acme/LOWER\n", "")
    code, out, err = seeded("token", "create", "dev@example.com", "--witness")
    assert code == 0 and "(witness" in err
    code, _, err = seeded("token", "create", "dev@example.com")
    assert code == 0 and "(write" in err
    assert seeded("package", "create", "acme", "pkg", "--repo", "utils")[0] == 0
    code, out, _ = seeded("package", "delete", "acme", "pkg")
    assert code == 0 and "the running server frees its files once the grace period has passed" in out
    assert "REGISTRY_GC_GRACE_SECONDS" in out and "`registry gc` frees them now" in out


def test_registry_upstream_edits_lists_and_checks(seeded, tmp_path, monkeypatch):
    from tests.support.helpers import make_wheel
    from tests.support.upstream_index import Index, Served

    cli = seeded
    index = Index()
    try:
        index.files["acme_utils-9.0-py3-none-any.whl"] = Served(make_wheel(tmp_path, "acme-utils", "9.0").read_bytes())
        monkeypatch.setattr("sys.stdin", __import__("io").StringIO("s3cret token\n"))
        code, out, err = cli("upstream", "add", "acme", "corp", index.url, "--password-stdin")
        assert code == 0, err
        assert f"1. corp\t{index.url}\t(credentials set)" in out
        assert b"s3cret" not in b"".join(p.read_bytes() for p in (cli.data / "ledger.git").rglob("*") if p.is_file())
        for args in (("deny", "acme", "evil-*", "--reason", "typosquats"), ("block", "acme", "x", "1.0", "--reason",
                     "CVE"), ("cooldown", "acme", "3"), ("exempt", "acme", "certifi", "--reason", "CA"),
                     ("track", "acme", "acme-utils", "--reason", "we follow it")):
            code, out, err = cli("upstream", *args)
            assert code == 0, (args, err)
        code, out, _ = cli("upstream", "list", "acme")
        assert "cooldown: 3 days" in out and "deny\tevil-*\ttyposquats" in out and "blocked\tx 1.0\tCVE" in out
        assert "tracks\tacme-utils\twe follow it" in out
        assert cli("package", "create", "acme", "acme-utils", "--repo", "utils")[0] == 0
        code, out, _ = cli("upstream", "check", "acme")
        assert code == 1 and "acme-utils\talso published upstream (corp)" in out
        code, out, _ = cli("upstream", "remove", "acme", "corp")
        assert code == 0 and "corp" not in (cli.data / "upstream-credentials.json").read_text()
    finally:
        index.close()


@pytest.mark.parametrize(("args", "message"), [
    (("upstream", "add", "acme", "x", "ftp://x"), "http(s) URL of its Simple API root"),
    (("upstream", "add", "acme", "x", "https://u:p@x.example/"), "not in its URL"),
    (("upstream", "deny", "acme", "A/B", "--reason", "r"), "Invalid name pattern"),
    (("upstream", "block", "acme", "x", "1.0"), "Give a reason"),
    (("upstream", "cooldown", "acme", "-1"), "cooldown of 0"),
    (("upstream", "unblock", "acme", "x", "1.0"), "not on the block list"),
    (("upstream", "check", "acme"), "no upstream index"),
])
def test_registry_upstream_refuses_in_one_line(seeded, args, message):
    head = seeded.head()
    code, out, err = seeded(*args)
    assert code != 0 and message in err and err.count("\n") == 1, err
    assert seeded.head() == head


def test_init_says_what_it_is_for_and_what_comes_next(cli):
    code, out, _ = cli("init")
    assert code == 0 and "no user, workspace or token" in out and "bootstraps those" in out
    assert f"registry --data {cli.data.resolve()} user create EMAIL" in out
    assert f"registry --data {cli.data.resolve()} token create EMAIL" in out


@pytest.mark.e2e
def test_serve_after_init_says_the_registry_has_no_one_yet(tmp_path):
    from registry.cli import main
    from tests.support.helpers import start_server

    assert main(["--data", str(tmp_path / "data"), "init"]) == 0
    live = start_server(tmp_path / "data", workers=1)
    try:
        assert "has no user and no workspace yet" in live.log.read_text()
        assert "user create EMAIL" in live.log.read_text()
    finally:
        live.stop()


def test_login_link_names_a_server_only_while_it_runs(seeded, capsys):
    """The link printed the URL of whichever server started here last, even one long stopped."""
    data = seeded.data
    assert seeded("user", "create", "boss@example.com")[0] == 0
    stopped = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (data / "served-at").write_text(f"http://127.0.0.1:9999\n{stopped.stdout.strip()}\n")
    code, out, err = seeded("login-link", "boss@example.com")
    assert code == 0 and "127.0.0.1:9999" not in out
    assert "no registry is serving" in err and "the last one, at http://127.0.0.1:9999, has stopped" in err
    (data / "served-at").write_text(f"http://127.0.0.1:9999\n{__import__('os').getpid()}\n")  # (a live process)
    code, out, err = seeded("login-link", "boss@example.com")
    assert code == 0 and out.startswith("http://127.0.0.1:9999/") and "no registry is serving" not in err


def test_a_workspace_and_a_repository_are_bound_to_their_bitbucket_uuids_afterwards(seeded):
    """The quick start's `default` has random UUIDs: a real pipeline's token named neither, for good."""
    cli = seeded
    ws_uuid, repo_uuid = "{11111111-2222-4333-8444-555555555555}", "{66666666-7777-4888-9999-aaaaaaaaaaaa}"
    code, out, _ = cli("workspace", "uuid", "acme", ws_uuid.strip("{}").upper())
    assert code == 0 and out == f"workspace acme is Bitbucket workspace {ws_uuid}\n"
    code, out, _ = cli("repo", "uuid", "acme/utils", repo_uuid)
    assert code == 0 and out == f"repository acme/utils is Bitbucket repository {repo_uuid}\n"
    assert ws_uuid in cli("workspace", "list")[1]
    log = subprocess.run(["git", "--git-dir", str(cli.data / "ledger.git"), "log", "-2", "--format=%B"],
                         capture_output=True, text=True).stdout
    assert "Action: set-uuid" in log and f"Repository-Uuid: {repo_uuid}" in log
    head = cli.head()
    assert cli("repo", "uuid", "acme/utils", repo_uuid)[2].startswith("registry: acme/utils already has UUID")
    assert cli("repo", "create", "acme/other", "--project", "CORE")[0] == 0
    head = cli.head()
    code, _, err = cli("repo", "uuid", "acme/other", repo_uuid)
    assert code != 0 and "already belongs to repository acme/utils" in err and cli.head() == head
    code, _, err = cli("repo", "uuid", "acme/nothing", repo_uuid)
    assert code != 0 and "registry repo create acme/nothing --project KEY --uuid" in err


def test_whoever_creates_a_workspace_administers_it(seeded):
    """The bootstrap admin was shown no workspace created after it: a workspace had no admin at all."""
    cli = seeded
    assert cli("user", "create", "boss@example.com")[0] == 0
    code, out, _ = cli("--actor", "boss@example.com", "workspace", "create", "team-b")
    assert code == 0 and "administered by boss@example.com" in out
    code, out, _ = cli("workspace", "create", "team-c", "--admin", "dev@example.com", "--admin", "boss@example.com")
    assert code == 0 and "administered by boss@example.com, dev@example.com" in out
    code, out, _ = cli("workspace", "create", "team-d")
    assert code == 0 and "no admin yet" in out and "registry grant team-d EMAIL admin" in out
    head = cli.head()
    code, _, err = cli("workspace", "create", "team-e", "--admin", "nobody@example.com")
    assert code != 0 and "nobody@example.com does not exist" in err and cli.head() == head
    from registry import layout, model
    from registry.ledger import Ledger

    snap = Ledger.open(cli.data / "ledger.git").snapshot()
    assert snap.get(layout.workspace("team-b"), model.Workspace).admins == ["boss@example.com"]


def test_people_are_listed_shown_renamed_disabled_and_enabled(seeded):
    cli = seeded
    assert cli("user", "create", "boss@example.com")[0] == 0
    assert cli("grant", "acme", "boss@example.com", "admin")[0] == 0
    assert cli("grant", "acme/utils", "dev@example.com", "write")[0] == 0
    assert cli("token", "create", "dev@example.com")[0] == 0
    code, out, _ = cli("user", "list")
    lines = out.splitlines()
    assert code == 0 and lines[0].split() == ["EMAIL", "NAME", "STATE", "CREATED", "GRANTS", "TOKENS"]
    assert lines[2].split() == ["dev@example.com", "Dev", "Eloper", "active", lines[2].split()[4], "1", "1"]
    code, out, _ = cli("user", "show", "dev@example.com")
    assert code == 0 and "state:    active" in out and "tokens:   1 that hold" in out and "acme/utils  write" in out
    assert cli("user", "rename", "dev@example.com", "--name", "Dee Veloper")[1] == \
        "renamed user dev@example.com: Dee Veloper\n"
    code, out, _ = cli("user", "disable", "dev@example.com", "--reason", "left the team")
    assert code == 0 and out.startswith("disabled dev@example.com: none of their API tokens")
    code, out, _ = cli("user", "show", "dev@example.com")
    assert "state:    disabled" in out and "by operator@localhost: left the team" in out
    head = cli.head()
    for args, words in ((["user", "disable", "dev@example.com", "--reason", "x"], "already disabled"),
                        (["token", "create", "dev@example.com"], "enable it first with `registry user enable"),
                        (["login-link", "dev@example.com"], "enable it first"),
                        (["user", "show", "nobody@example.com"], "There is no user"),
                        (["--actor", "boss@example.com", "user", "list"], None)):
        code, _, err = cli(*args)
        if words is not None:
            assert code != 0 and words in err, (args, err)
    assert cli.head() == head
    assert cli("user", "enable", "dev@example.com")[1] == "enabled dev@example.com\n"
    code, out, _ = cli("log", "--limit", "3")
    assert "enable user dev@example.com" in out and "disable user dev@example.com" in out


def test_grants_are_listed_filtered_and_a_member_removed_in_one_commit(seeded):
    cli = seeded
    assert cli("user", "create", "boss@example.com")[0] == 0
    assert cli("grant", "acme", "boss@example.com", "admin")[0] == 0
    assert cli("grant", "acme/utils", "dev@example.com", "write")[0] == 0
    assert cli("grant", "acme", "--project", "CORE", "dev@example.com", "read")[0] == 0
    code, out, _ = cli("grants", "acme")
    assert code == 0 and out.splitlines() == [
        "WHERE                WHO               ROLE", "acme                 boss@example.com  admin",
        "acme --project CORE  dev@example.com   read", "acme/utils           dev@example.com   write"]
    assert cli("grants", "acme/utils")[1].splitlines()[1:] == ["acme/utils  dev@example.com  write"]
    assert len(cli("grants", "acme", "--user", "boss@example.com")[1].splitlines()) == 2
    assert len(cli("grants", "acme", "--project", "core")[1].splitlines()) == 3
    head = cli.head()
    code, out, _ = cli("workspace", "remove-member", "acme", "dev@example.com")
    assert code == 0 and out == "removed dev@example.com from workspace acme: acme --project CORE, acme/utils\n"
    count = subprocess.run(["git", "--git-dir", str(cli.data / "ledger.git"), "rev-list", "--count", f"{head}..HEAD"],
                           capture_output=True, text=True).stdout
    assert count == "1\n"  # (every grant of theirs there, in one commit)
    assert cli("grants", "acme", "--user", "dev@example.com")[2] == "no grants\n"
    head = cli.head()
    code, _, err = cli("workspace", "remove-member", "acme", "dev@example.com")
    assert code != 0 and "holds no grant in workspace acme" in err and cli.head() == head


def test_workspaces_projects_and_repositories_are_renamed_and_deleted_once_empty(seeded):
    cli = seeded
    assert cli("package", "create", "acme", "acme-utils", "--repo", "utils")[0] == 0
    assert cli("repo", "rename", "acme/utils", "tools")[1] == "renamed repository acme/utils to acme/tools\n"
    assert "rename repository acme/utils to acme/tools (1 linked packages)" in cli("log", "--limit", "1")[1]
    code, out, _ = cli("repo", "list", "acme")
    assert out.splitlines()[1].split()[:3] == ["tools", "CORE", "private"]
    assert cli("project", "rename", "acme", "core", "--name", "Core libs")[1] == \
        "project acme/CORE is now called 'Core libs'\n"
    assert cli("project", "list", "acme")[1].splitlines()[1].split() == ["CORE", "Core", "libs", "1"]
    assert cli("workspace", "rename", "acme", "--name", "Acme")[1] == "workspace acme is now called 'Acme'\n"
    head = cli.head()
    for args, words in ((["workspace", "rename", "acme", "acme2", "--name", "X"], "slug can't change"),
                        (["repo", "delete", "acme/tools"], "`registry package delete acme NAME`"),
                        (["project", "delete", "acme", "CORE"], "`registry repo delete acme/REPO`"),
                        (["workspace", "delete", "acme"], "Remove them first"),
                        (["repo", "rename", "acme/nothing", "x"], "does not exist")):
        code, _, err = cli(*args)
        assert code != 0 and words in err and err.count("\n") == 1, (args, err)
    assert cli.head() == head
    assert cli("package", "delete", "acme", "acme-utils")[0] == 0
    assert cli("repo", "delete", "acme/tools")[1] == "deleted repository acme/tools\n"
    assert cli("project", "delete", "acme", "CORE")[1] == "deleted project acme/CORE\n"
    assert cli("workspace", "delete", "acme")[0] == 0
    assert cli("workspace", "list")[1] == ""


def test_user_default_workspace(seeded):
    cli = seeded
    assert cli("grant", "acme/utils", "dev@example.com", "read")[0] == 0
    code, out, _ = cli("user", "default-workspace", "dev@example.com", "acme")
    assert code == 0 and "from acme, for dev@example.com" in out
    code, out, _ = cli("user", "default-workspace", "dev@example.com", "--clear")
    assert code == 0 and "no default workspace" in out
    head = cli.head()
    for args, words in ((["dev@example.com"], "or --clear"), (["dev@example.com", "acme", "--clear"], "or --clear"),
                        (["dev@example.com", "nowhere"], "No workspace 'nowhere'"),
                        (["nobody@example.com", "acme"], "registry user create nobody@example.com")):
        code, _, err = cli("user", "default-workspace", *args)
        assert code != 0 and words in err, (args, err)
    assert cli.head() == head


def test_registry_pipelines_grants_revokes_and_lists_which_pipelines_read_a_repository(seeded):
    cli = seeded
    for args in (["repo", "create", "acme/app", "--project", "CORE"], ["repo", "create", "acme/tools", "--project",
                                                                      "CORE"]):
        assert cli(*args)[0] == 0
    code, out, err = cli("pipelines", "list", "acme/utils")
    assert (code, out, err) == (0, "", "only the pipelines of acme/utils itself read it\n")
    head = cli.head()
    code, out, _ = cli("pipelines", "grant", "acme/utils", "app")
    assert (code, out) == (0, "pipelines of acme/app may now read acme/utils\n") and cli.head() != head
    code, out, _ = cli("pipelines", "grant", "acme/utils", "--all")
    assert (code, out) == (0, "every pipeline of acme may now read acme/utils\n")
    assert cli("pipelines", "list", "acme/utils")[1] == "every pipeline of acme\npipelines of acme/app\n"
    _, out, _ = cli("grants", "acme/utils")  # (beside the people's roles)
    assert re.search(r"^acme/utils +pipelines of acme/app +read$", out, re.M) and "every pipeline of acme" in out
    _, log, _ = cli("log")
    assert "grant read on acme/utils to the pipelines of acme/app" in log
    assert "grant read on acme/utils to every pipeline of workspace acme" in log
    # revoking takes away the grant named, one commit each: --all leaves app's, and the other way round
    code, out, _ = cli("pipelines", "revoke", "acme/utils", "--all")
    assert (code, out) == (0, "every pipeline of acme may no longer read acme/utils (unless through another "
                              "grant)\n")
    assert cli("pipelines", "list", "acme/utils")[1] == "pipelines of acme/app\n"
    assert cli("pipelines", "revoke", "acme/utils", "app")[0] == 0
    assert cli("pipelines", "list", "acme/utils")[2] == "only the pipelines of acme/utils itself read it\n"
    # the operator's command: --actor is the commit's author (the server's routes check who may)
    assert cli("--actor", "dev@example.com", "pipelines", "grant", "acme/utils", "tools")[0] == 0
    newest = cli("log", "acme")[1].splitlines()[:2]
    assert newest[0].endswith("dev@example.com")
    assert newest[1].strip() == "grant read on acme/utils to the pipelines of acme/tools"


@pytest.mark.parametrize("args, message", [
    (["pipelines", "grant", "acme/utils"], "Name the repository of acme whose pipelines may read acme/utils"),
    (["pipelines", "grant", "acme/utils", "app", "--all"], "or --all for every pipeline of the workspace"),
    (["pipelines", "revoke", "acme/utils"], "whose pipelines may no longer read acme/utils"),
    (["pipelines", "grant", "acme/utils", "utils"], "The pipelines of acme/utils already publish to and read it"),
    (["pipelines", "grant", "acme/utils", "nope"], "Repository acme/nope does not exist"),
    (["pipelines", "grant", "acme/utils", "Bad Repo"], "Invalid repository slug"),
    (["pipelines", "grant", "acme/nope", "utils"], "Repository acme/nope does not exist"),
    (["pipelines", "grant", "nope/utils", "app"], "does not exist"),
    (["pipelines", "grant", "acme", "app"], "Expected WS/REPO"),
    (["pipelines", "grant", "acme/utils", "app"], "The pipelines of acme/app may already read acme/utils"),
    (["pipelines", "revoke", "acme/utils", "--all"], "acme/utils doesn't let every pipeline of workspace acme "
                                                     "read it; the pipelines it lets read it are those of: app"),
    (["pipelines", "revoke", "acme/utils", "nope"], "doesn't let the pipelines of acme/nope read it"),
    (["pipelines", "list", "acme/nope"], "Repository acme/nope does not exist"),
    (["pipelines", "list", "acme"], "Expected WS/REPO"),
])
def test_registry_pipelines_refuses_in_one_line_and_commits_nothing(seeded, args, message):
    assert seeded("repo", "create", "acme/app", "--project", "CORE")[0] == 0
    assert seeded("pipelines", "grant", "acme/utils", "app")[0] == 0
    head = seeded.head()
    code, out, err = seeded(*args)
    assert (code, out) == (1, "")
    assert err.startswith("registry: ") and message in err and err.count("\n") == 1, err
    assert seeded.head() == head


@pytest.mark.parametrize("args", [["pipelines"], ["pipelines", "grant"], ["pipelines", "share", "acme/utils"]])
def test_registry_pipelines_usage_mistakes_are_argparses(seeded, args, capsys):
    with pytest.raises(SystemExit) as exited:
        seeded(*args)
    assert exited.value.code == 2 and "usage: registry pipelines" in capsys.readouterr().err


def test_retention_dry_run_lists_what_would_go_and_changes_nothing_then_apply_commits_each(seeded, tmp_path):
    from registry.audit import T
    from tests.support.helpers import make_wheel

    cli = seeded
    files = tmp_path / "files"
    files.mkdir()
    for v in ("1.0", "1.1", "1.2"):
        make_wheel(files, "kept-pkg", v)
    assert cli("import", "acme", str(files), "--repo", "utils")[0] == 0
    code, out, _ = cli("retention", "set", "acme", "two", "--repo", "utils", "--keep-newest", "2", "--protect",
                       "Production")
    assert code == 0 and "keep the newest 2" in out and "Production" in out
    assert "two\t" in cli("retention", "show", "acme")[1]
    head = cli.head()
    code, out, _ = cli("retention", "apply", "acme", "--dry-run")
    assert code == 0 and cli.head() == head
    assert out.splitlines()[0].startswith("would delete acme/kept-pkg 1.0: policy two: keep the newest 2 versions")
    assert "published 0 days ago; 1 files" in out
    code, out, _ = cli("retention", "apply")
    assert code == 0 and "deleted 1 versions" in out
    ledger = Ledger.open(cli.data / "ledger.git")
    assert ledger.commit(ledger.head()).trailer(T.RETENTION_POLICY) == "two"
    assert "would delete" not in cli("retention", "apply", "--dry-run")[1]  # (applied: nothing left)
    assert cli("retention", "remove", "acme", "two")[0] == 0
    code, out, err = cli("workspace", "quota", "acme", "lots")
    assert code != 0 and "number of bytes" in err
    code, out, _ = cli("workspace", "quota", "acme", "1000000")
    assert code == 0 and "quota 1000000 bytes" in out and "repository acme/utils" in out
