"""Container images built and run by a real engine, podman, the way these machines allow
(../shared/reference/containers.md): the `runc` runtime (crun can't set rlimits here), explicit
ulimits on every build and run, and the host's network (the tests' servers are on 127.0.0.1).

No image registry is reachable, so the public `FROM` of a Dockerfile is replaced at build time by
a base made here from Debian's packages (`podman build --from`): the Dockerfiles stay exactly what a
user builds with Docker. The base behaves like the official Python images (`python3`, `pip` on the
PATH, installs allowed: a venv at /usr/local) and is made once per machine, then found in podman's
store (`base_image()`, under a lock, so parallel test processes build it once).

Builds reach the package index through this machine's CA bundle, mounted for the build only (with
a pip.conf naming it), never baked into an image.

    python -m tests.support.containers base   # make the base now (CI does, before the suite)
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

ENGINE = ("podman", "--runtime", "runc")
ULIMITS = ("--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024")
SUITE = "bookworm"
ROOTFS = f"localhost/debian-rootfs:{SUITE}"  # debootstrap's minbase with python3
BASE = f"localhost/debian-python:{SUITE}"  # ... and a venv at /usr/local: the stand-in for python:3.x-slim
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
LOCK = Path(tempfile.gettempdir()) / "pypi-registry-containers.lock"

_PYTHON_LAYER = """\
FROM {rootfs}
RUN python3 -m venv /usr/local && rm -rf /root/.cache
ENV LANG=C.UTF-8 PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["python3"]
"""


class EngineMissing(RuntimeError):
    pass


def _apt_mirror() -> str:
    """The Debian mirror this machine's apt uses (DEBIAN_MIRROR overrides it): debootstrap fetches there."""
    if os.environ.get("DEBIAN_MIRROR"):
        return os.environ["DEBIAN_MIRROR"]
    for source in (Path("/etc/apt/sources.list.d/debian.sources"), Path("/etc/apt/sources.list")):
        text = source.read_text() if source.exists() else ""
        for line in text.splitlines():
            words = line.split()
            if words[:1] == ["URIs:"] and len(words) > 1 and not words[1].endswith("-security"):
                return words[1]
            if words[:1] == ["deb"] and len(words) > 2 and "security" not in words[-2]:
                return words[1] if not words[1].startswith("[") else words[2]
    raise EngineMissing("no Debian mirror found in /etc/apt/sources.list(.d): set DEBIAN_MIRROR")


def require_engine() -> None:
    missing = [tool for tool in ("podman", "runc", "debootstrap") if shutil.which(tool) is None]
    if missing:
        raise EngineMissing(f"{', '.join(missing)} missing: `apt-get install -y podman runc debootstrap` "
                            "(.ci/run does on a new machine)")


def podman(*args: str, check: bool = True, timeout: float = 900, input: bytes | None = None,
           capture: bool = True) -> subprocess.CompletedProcess:
    """One podman command; a failure raises with its output."""
    result = subprocess.run([*ENGINE, *args], input=input, timeout=timeout,
                            stdout=subprocess.PIPE if capture else None, stderr=subprocess.STDOUT if capture else None)
    if check and result.returncode != 0:
        shown = (result.stdout or b"").decode(errors="replace")[-6000:]
        raise RuntimeError(f"podman {' '.join(args[:3])} ... exited {result.returncode}:\n{shown}")
    return result


def image_exists(name: str) -> bool:
    return podman("image", "exists", name, check=False).returncode == 0


def image_size(name: str) -> int:
    """The image's size in bytes, as `podman images` reports it (all its layers)."""
    out = podman("image", "inspect", "--format", "{{.Size}}", name).stdout.decode().strip()
    return int(out)


def base_image() -> str:
    """The Python base image, made once per machine (debootstrap, ~1 minute) and kept in podman's store."""
    require_engine()
    if image_exists(BASE):
        return BASE
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not image_exists(ROOTFS):
            _import_rootfs()
        if not image_exists(BASE):
            with tempfile.TemporaryDirectory() as context:
                (Path(context) / "Containerfile").write_text(_PYTHON_LAYER.format(rootfs=ROOTFS))
                podman("build", "-q", "--network", "host", *ULIMITS, "-t", BASE, context)
    return BASE


def _import_rootfs() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        rootfs = Path(scratch) / "rootfs"
        subprocess.run(["debootstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates",
                        SUITE, str(rootfs), _apt_mirror()], check=True, timeout=1200,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man",
                      "usr/share/info", "usr/share/locale"):
            shutil.rmtree(rootfs / cache, ignore_errors=True)
            (rootfs / cache).mkdir(parents=True, exist_ok=True)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        assert tar.stdout is not None
        podman("import", "-", ROOTFS, input=tar.stdout.read())
        tar.wait()


def build(context: Path, tag: str, *, file: Path | None = None, build_args: Mapping[str, str] = {},
          no_cache: bool = False) -> float:
    """Build ``context`` (its Dockerfile, or ``file``) on the local base as ``tag``; the seconds it took
    (``no_cache``: every layer built again, none taken from earlier builds)."""
    base = base_image()
    with tempfile.TemporaryDirectory() as scratch:
        pip_conf = Path(scratch) / "pip.conf"
        pip_conf.write_text(f"[global]\ncert = {CA_BUNDLE}\n")  # (PIP_CERT for the build's pip, not the image's)
        # (--format docker: an OCI image has no HEALTHCHECK; Docker's format, what `docker build` makes, keeps it)
        args = ["build", "--format", "docker", "--network", "host", *ULIMITS, "--from", base, "-t", tag,
                "-v", f"{CA_BUNDLE}:{CA_BUNDLE}:ro", "-v", f"{pip_conf}:/etc/pip.conf:ro"]
        for name, value in build_args.items():
            args += ["--build-arg", f"{name}={value}"]
        if file is not None:
            args += ["-f", str(file)]
        if no_cache:
            args.append("--no-cache")
        started = time.monotonic()
        podman(*args, str(context))
        return time.monotonic() - started


def run_args(image: str, command: Sequence[str] = (), *, env: Mapping[str, str] = {},
             volumes: Iterable[tuple[str | Path, str]] = (), workdir: str | None = None, name: str | None = None,
             detach: bool = False, remove: bool = True, extra: Sequence[str] = ()) -> list[str]:
    """The podman arguments that run ``image`` as the tests do: host network, the ulimits, ``env``
    as the container's environment (nothing of ours leaks in), ``volumes`` as (host, container)."""
    args = ["run", "--network", "host", *ULIMITS]
    if remove:
        args.append("--rm")
    if detach:
        args.append("-d")
    if name:
        args += ["--name", name]
    if workdir:
        args += ["-w", workdir]
    for key, value in env.items():
        args += ["-e", f"{key}={value}"]
    for host, inside in volumes:
        args += ["-v", f"{host}:{inside}"]
    return [*args, *extra, image, *command]


def run(image: str, command: Sequence[str] = (), *, timeout: float = 600, check: bool = False,
        **options) -> subprocess.CompletedProcess:
    """Run a container to its end; its output (stdout and stderr together) on ``.stdout``."""
    return podman(*run_args(image, command, **options), check=check, timeout=timeout)


def remove_container(name: str) -> None:
    podman("rm", "-f", "-t", "0", name, check=False)


if __name__ == "__main__":
    if sys.argv[1:] != ["base"]:
        sys.exit("usage: python -m tests.support.containers base")
    started = time.monotonic()
    print(base_image(), f"({time.monotonic() - started:.1f} s)")
