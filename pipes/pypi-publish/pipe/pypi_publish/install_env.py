"""MODE: credentials. Publish nothing: exchange the step's OIDC token for a short-lived read token and
write it where the step's later commands find it, a file they `source` (`.registry/env` in the clone
directory) that points pip, uv and poetry at the registry with the token. The step then installs its
own repository's packages, and those of the repositories that let its pipelines read them.

The file holds a secret: it is written 0600 in a directory of its own, with a .gitignore, and the
step must keep `.registry/` out of its artifacts and caches. The token itself is never printed."""

from __future__ import annotations

import os
import shlex
import time
from pathlib import Path
from urllib.parse import quote, urlsplit

from . import credentials
from .console import Console
from .registry_api import RegistryRefusal, check_access
from .variables import Config, ConfigError, raw

DIRECTORY = ".registry"
SOURCE_NAME = "registry"  # the poetry source (and uv index) name the variables are for


def run(cfg: Config, env: dict[str, str], console: Console) -> None:
    if raw(env, credentials.OIDC_TOKEN) is None or cfg.auth == "token":
        raise ConfigError(f"MODE=credentials exchanges the step's OIDC token ({credentials.OIDC_TOKEN}) for a read "
                          "token: add `oidc: true` to the step (and leave AUTH as auto or oidc).")
    console.info(f"Writing install credentials for {cfg.registry_url} (workspace {cfg.workspace})")
    creds = credentials.from_oidc(cfg, env, console, scope="read")
    console.add_secret(creds.password, creds.username)
    try:
        check_access(console, cfg.registry_url, creds.basic)
    except RegistryRefusal as exc:
        raise RegistryRefusal(exc.status, f"The registry refused the read token: {exc.reason}", exc.url) from None
    where = Path(raw(env, "BITBUCKET_CLONE_DIR") or Path.cwd()) / DIRECTORY
    path = write(where, cfg.registry_url, creds.username, creds.password, creds.expires)
    until = time.strftime(" until %H:%M:%S UTC", time.gmtime(creds.expires)) if creds.expires else ""
    console.info(f"In the step's next commands, before pip, uv or poetry:\n  source {DIRECTORY}/env")
    # (the last line, green, as Bitbucket's pipes end)
    console.success(f"Wrote {path} (a read token, valid{until}); keep {DIRECTORY}/ out of artifacts and caches.")


def write(where: Path, index: str, username: str, token: str, expires: float | None) -> Path:
    """The file to source: only its owner may read it (made so before the secret goes in)."""
    where.mkdir(mode=0o700, exist_ok=True)
    (where / ".gitignore").write_text("*\n")
    path = where / "env"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # (an older file from another run keeps its mode otherwise)
    with os.fdopen(fd, "w") as out:
        out.write(contents(index, username, token, expires))
    return path


def contents(index: str, username: str, token: str, expires: float | None) -> str:
    parts = urlsplit(index)
    with_token = f"{parts.scheme}://{quote(username, safe='')}:{quote(token, safe='')}@{parts.netloc}{parts.path}"
    name = SOURCE_NAME.upper()
    values = {
        "PIP_INDEX_URL": with_token,
        "UV_DEFAULT_INDEX": with_token, "UV_INDEX_URL": with_token,  # (uv's name now, and its older one)
        f"UV_INDEX_{name}_USERNAME": username, f"UV_INDEX_{name}_PASSWORD": token,
        f"POETRY_HTTP_BASIC_{name}_USERNAME": username, f"POETRY_HTTP_BASIC_{name}_PASSWORD": token,
    }
    until = time.strftime(", valid until %Y-%m-%d %H:%M:%S UTC", time.gmtime(expires)) if expires else ""
    head = (f"# A read token for {index}{until}, written by the pypi-publish pipe (MODE: credentials).\n"
            f"# A secret: keep {DIRECTORY}/ out of artifacts and caches. poetry and uv take it for a source "
            f"(index) named {SOURCE_NAME!r}.\n")
    return head + "".join(f"export {k}={shlex.quote(v)}\n" for k, v in values.items())
