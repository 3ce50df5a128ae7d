"""Building real distributions and running real clients, isolated from this machine's config."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import socket
import subprocess
import sys
import tarfile
import textwrap
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import httpx

BIN = Path(sys.executable).parent
# Client configuration that must never leak in from the machine running the tests.
_SCRUB = ("PIP_", "UV_", "POETRY_", "TWINE_", "REGISTRY_", "VIRTUAL_ENV", "PYTHONPATH", "NETRC", "XDG_")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Headers each answer has of its own (so two answers that say the same thing still differ in them):
# when, the session cookie, and the request id every answer carries (X-Request-Id).
OWN_HEADERS = frozenset({"date", "set-cookie", "x-request-id"})


def client_env(home: Path, **extra: str) -> dict[str, str]:
    """An environment where pip, uv, poetry and twine see only what the test gives them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_SCRUB)}
    home.mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_CACHE_HOME=str(home / ".cache"),
        XDG_DATA_HOME=str(home / ".local/share"),
        PIP_CONFIG_FILE=os.devnull,
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_NO_INPUT="1",
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
        UV_PYTHON=sys.executable,
        UV_PYTHON_DOWNLOADS="never",
        UV_NO_PROGRESS="1",
        UV_CACHE_DIR=str(home / "uv-cache"),
        POETRY_CONFIG_DIR=str(home / "poetry-config"),
        POETRY_CACHE_DIR=str(home / "poetry-cache"),
        POETRY_DATA_DIR=str(home / "poetry-data"),
        POETRY_VIRTUALENVS_IN_PROJECT="true",
        POETRY_KEYRING_ENABLED="false",
        POETRY_NO_INTERACTION="1",
        NO_COLOR="1",
        TERM="dumb",
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    env.update(extra)
    return env


def run(args: list[str], env: dict[str, str], cwd: Path | None = None, check: bool = True,
        input: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, input=input, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} exited {proc.returncode}\n"
                             f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}")
    return proc


def tool(name: str) -> str:
    path = BIN / name
    return str(path) if path.exists() else shutil.which(name) or name


def said(proc) -> str:
    """What a client printed, with line wrapping undone (rich wraps twine's output at 80 columns)."""
    return " ".join((proc.stdout + proc.stderr).split())


def installed_version(site: Path, module: str) -> str:
    proc = run([sys.executable, "-c", f"import {module}; print({module}.__version__)"],
               env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"})
    return proc.stdout.strip()


def pip_install(server, tmp_path, email, token, *requirements, index_path="default/", extra=()):
    """pip install ``requirements`` from the live ``server`` into a fresh target directory: (target, process)."""
    target = tmp_path / f"site-{len(list(tmp_path.glob('site-*')))}"
    host = server.url.split("://", 1)[1]
    index = f"http://{quote(email, safe='')}:{token}@{host}/{index_path}"
    env = client_env(tmp_path / "pip-home")
    proc = run([sys.executable, "-m", "pip", "install", "--no-cache-dir", "--target", str(target),
                "--index-url", index, *extra, *requirements], env=env, check=False)
    return target, proc


# --- real distributions --------------------------------------------------------------------------


def make_project(root: Path, name: str, version: str, requires_python: str = ">=3.8",
                 poetry: bool = False) -> Path:
    """A small real source project (flit_core backend) that imports and reports its version."""
    module = name.lower().replace("-", "_").replace(".", "_")
    root.mkdir(parents=True, exist_ok=True)
    (root / module).mkdir(exist_ok=True)
    (root / module / "__init__.py").write_text(f'"""{name}: a test package."""\n__version__ = "{version}"\n')
    (root / "README.md").write_text(f"# {name}\n\nA package the registry's tests build and publish.\n")
    (root / "pyproject.toml").write_text(textwrap.dedent(f"""\
        [build-system]
        requires = ["flit_core>=3.9"]
        build-backend = "flit_core.buildapi"

        [project]
        name = "{name}"
        version = "{version}"
        description = "Test package {name}"
        readme = "README.md"
        requires-python = "{requires_python}"
        authors = [{{name = "Test", email = "test@example.com"}}]

        [tool.flit.module]
        name = "{module}"
        """))
    return root


def build(project: Path, out: Path) -> tuple[Path, Path]:
    """(sdist, wheel), built offline with flit_core from the test environment."""
    out.mkdir(parents=True, exist_ok=True)
    before = set(out.iterdir())
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(project)],
        env={**os.environ, "PIP_CONFIG_FILE": os.devnull})
    new = set(out.iterdir()) - before
    return next(p for p in new if p.name.endswith(".tar.gz")), next(p for p in new if p.name.endswith(".whl"))


