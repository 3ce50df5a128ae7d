"""Settings (registry/config.py): where the data directory is when none is given. A new one is never
made inside a git work tree by default (`git clean -fdx` would delete it, signing keys included), an
existing one keeps working wherever it is, and one given inside a work tree is made with a note.
Who may read the metrics when REGISTRY_METRICS is not given: `token` behind a proxy."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry.cli import main
from registry.config import Settings, placement_note


@pytest.fixture
def places(tmp_path, monkeypatch):
    monkeypatch.delenv("REGISTRY_DATA", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    checkout, plain = tmp_path / "checkout", tmp_path / "plain"
    (checkout / "src" / "deep").mkdir(parents=True)
    (checkout / ".git").mkdir()
    plain.mkdir()
    return checkout, plain, tmp_path / "xdg" / "pypi-registry"


@pytest.mark.parametrize("dotgit", ["directory", "file"])  # (a `git worktree`'s .git is a file)
@pytest.mark.parametrize("where", [".", "src", "src/deep"])
def test_inside_a_git_work_tree_the_default_is_the_per_user_data_directory(places, monkeypatch, dotgit, where):
    checkout, _, user = places
    if dotgit == "file":
        (checkout / ".git").rmdir()
        (checkout / ".git").write_text("gitdir: /elsewhere/.git/worktrees/checkout\n")
    monkeypatch.chdir(checkout / where)
    assert Settings.load().data_path == user.resolve()
    assert not (checkout / where / "registry-data").exists()


def test_outside_any_work_tree_the_default_is_registry_data_here(places, monkeypatch):
    _, plain, _ = places
    monkeypatch.chdir(plain)
    assert Settings.load().data_path == (plain / "registry-data").resolve()


def test_an_existing_registry_data_keeps_working_inside_a_work_tree(places, monkeypatch):
    checkout, _, _ = places
    (checkout / "registry-data").mkdir()
    monkeypatch.chdir(checkout)
    assert Settings.load().data_path == (checkout / "registry-data").resolve()


def test_a_data_directory_given_is_used_wherever_it_is(places, monkeypatch):
    checkout, plain, _ = places
    monkeypatch.chdir(checkout)
    assert Settings.load(data=str(plain / "d")).data_path == (plain / "d").resolve()
    monkeypatch.setenv("REGISTRY_DATA", str(checkout / "inside"))
    assert Settings.load().data_path == (checkout / "inside").resolve()


def test_what_is_said_of_a_new_data_directory(places, monkeypatch):
    checkout, plain, user = places
    monkeypatch.chdir(checkout)
    inside = placement_note((checkout / "src" / "data").resolve())
    assert inside is not None and f"inside the git work tree at {checkout}" in inside and "--data DIR" in inside
    per_user = placement_note(user.resolve())
    assert per_user is not None and "not ./registry-data: this is a git work tree" in per_user
    assert placement_note((plain / "data").resolve()) is None
    monkeypatch.chdir(plain)
    assert placement_note(user.resolve()) is None  # (chosen outside a checkout: nothing to explain)


def test_init_inside_a_work_tree_says_so_and_commands_say_where_they_looked(places, monkeypatch, capsys):
    checkout, _, user = places
    monkeypatch.chdir(checkout)
    assert main(["token", "list", "dev@example.com"]) == 1
    err = capsys.readouterr().err
    assert f"No registry at {user.resolve()} (the default in a git work tree ({checkout})" in err
    assert main(["--data", "here-data", "init"]) == 0
    err = capsys.readouterr().err
    assert f"note: {(checkout / 'here-data').resolve()} is inside the git work tree at {checkout}" in err
    assert main(["init"]) == 0
    assert "not ./registry-data: this is a git work tree" in capsys.readouterr().err
    assert (user / "ledger.git").exists() and not Path("registry-data").exists()


PUBLIC = "https://pypi.example.com"


@pytest.mark.parametrize("given", [None, "loopback", "LOOPBACK", "token", "off"])
@pytest.mark.parametrize("public_url", [None, PUBLIC])
def test_metrics_access_is_token_behind_a_proxy_unless_given_and_serve_says_why(monkeypatch, tmp_path, given,
                                                                                  public_url):
    for name in ("REGISTRY_METRICS", "REGISTRY_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    if given is not None:
        monkeypatch.setenv("REGISTRY_METRICS", given)
    chosen = Settings.load(data=str(tmp_path / "d"), public_url=public_url)
    expected = given.lower() if given else "token" if public_url else "loopback"
    assert chosen.metrics_access == expected
    said, warns = chosen.metrics_note()
    assert "\n" not in said and said.removeprefix("warning: ").startswith(f"Metrics (GET /_/metrics): {expected},")
    assert warns == (expected == "loopback" and given is not None and public_url is not None)
    if warns:
        assert "REGISTRY_PUBLIC_URL" in said and "REGISTRY_METRICS=token" in said and "X-Forwarded-For" in said
    elif given is None:
        assert "default" in said and ("REGISTRY_PUBLIC_URL" in said) == (public_url is not None)
    else:
        assert "REGISTRY_METRICS" in said and "default" not in said
    # (the workers get the same choice: an unset one stays unset, not "loopback")
    monkeypatch.setattr("os.environ", {**__import__("os").environ, **chosen.to_env()})
    assert Settings.load().metrics_access == expected


def test_an_unknown_metrics_access_is_refused_naming_the_choices(monkeypatch, tmp_path):
    monkeypatch.setenv("REGISTRY_METRICS", "public")
    with pytest.raises(SystemExit) as refused:
        Settings.load(data=str(tmp_path / "d"))
    assert "REGISTRY_METRICS='public'" in str(refused.value) and "token" in str(refused.value)


@pytest.mark.parametrize("value, runs", [("off", False), ("daily", True), ("DAILY", True), ("Off", False)])
def test_retention_apply_is_off_unless_the_operator_says_daily(monkeypatch, value, runs):
    monkeypatch.setenv("REGISTRY_RETENTION_APPLY", value)
    monkeypatch.setenv("REGISTRY_RETENTION_INTERVAL", "60")
    settings = Settings.load(data="x")
    assert settings.retention_runs is runs and settings.retention_interval == 60
    assert Settings().retention_runs is False and Settings().retention_interval == 86400  # (the defaults)
