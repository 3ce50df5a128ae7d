"""Helpers the benchmarks share: synthetic but valid distributions, servers, measurements."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.helpers import LiveServer, free_port, make_sdist, make_wheel, start_server  # noqa: E402,F401


def publish_in_process(data: Path, admin: str, ws: str, paths: list[Path]) -> None:
    """Publish files straight through the registry's operations (faster than any client, to fill)."""
    from registry import dists, identity, operations
    from registry.config import Settings
    from registry.datadir import Registry

    reg = Registry.open(Settings(data=str(data)))
    who = identity.operator(admin)
    for path in paths:
        with reg.blobs.stage() as staged:
            staged.write(path.read_bytes())
            staged.finish()
            with staged.open() as content:
                dist = dists.inspect(content, path.name)
            operations.publish_file(reg, who, "upload", ws, dist, staged)


def project_files(files: Path, name: str = "bench-pkg", versions: int = 100) -> list[Path]:
    """A wheel and an sdist of each of ``versions`` versions of ``name`` (200 files by default)."""
    built = []
    for i in range(versions):
        built += [make_wheel(files, name, f"1.{i}.0"), make_sdist(files, name, f"1.{i}.0")]
    return built


def registry_cli(data: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    return subprocess.run([sys.executable, "-m", "registry", "--data", str(data), *args], env=env,
                          check=True, capture_output=True, text=True).stdout.strip()


def pypiserver_bin() -> str:
    """pypiserver: the test venv's own (it is a test extra), else installed into its own venv."""
    here = Path(sys.executable).parent
    if (here / "pypi-server").exists():
        return str(here)
    venv = Path(os.environ.get("PYPISERVER_VENV", "/tmp/pypiserver-venv"))
    if not (venv / "bin" / "pypi-server").exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin/pip"), "install", "-q", "pypiserver[passlib]"], check=True)
    return str(venv / "bin")


def start_pypiserver(packages: Path, user: str, password: str, authenticate: str) -> tuple[subprocess.Popen, str]:
    bindir = pypiserver_bin()
    htpasswd = packages.parent / "htpasswd"
    subprocess.run([f"{bindir}/python", "-c",
                    "import sys; from passlib.apache import HtpasswdFile as H; h=H(sys.argv[1], new=True); "
                    "h.set_password(sys.argv[2], sys.argv[3]); h.save()", str(htpasswd), user, password], check=True)
    port = free_port()
    proc = subprocess.Popen([f"{bindir}/pypi-server", "run", "-i", "127.0.0.1", "-p", str(port), "-P", str(htpasswd),
                             "-a", authenticate, "--disable-fallback", str(packages)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(url + "/health", timeout=1)
            break
        except httpx.HTTPError:
            time.sleep(0.1)
    return proc, url


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def wrk(url: str, headers: dict[str, str], seconds: int = 10) -> tuple[float, str]:
    args = ["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency"]
    for k, v in headers.items():
        args += ["-H", f"{k}: {v}"]
    out = subprocess.run([*args, url], check=True, capture_output=True, text=True).stdout
    rps = float(next(line.split()[1] for line in out.splitlines() if line.startswith("Requests/sec")))
    non2xx = next((line.strip() for line in out.splitlines() if "Non-2xx" in line), "")
    return rps, non2xx


def wheel_bytes(name: str, version: str) -> tuple[str, bytes]:
    """A minimal valid pure-Python wheel, built in memory: (its filename, its bytes)."""
    norm = name.replace("-", "_")
    dist_info = f"{norm}-{version}.dist-info"
    files = {
        f"{norm}/__init__.py": f"__version__ = {version!r}\n".encode(),
        f"{dist_info}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: bench\n".encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: bench\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = [f"{p},sha256={base64.urlsafe_b64encode(hashlib.sha256(d).digest()).rstrip(b'=').decode()},{len(d)}"
              for p, d in files.items()] + [f"{dist_info}/RECORD,,"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for p, d in files.items():
            zf.writestr(p, d)
        zf.writestr(f"{dist_info}/RECORD", "\n".join(record) + "\n")
    return f"{norm}-{version}-py3-none-any.whl", buf.getvalue()


def fill_versions(reg, ws: str, versions: int, packages: int) -> None:
    """One publish-like commit per version record (packages pkg-0.. must exist), spread over
    ``packages`` packages, then a full repack: a big ledger in minutes, without uploads. Callers turn
    fsync off around it (it is setup, not what is measured). Each version's one file is a few bytes
    in the local blob store under their real digests, so that the store holds every file the
    ledger names, as a registry in use does (a check of the store finds none missing)."""
    from registry import identity, layout, model
    from registry.audit import Action, T, provenance_trailers
    from registry.ledger import Change

    op = identity.operator()
    prov = op.provenance("cli")
    started = time.perf_counter()
    for i in range(versions):
        name, version = f"pkg-{i % packages}", f"{i // packages}.{i % 7}.0"
        content = f"{name} {version}\n".encode()
        sha = hashlib.sha256(content).hexdigest()
        blob = reg.blobs._path(sha)  # (the local store's own layout; written directly: setup, not measured)
        blob.parent.mkdir(exist_ok=True)
        blob.write_bytes(content)
        record = model.Version(package=name, version=version, created=prov, files=[model.DistFile(
            filename=f"{name.replace('-', '_')}-{version}-py3-none-any.whl", size=len(content), sha256=sha,
            blake2b_256=hashlib.blake2b(content, digest_size=32).hexdigest(), md5=hashlib.md5(content).hexdigest(),
            packagetype="bdist_wheel", python_version="py3",
            metadata_version="2.1", metadata_sha256=sha, uploaded=prov)])
        reg.ledger.transact(lambda snap, record=record, name=name: Change(
            summary=f"publish {name} {record.version}", author=op.author, time=prov.at,
            writes={layout.version(ws, name, layout.version_key(record.version)): record},
            trailers=(*provenance_trailers(prov), (T.ACTION, Action.PUBLISH), (T.WORKSPACE, ws),
                      (T.PACKAGE, name), (T.VERSION, record.version))))
        if i % 5000 == 4999:
            reg.ledger.maybe_repack()
            print(f"  filled {i + 1} versions ({(i + 1) / (time.perf_counter() - started):.0f}/s)", flush=True)
    reg.ledger.repack(full=True)


PIP_ACCEPT = "application/vnd.pypi.simple.v1+json, application/vnd.pypi.simple.v1+html; q=0.1, text/html; q=0.01"


def children_cpu(pid: int) -> float:
    """CPU seconds (user and system) that ``pid``'s child processes (granian's workers) have used."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            fields = Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / tick  # (utime, stime: fields 14 and 15)
    return total


def wrk_cpu(live: LiveServer, url: str, headers: dict[str, str], seconds: int = 10) -> tuple[float, float, str]:
    """`wrk` against ``live``: requests/s, and the workers' CPU microseconds per request. The second
    is what a change costs, whatever else the machine runs (other load lowers requests/s, while a
    request's CPU time moves much less)."""
    before = children_cpu(live.process.pid)
    args = ["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency"]
    for k, v in headers.items():
        args += ["-H", f"{k}: {v}"]
    out = subprocess.run([*args, url], check=True, capture_output=True, text=True).stdout
    used = children_cpu(live.process.pid) - before
    rps = float(next(line.split()[1] for line in out.splitlines() if line.startswith("Requests/sec")))
    done = int(next(line.split()[0] for line in out.splitlines() if " requests in " in line))
    non2xx = next((line.strip() for line in out.splitlines() if "Non-2xx" in line), "")
    return rps, 1e6 * used / max(done, 1), non2xx


def index_with_and_without(option: str, modes: tuple[str, str], rounds: int = 3,
                           versions: int = 100) -> tuple[dict[str, list[float]], Path, tuple[str, str]]:
    """The authenticated 200-file JSON project page under `wrk`, served by `registry serve --workers 2`
    with the setting ``option`` (a start_server keyword) at each of ``modes`` in turn, on one data
    directory, ``rounds`` pairs. Returns the workers' CPU µs per request by mode (requests/s printed),
    the data directory and (admin, token)."""
    tmp = Path(tempfile.mkdtemp())
    files = tmp / "files"
    files.mkdir()
    built = project_files(files, "bench-pkg", versions)
    data = tmp / "data"
    live = start_server(data, workers=2)
    registry_cli(live.data, "package", "create", "default", "bench-pkg", "--repo", "packages")
    publish_in_process(live.data, live.admin, "default", built)
    admin, token = live.admin, live.token
    live.stop()
    figures: dict[str, list[float]] = {mode: [] for mode in modes}
    for _ in range(rounds):
        for mode in modes:
            live = start_server(data, workers=2, **{option: mode})
            try:
                headers = {"Authorization": basic(admin, token), "Accept": PIP_ACCEPT}
                url = f"{live.url}/default/bench-pkg/"
                wrk(url, headers, seconds=2)  # warm up
                rps, cpu, errors = wrk_cpu(live, url, headers)
                figures[mode].append(cpu)
                print(f"{option} {mode:8}: {rps:,.0f} requests/s, {cpu:.1f} µs CPU a request {errors}", flush=True)
            finally:
                live.stop()
    return figures, data, (admin, token)


def static_mirror(root: Path, files: list[Path]) -> Path:
    """A PEP 503 tree of the same files, with PEP 658 `.metadata` beside each wheel."""

    simple = root / "simple"
    by_project: dict[str, list[Path]] = {}
    for f in files:
        by_project.setdefault(f.name.split("-")[0].replace("_", "-"), []).append(f)
    for project, paths in by_project.items():
        d = simple / project
        d.mkdir(parents=True)
        links = []
        for p in paths:
            shutil.copy(p, d / p.name)
            sha = hashlib.sha256(p.read_bytes()).hexdigest()
            if p.name.endswith(".whl"):
                with zipfile.ZipFile(p) as zf:
                    meta = zf.read(next(m for m in zf.namelist() if m.endswith(".dist-info/METADATA")))
                (d / f"{p.name}.metadata").write_bytes(meta)
                msha = hashlib.sha256(meta).hexdigest()
                links.append(f'<a href="{p.name}#sha256={sha}" data-core-metadata="sha256={msha}" '
                             f'data-dist-info-metadata="sha256={msha}">{p.name}</a><br>')
            else:
                links.append(f'<a href="{p.name}#sha256={sha}">{p.name}</a><br>')
        (d / "index.html").write_text("<!DOCTYPE html><html><body>\n" + "\n".join(links) + "\n</body></html>\n")
    return simple


def start_nginx(root: Path) -> tuple[subprocess.Popen | None, str | None]:
    """nginx (2 workers, as the registry runs) serving ``root`` as static files: (process, base URL),
    or (None, None) where nginx isn't installed."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if nginx is None:
        return None, None
    port = free_port()
    conf = root / "nginx.conf"
    conf.write_text(f"""
user root; worker_processes 2; daemon off; pid {root}/nginx.pid; error_log {root}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{ access_log off; sendfile on; tcp_nopush on; keepalive_requests 10000;
  types {{ text/html html; application/vnd.pypi.simple.v1+json json; application/octet-stream whl gz metadata; }}
  server {{ listen 127.0.0.1:{port}; root {root}; location / {{ index index.html; }} }} }}
""")
    proc = subprocess.Popen([nginx, "-c", str(conf), "-p", str(root)], stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            httpx.get(url, timeout=1)
            return proc, url
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    return None, None


def install(client: str, index: str, target: Path, home: Path, roots: list[str], expected: int) -> float:
    """Seconds for a cold install (no cache) of ``roots`` by ``client`` (uv or pip) into ``target``,
    which must end with ``expected`` packages (then removed)."""
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "UV_NO_CACHE": "1", "PIP_NO_CACHE_DIR": "1",
           "PIP_CONFIG_FILE": os.devnull, "UV_NO_CONFIG": "1"}
    os.sync()  # (what the last step wrote reaches the disk now, not during this measurement)
    time.sleep(0.5)
    if client == "uv":
        uv = shutil.which("uv") or str(Path(sys.executable).parent / "uv")
        args = [uv, "pip", "install", "--no-cache", "--python", sys.executable, "--target", str(target),
                "--index-url", index, *roots]
    else:
        args = [sys.executable, "-m", "pip", "install", "--no-cache-dir", "--quiet", "--target", str(target),
                "--index-url", index, *roots]
    started = time.perf_counter()
    done = subprocess.run(args, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(args[:3])} against {index.split('@')[-1]} failed:\n{done.stderr}")
    took = time.perf_counter() - started
    installed = len(list(target.glob("*.dist-info")))
    assert installed == expected, f"{installed} packages installed, not {expected}"
    shutil.rmtree(target)
    return took