# --- synthetic distributions (valid, built in milliseconds) ---


def make_wheel(out: Path, name: str, version: str, payload: int = 512, stored: bool = False,
               requires: tuple[str, ...] = ()) -> Path:
    """A valid wheel (METADATA, WHEEL, RECORD) with ``payload`` random bytes in one module, depending
    on ``requires`` (PEP 508 requirements)."""
    norm = name.lower().replace("-", "_").replace(".", "_")
    path = out / f"{norm}-{version}-py3-none-any.whl"
    dist_info = f"{norm}-{version}.dist-info"
    files = {
        f"{norm}/__init__.py": b"",
        f"{norm}/data.bin": None,  # streamed below
        f"{dist_info}/METADATA": (f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: bench\n"
                                  + "".join(f"Requires-Dist: {r}\n" for r in requires)).encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    compression = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
    with zipfile.ZipFile(path, "w", compression) as zf:
        for member, data in files.items():
            if data is None:
                digest, size = hashlib.sha256(), 0
                with zf.open(zipfile.ZipInfo(member), "w", force_zip64=payload > 2**31) as fh:
                    left = payload
                    while left:
                        chunk = os.urandom(min(left, 2**20))
                        fh.write(chunk)
                        digest.update(chunk)
                        size += len(chunk)
                        left -= len(chunk)
                b64 = base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
            else:
                zf.writestr(member, data)
                b64 = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
                size = len(data)
            record.append(f"{member},sha256={b64},{size}")
        record.append(f"{dist_info}/RECORD,,")
        zf.writestr(f"{dist_info}/RECORD", "\n".join(record) + "\n")
    return path


def make_sdist(out: Path, name: str, version: str) -> Path:
    norm = name.lower().replace("-", "_").replace(".", "_")
    path = out / f"{norm}-{version}.tar.gz"
    with tarfile.open(path, "w:gz") as tf:
        for member, data in {
            f"{norm}-{version}/PKG-INFO":
                f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: bench\n".encode(),
            f"{norm}-{version}/pyproject.toml": b"[project]\n",
        }.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path



# --- a live server -------------------------------------------------------------------------------


@dataclass
class LiveServer:
    url: str
    data: Path
    admin: str
    token: str
    process: subprocess.Popen
    log: Path
    env: dict[str, str] = field(default_factory=dict)  # besides this process's (a bucket's AWS_*)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """The `registry` CLI against this server's data directory, from another process."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")} | self.env
        return run([sys.executable, "-m", "registry", "--data", str(self.data), *args], env=env, check=check)

    def index(self, ws: str = "default") -> str:
        return f"{self.url}/{ws}/"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_server(data: Path, workers: int = 2, env: dict[str, str] | None = None, port: int | None = None,
                 **settings: str) -> LiveServer:
    port = port or free_port()
    log = data.parent / f"server-{port}.log"
    extra = dict(env or {})
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")} | extra
    env.update({f"REGISTRY_{k.upper()}": str(v) for k, v in settings.items()})
    # another checkout's code (PYTHONPATH): -P, or `-m` would put the working directory first on the
    # path, and a run from this checkout would serve this checkout's code under the other's name
    python = [sys.executable, "-P"] if "PYTHONPATH" in extra else [sys.executable]
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [*python, "-m", "registry", "--data", str(data), "serve", "--host", "127.0.0.1",
             "--port", str(port), "--workers", str(workers)],
            stdout=out, stderr=subprocess.STDOUT, env=env,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/_/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"registry serve did not start:\n{log.read_text()}")
        time.sleep(0.1)
    text = log.read_text()
    token = next((line.rsplit(" ", 1)[1] for line in text.splitlines() if "admin API token" in line), "")
    return LiveServer(url=url, data=data, admin="admin@localhost", token=token, process=proc, log=log, env=extra)


def new_team(server: LiveServer) -> dict:
    """A fresh user on ``server`` with write and read tokens, and a repository they can write to."""
    n = len(list(server.data.parent.glob("team-*"))) + 1
    (server.data.parent / f"team-{n}").mkdir()
    email, repo = f"dev{n}@example.com", f"repo{n}"
    server.cli("user", "create", email, "--name", f"Developer {n}")
    server.cli("repo", "create", f"default/{repo}", "--project", "MAIN")
    server.cli("grant", f"default/{repo}", email, "write")
    token = server.cli("token", "create", email).stdout.strip()
    read_token = server.cli("token", "create", email, "--scope", "read").stdout.strip()
    return dict(email=email, repo=repo, token=token, read_token=read_token, n=n)
