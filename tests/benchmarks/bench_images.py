"""The container images: the server's (the repository's Dockerfile) and the pipe's
(pipes/pypi-publish), built by podman on this machine's local base (tests/support/containers.py,
made first and not timed: "warm base").

Prints each image's size; its build time with every layer built again (--no-cache), again with the
layer cache warm and nothing changed, and (the server's) after a change to the source, which
rebuilds only the layer that installs the project; and the server's start, from `podman run` to the
first 200 of /_/health, on an empty volume (which bootstraps) and on one that has a ledger (median
of --starts each).

    .venv-test/bin/python tests/benchmarks/bench_images.py [--starts 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support import containers, server_image  # noqa: E402

PIPE = ROOT / "pipes" / "pypi-publish"
PIPE_TAG = "localhost/pypi-publish:bench"
SERVER_TAG = "localhost/pypi-registry:bench"
CONTEXT = ("Dockerfile", ".dockerignore", "pyproject.toml", "README.md", ".ci/constraints.txt", "registry", "pipelines")


def source_changed_build() -> float:
    """The server's build from a copy of its context in which one module has changed."""
    with tempfile.TemporaryDirectory() as scratch:
        context = Path(scratch)
        for name in CONTEXT:
            source, target = ROOT / name, context / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(source, target)
        init = context / "registry" / "__init__.py"
        init.write_text(init.read_text() + f"\n# changed {time.time_ns()}\n")
        return containers.build(context, SERVER_TAG)


def starts(count: int) -> tuple[list[float], list[float]]:
    """Seconds from `podman run` to the first 200: on fresh volumes, and on one with a ledger."""
    fresh, again = [], []
    volume = server_image.new_volume()
    try:
        for n in range(count):
            for_fresh = server_image.new_volume()
            try:
                running = server_image.start(for_fresh, SERVER_TAG)
                fresh.append(running.wait_healthy())
                running.remove()
            finally:
                server_image.remove_volume(for_fresh)
            running = server_image.start(volume, SERVER_TAG)
            took = running.wait_healthy()
            running.remove()
            if n or count == 1:  # (the first start on `volume` bootstraps it)
                again.append(took)
        if count > 1:
            running = server_image.start(volume, SERVER_TAG)
            again.append(running.wait_healthy())
            running.remove()
    finally:
        server_image.remove_volume(volume)
    return fresh, again


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--starts", type=int, default=5)
    args = parser.parse_args()
    started = time.monotonic()
    containers.base_image()
    print(f"base {containers.BASE}: ready in {time.monotonic() - started:.1f} s "
          f"({containers.image_size(containers.BASE) / 1e6:.0f} MB)")
    for name, context, tag in (("server", ROOT, SERVER_TAG), ("pipe", PIPE, PIPE_TAG)):
        cold = containers.build(context, tag, no_cache=True)
        warm = min(containers.build(context, tag) for _ in range(2))  # (the first may still fill the cache)
        print(f"{name} image {tag}: {containers.image_size(tag) / 1e6:.0f} MB; build {cold:.1f} s with no layer "
              f"cache, {warm:.1f} s with it warm and nothing changed")
    print(f"server image after a source change: {source_changed_build():.1f} s")
    fresh, again = starts(args.starts)
    print(f"server start to the first 200 of /_/health: median {statistics.median(fresh):.2f} s on an empty volume "
          f"(bootstrap; {', '.join(f'{t:.2f}' for t in fresh)}), median {statistics.median(again):.2f} s on a volume "
          f"with a ledger ({', '.join(f'{t:.2f}' for t in again)})")
    for tag in (SERVER_TAG, PIPE_TAG):
        containers.podman("rmi", tag, check=False)


if __name__ == "__main__":
    main()
