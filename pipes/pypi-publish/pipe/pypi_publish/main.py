"""The pipe, step by step: variables, tool, credentials, build, what the registry already has,
publish, verify. Every failure ends the run with one line saying why, and a non-zero exit."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

from . import credentials, dists, install_env, tools, variables
from .console import MASK, Console, size_text
from .credentials import Credentials
from .dists import Dist, DistError
from .registry_api import RegistryRefusal, Unreachable, check_access, existing_files, version_url
from .variables import Config, ConfigError
from .verify import VerificationFailed, verify_release

# Builders embed file times; a fixed default makes a re-run (a fresh clone, new mtimes) rebuild
# byte-identical files, which is what lets SKIP_EXISTING and VERIFY recognise them.
DEFAULT_SOURCE_DATE_EPOCH = "946684800"  # 2000-01-01T00:00:00Z
LINKED_HINT = " (a pipeline may publish only packages linked to its own repository)"


class Failed(Exception):
    pass


def run_tool(console: Console, argv: list[str], cwd: Path, extra_env: dict[str, str]) -> tuple[int, str]:
    """Run a client, its output streamed (masked) into the log; (exit code, output)."""
    shown = " ".join(f"{k}={MASK if 'PASSWORD' in k else v}" for k, v in sorted(extra_env.items()))
    console.debug(f"running: {' '.join(argv)} (in {cwd}; with {shown or 'the pipe environment'})")
    proc = subprocess.Popen(argv, cwd=cwd, env={**os.environ, **extra_env}, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, errors="replace")
    output = []
    for line in proc.stdout:
        output.append(line)
        console.info(f"    {line.rstrip()}")
    return proc.wait(), "".join(output)


def shown_command(argv: list[str]) -> str:
    return " ".join([Path(argv[0]).name, *argv[1:]])


def failure_line(output: str) -> str:
    """The line of a tool's output that says best why it failed: a Python exception, else an error."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    exceptions = [line for line in lines if re.match(r"[A-Za-z_.]*(Error|Exception): ", line)]
    errors = [line for line in lines if line.lower().startswith(("error", "* error", "build error"))]
    return (exceptions or errors or lines or ["no output"])[-1]


def choose_tool(cfg: Config, console: Console) -> str:
    if cfg.tool != "auto":
        console.info(f"Tool: {cfg.tool} (TOOL={cfg.tool})")
        return cfg.tool
    tool, why = tools.detect(cfg.folder)
    console.info(f"Tool: {tool} (auto: {why})")
    return tool


def build(cfg: Config, tool: str, console: Console) -> list[Dist]:
    with tempfile.TemporaryDirectory(prefix="pypi-publish-") as tmp:
        out = Path(tmp)
        argv, env = tools.build_command(tool, cfg, out)
        env["SOURCE_DATE_EPOCH"] = os.environ.get("SOURCE_DATE_EPOCH") or DEFAULT_SOURCE_DATE_EPOCH
        console.info(f"Building with: {shown_command(argv)} (SOURCE_DATE_EPOCH={env['SOURCE_DATE_EPOCH']})")
        code, output = run_tool(console, argv, cfg.folder, env)
        if code != 0:
            raise Failed(f"The build failed ({tool}, exit {code}; its output is above): {failure_line(output)}")
        built = sorted(p for p in out.iterdir() if dists.is_dist(p))
        if not built:
            raise Failed(f"The build ({tool}) produced no .whl or .tar.gz files.")
        cfg.dist_dir.mkdir(parents=True, exist_ok=True)
        # Kept in DIST_DIR (e.g. for artifacts); only this build's files are published, never stale ones.
        return [dists.inspect(Path(shutil.copy2(p, cfg.dist_dir / p.name))) for p in built]


def check_existing(cfg: Config, creds: Credentials, console: Console, found: list[Dist]) -> None:
    """Mark each file new, identical (already there) or conflict (there with other bytes)."""
    for (name, _version), group in dists.releases(found).items():
        try:
            existing = existing_files(console, cfg.registry_url, name, creds.fresh().basic)
        except RegistryRefusal as exc:
            raise Failed(f"The registry refused to show package {name} ({exc.status}): {exc.reason}"
                         f"{LINKED_HINT if creds.run and exc.status == 403 else ''}") from None
        for d in group:
            if d.filename in existing:
                d.state = "identical" if existing[d.filename] == d.sha256 else "conflict"
                how = "same sha256" if d.state == "identical" else f"DIFFERENT content, sha256 {existing[d.filename]}"
                console.info(f"Already on the registry: {d.filename} ({how})")
        conflicts = [d.filename for d in group if d.state == "conflict"]
        if conflicts and not cfg.skip_existing:
            raise Failed(f"The registry already has {', '.join(conflicts)} with different content; a published file "
                         f"can't be replaced: publish a new version (or set SKIP_EXISTING to leave them).")


