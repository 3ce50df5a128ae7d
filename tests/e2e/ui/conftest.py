"""Fixtures of the browser tests: a registry served by granian on 127.0.0.1 with data the tests
make, Debian's chromium, and a folder of screenshots (printed at the end of the run)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from registry import identity, operations
from registry.config import Settings
from registry.datadir import Registry
from tests.support.browser import Browser, chromium
from tests.support.helpers import start_server

SHOTS: list[Path] = []


def pytest_terminal_summary(terminalreporter):
    for folder in SHOTS:
        if any(folder.rglob("*.png")):
            terminalreporter.write_line(f"UI screenshots: {folder}")


@pytest.fixture(scope="session")
def shots(tmp_path_factory) -> Path:
    folder = (Path(os.environ["UI_SCREENSHOTS"]) if os.environ.get("UI_SCREENSHOTS")
              else tmp_path_factory.mktemp("ui-screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    SHOTS.append(folder)
    return folder


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A registry as served (granian, its first start's bootstrap and all), and the same data
    directory opened here, to set things up as the operator would on the server."""
    live = start_server(tmp_path_factory.mktemp("ui-site") / "data", workers=1)
    link = re.search(r"^\s+(http://\S+/-/_/link/\S+)$", live.log.read_text(), re.M)
    live.first_link = link.group(1) if link else None
    live.reg = Registry.open(Settings(data=str(live.data)))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def driver():
    d = chromium()
    yield d
    d.quit()


@pytest.fixture
def browser(driver, site, shots, request) -> Browser:
    driver.delete_all_cookies()
    driver.set_window_size(1280, 900)
    return Browser(driver, site.url, shots).start(request.node.name)


def person(site, email: str, role: str | None = None, repo: str = "packages", ws: str = "default") -> str:
    """A user (with ``role`` on ``ws/repo``) and a write token for them."""
    op = identity.operator()
    operations.create_user(site.reg, op, "cli", email, email.split("@")[0].title())
    if role:
        operations.grant(site.reg, op, "cli", ws, email, role, repository=repo)
    secret, _ = operations.create_token(site.reg, op, "cli", email, "write", label="laptop")
    return secret
