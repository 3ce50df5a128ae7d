"""The three clients: which one a project uses, and their build and publish commands.

Credentials always travel in the tool's environment, never on its command line, so no process
listing or echoed command can show them."""

from __future__ import annotations

import re
import shutil
import sys
import tomllib
from pathlib import Path

from .credentials import Credentials
from .variables import Config, ConfigError

POETRY_REPOSITORY = "registry"  # the name the pipe gives the registry in poetry's configuration
# Building and publishing need no project virtualenv (poetry would otherwise create one), nor a keyring.
POETRY_ENV = {"POETRY_VIRTUALENVS_CREATE": "false", "POETRY_KEYRING_ENABLED": "false"}


def detect(folder: Path) -> tuple[str, str]:
    """(tool, why): poetry for a [tool.poetry] project, uv where uv.lock exists, else twine."""
    pyproject = folder / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{pyproject} is not valid TOML: {exc}") from None
        if "poetry" in data.get("tool", {}):
            return "poetry", "pyproject.toml has [tool.poetry]"
    if (folder / "uv.lock").is_file():
        return "uv", "uv.lock found"
    return "twine", "no [tool.poetry] and no uv.lock"


def executable(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise ConfigError(f"{name} is not installed in this image.")
    return found


def build_command(tool: str, cfg: Config, out: Path) -> tuple[list[str], dict[str, str]]:
    """(argv, environment additions) building an sdist and a wheel (uv and build make the wheel from
    the sdist, which proves the sdist complete)."""
    if tool == "poetry":
        return [executable("poetry"), "build", "--no-interaction", "--output", str(out)], dict(POETRY_ENV)
    if tool == "uv":
        return [executable("uv"), "build", "--out-dir", str(out), str(cfg.folder)], {}
    return [sys.executable, "-m", "build", "--outdir", str(out), str(cfg.folder)], {}


def publish_command(tool: str, cfg: Config, creds: Credentials, files: list[Path],
                    staged_dir: Path) -> tuple[list[str], dict[str, str]]:
    """(argv, environment additions). poetry publishes a directory: ``staged_dir`` holds ``files``."""
    verbose = cfg.debug
    if tool == "poetry":
        name = POETRY_REPOSITORY.upper()
        argv = [executable("poetry"), "publish", "--no-interaction", "--repository", POETRY_REPOSITORY,
                "--dist-dir", str(staged_dir)]
        argv += ["--skip-existing"] * cfg.skip_existing + ["-v"] * verbose
        env = {**POETRY_ENV, f"POETRY_REPOSITORIES_{name}_URL": cfg.registry_url,
               f"POETRY_HTTP_BASIC_{name}_USERNAME": creds.username,
               f"POETRY_HTTP_BASIC_{name}_PASSWORD": creds.password}
    elif tool == "uv":
        argv = [executable("uv"), "publish", "--publish-url", cfg.registry_url, "--trusted-publishing", "never"]
        argv += ["--check-url", cfg.registry_url] * cfg.skip_existing + ["--verbose"] * verbose
        argv += [str(f) for f in files]
        env = {"UV_PUBLISH_USERNAME": creds.username, "UV_PUBLISH_PASSWORD": creds.password}
    else:
        # --verbose always: only then does twine print the registry's reason for a refusal.
        argv = [sys.executable, "-m", "twine", "upload", "--non-interactive", "--disable-progress-bar", "--verbose",
                "--repository-url", cfg.registry_url, *[str(f) for f in files]]
        env = {"TWINE_USERNAME": creds.username, "TWINE_PASSWORD": creds.password}
    return argv + cfg.extra_args, env


def refusal_reason(output: str) -> str | None:
    """The registry's reason for a failed upload, as each tool prints it: `HTTP <status>: <reason>`."""
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if "Server says:" in line:  # uv: "... status code 403 Forbidden. Server says: <reason>"
            status = re.search(r"status code (\d{3})", line)
            return f"HTTP {status.group(1) if status else '?'}: {line.split('Server says:', 1)[1].strip()}"
        poetry = re.match(r"HTTP Error (\d{3}): [^|]*\| b(['\"])(.*)\2\s*$", line.strip())
        if poetry:  # poetry: HTTP Error 403: Forbidden | b'<reason>\n'
            return f"HTTP {poetry.group(1)}: {poetry.group(3).replace(chr(92) + 'n', ' ').strip()}"
        if "Response from " in line and i + 1 < len(lines):  # twine --verbose: status, then the reason, wrapped
            reason = []
            for more in lines[i + 2:]:
                if not more.strip() or more.startswith(("ERROR", "WARNING")):
                    break
                reason.append(more.strip().removeprefix("INFO").strip())
            status = lines[i + 1].strip().split(" ", 1)[0]
            return f"HTTP {status}: {' '.join(reason) or lines[i + 1].strip()}"
    return None
