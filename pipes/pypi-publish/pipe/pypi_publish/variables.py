"""The pipe's variables: the one list that pipe.yml and the README's table are checked against,
and the parsing of what a step passed into a Config."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

TRUE = ("true", "yes", "1")
FALSE = ("false", "no", "0")


class ConfigError(Exception):
    """A missing or invalid variable; the message says which and what to write instead."""


@dataclass(frozen=True)
class Variable:
    name: str
    description: str
    required: bool = False
    default: str | None = None
    secret: bool = False
    kind: str = "string"  # string | boolean | choice | array
    choices: tuple[str, ...] = ()


VARIABLES: tuple[Variable, ...] = (
    Variable("MODE", "`publish` builds and publishes; `credentials` builds nothing: it exchanges the step's OIDC "
             "token for a short-lived read token and writes `.registry/env` into the clone directory, which the "
             "step's later commands `source` so that pip, uv and poetry install from the registry (also packages "
             "of other repositories that let this one's pipelines read them).",
             default="publish", kind="choice", choices=("publish", "credentials")),
    Variable("REGISTRY_URL", "The registry's workspace URL, e.g. `https://registry.example.com/acme`: "
             "both the index and the upload URL.", required=True),
    Variable("TOOL", "Which client builds and publishes: `auto`, `twine`, `uv` or `poetry`. `auto` picks poetry "
             "for a `[tool.poetry]` project, uv where `uv.lock` exists, else twine.",
             default="auto", kind="choice", choices=("auto", "twine", "uv", "poetry")),
    Variable("BUILD", "Build an sdist and a wheel with the tool's own builder (`python -m build`, `uv build`, "
             "`poetry build`) before publishing. `false`: publish what is already in `DIST_DIR`.",
             default="true", kind="boolean"),
    Variable("FOLDER", "The project's directory (where `pyproject.toml` is).", default="."),
    Variable("DIST_DIR", "Where the distributions are written and published from, relative to `FOLDER`.",
             default="dist"),
    Variable("AUTH", "How to authenticate: `auto`, `oidc` or `token`. `auto` uses the step's OIDC token when "
             "the step has `oidc: true`, else `BITBUCKET_PACKAGES_USERNAME` / `BITBUCKET_PACKAGES_TOKEN`, "
             "else `USERNAME` / `PASSWORD`.", default="auto", kind="choice", choices=("auto", "oidc", "token")),
    Variable("USERNAME", "Username for token authentication: your email, or `__token__` (the default when only "
             "`PASSWORD` is given)."),
    Variable("PASSWORD", "A write-scoped registry API token for token authentication. Use a secured variable.",
             secret=True),
    Variable("SKIP_EXISTING", "Skip files the registry already has instead of failing, so a re-run succeeds.",
             default="false", kind="boolean"),
    Variable("VERIFY", "After publishing, read the version's details from the registry and fail unless every "
             "file is there with the same sha256 and attributed to this pipeline run.",
             default="true", kind="boolean"),
    Variable("EXTRA_ARGS", "Extra arguments for the publish command (`twine upload`, `uv publish`, "
             "`poetry publish`), as a list.", kind="array"),
    Variable("DEBUG", "Print the commands run and the registry's responses (never a secret).",
             default="false", kind="boolean"),
)
BY_NAME = {v.name: v for v in VARIABLES}


@dataclass(frozen=True)
class Config:
    mode: str
    registry_url: str  # normalised: scheme://host/<workspace>/
    origin: str  # scheme://host, where the registry's own APIs live
    workspace: str
    tool: str
    build: bool
    folder: Path
    dist_dir: Path
    auth: str
    username: str | None
    password: str | None
    skip_existing: bool
    verify: bool
    extra_args: list[str]
    debug: bool


def raw(env: dict[str, str], name: str) -> str | None:
    """A variable's value; empty counts as unset (`NAME: $UNSET_VAR` arrives as an empty string)."""
    value = env.get(name, "").strip()
    return value or None


def _value(env: dict[str, str], var: Variable) -> str | None:
    value = raw(env, var.name)
    if value is None:
        if var.required:
            raise ConfigError(f"{var.name} is required: {var.description}")
        return var.default
    if var.kind == "choice" and value.lower() not in var.choices:
        raise ConfigError(f"{var.name} must be one of {', '.join(var.choices)}; got {value!r}.")
    return value.lower() if var.kind == "choice" else value


def boolean(env: dict[str, str], name: str) -> bool:
    value = (_value(env, BY_NAME[name]) or "").lower()
    if value in TRUE:
        return True
    if value in FALSE:
        return False
    raise ConfigError(f"{name} must be true or false (also yes/no, 1/0); got {value!r}.")


def array(env: dict[str, str], name: str) -> list[str]:
    """Bitbucket passes a list variable NAME as NAME_COUNT and NAME_0 .. NAME_<COUNT-1>."""
    if raw(env, name) is not None and raw(env, f"{name}_COUNT") is None:
        raise ConfigError(f"{name} must be a list, e.g. {name}: ['--flag', 'value'].")
    count = raw(env, f"{name}_COUNT")
    if count is None:
        return []
    if not count.isdigit():
        raise ConfigError(f"{name}_COUNT must be a number; got {count!r}.")
    missing = [f"{name}_{i}" for i in range(int(count)) if f"{name}_{i}" not in env]
    if missing:
        raise ConfigError(f"{name}_COUNT is {count} but {', '.join(missing)} is not set.")
    return [env[f"{name}_{i}"] for i in range(int(count))]


def registry_url(value: str) -> tuple[str, str, str]:
    """(workspace URL with a trailing slash, origin, workspace slug) from REGISTRY_URL."""
    parts = urlsplit(value)
    segments = [s for s in parts.path.split("/") if s]
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("REGISTRY_URL must be an http(s) URL such as https://registry.example.com/acme; "
                          f"got {value!r}.")
    if parts.username or parts.password:
        raise ConfigError("REGISTRY_URL must not contain credentials; use AUTH and the credential variables.")
    if len(segments) != 1 or parts.query or parts.fragment or not re.fullmatch(r"[A-Za-z0-9_.-]+", segments[0]):
        raise ConfigError(f"REGISTRY_URL must be a workspace URL, https://HOST/<workspace>; got {value!r}.")
    origin = f"{parts.scheme}://{parts.netloc}"
    return f"{origin}/{segments[0]}/", origin, segments[0]


def load(env: dict[str, str] | None = None, cwd: Path | None = None) -> Config:
    env = dict(os.environ if env is None else env)
    url, origin, workspace = registry_url(_value(env, BY_NAME["REGISTRY_URL"]))
    folder = (cwd or Path.cwd()) / _value(env, BY_NAME["FOLDER"])
    if not folder.is_dir():
        raise ConfigError(f"FOLDER {folder} is not a directory.")
    return Config(
        mode=_value(env, BY_NAME["MODE"]), registry_url=url, origin=origin, workspace=workspace,
        tool=_value(env, BY_NAME["TOOL"]), build=boolean(env, "BUILD"),
        folder=folder.resolve(), dist_dir=(folder / _value(env, BY_NAME["DIST_DIR"])).resolve(),
        auth=_value(env, BY_NAME["AUTH"]), username=raw(env, "USERNAME"), password=raw(env, "PASSWORD"),
        skip_existing=boolean(env, "SKIP_EXISTING"), verify=boolean(env, "VERIFY"),
        extra_args=array(env, "EXTRA_ARGS"), debug=boolean(env, "DEBUG"),
    )