def publish(cfg: Config, tool: str, creds: Credentials, console: Console, found: list[Dist]) -> None:
    to_send = [d for d in found if not (cfg.skip_existing and d.state != "new")]
    if len(to_send) < len(found):
        console.info(f"Skipping {len(found) - len(to_send)} file(s) already on the registry (SKIP_EXISTING).")
    if not to_send:
        console.info("Nothing to upload: the registry already has every file.")
        return
    with tempfile.TemporaryDirectory(prefix="pypi-publish-upload-") as staged:
        for d in to_send:  # poetry publishes a directory; it gets exactly the files to send
            shutil.copy2(d.path, Path(staged) / d.filename)
        argv, env = tools.publish_command(tool, cfg, creds.fresh(), [d.path for d in to_send], Path(staged))
        console.info(f"Publishing {len(to_send)} file(s) with: {shown_command(argv)}")
        code, output = run_tool(console, argv, cfg.folder, env)
    if code != 0:
        reason = tools.refusal_reason(output) or failure_line(output)
        hint = LINKED_HINT if creds.run and reason.startswith("HTTP 403") else ""
        raise Failed(f"Publishing with {tool} failed (exit {code}): {reason}{hint}")
    for d in to_send:
        d.uploaded = d.state == "new"


def run(cfg: Config, env: dict[str, str], console: Console) -> None:
    console.info(f"Publishing to {cfg.registry_url} (workspace {cfg.workspace})")
    tool = choose_tool(cfg, console)
    creds = credentials.resolve(cfg, env, console)
    console.info(f"Credentials: {creds.description}")
    try:
        check_access(console, cfg.registry_url, creds.basic)
    except RegistryRefusal as exc:
        raise Failed(f"The registry refused the credentials ({exc.status}): {exc.reason}") from None
    if cfg.build:
        found = build(cfg, tool, console)
        console.info(f"Built {len(found)} file(s) into {cfg.dist_dir}:")
    else:
        found = dists.collect(cfg.dist_dir)
        console.info(f"Publishing {len(found)} file(s) already in {cfg.dist_dir} (BUILD=false):")
    for d in found:
        console.info(f"  {d.filename}  {size_text(d.size)}  sha256 {d.sha256}")
    check_existing(cfg, creds, console, found)
    publish(cfg, tool, creds, console, found)
    for d in found:
        if d.uploaded:
            console.info(f"Published {d.filename}")
        elif d.state == "identical" and not cfg.skip_existing:
            console.info(f"Sent again, unchanged on the registry: {d.filename}")
    for (name, version), group in dists.releases(found).items():
        if cfg.verify:
            url = verify_release(console, cfg.origin, cfg.workspace, name, version, group, creds)
            console.success(f"{name} {version} is on the registry, verified: {url}")
        else:
            console.success(f"{name} {version} published (not verified: VERIFY=false): "
                            f"{version_url(cfg.origin, cfg.workspace, name, version)}")


def main(env: dict[str, str] | None = None) -> int:
    env = dict(os.environ if env is None else env)
    console = Console(debug=(env.get("DEBUG") or "").strip().lower() in variables.TRUE,
                      colour=not env.get("NO_COLOR"))  # no-color.org
    for name in [v.name for v in variables.VARIABLES if v.secret] + list(credentials.SECRET_ENV):
        console.add_secret(variables.raw(env, name))  # masked from the first line on
    try:
        cfg = variables.load(env)
        (install_env.run if cfg.mode == "credentials" else run)(cfg, env, console)
    except (ConfigError, DistError, Failed, VerificationFailed, Unreachable) as exc:
        console.fail(str(exc))
        return 1
    except RegistryRefusal as exc:
        console.fail(f"{exc.reason} ({exc.status or 'no answer'} from {exc.url})")
        return 1
    return 0
