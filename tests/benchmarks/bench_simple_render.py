"""Rendering one project page of 200 files (run by hand): python tests/benchmarks/bench_simple_render.py

The time `render_project` takes, HTML and JSON, with no server: what a page costs the first time
it is asked for (pages are cached after that, keyed by what they show).
"""

from __future__ import annotations

import sys
import timeit
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from registry import model  # noqa: E402
from registry.web.negotiation import HTML, JSON  # noqa: E402
from registry.web.simple import render_project  # noqa: E402

VERSIONS = 100  # x (wheel + sdist) = 200 files


def page() -> tuple[model.Package, list[model.Version]]:
    at = datetime(2025, 1, 1, tzinfo=UTC)
    made = model.Provenance(at=at, by="dev@acme.test", channel="upload")
    package = model.Package(name="bench-pkg", display_name="Bench.Pkg", workspace="acme", repository="utils",
                            created=made)
    versions = []
    for i in range(VERSIONS):
        number = f"1.{i}.0"
        files = [model.DistFile(filename=name, size=1234, sha256=f"{i:064x}", blake2b_256=f"{i:064x}", md5=f"{i:032x}",
                                packagetype=kind, python_version="py3" if kind == "bdist_wheel" else "source",
                                requires_python=">=3.8", metadata_version="2.1", metadata_sha256=f"{i + 1:064x}",
                                uploaded=made)
                 for name, kind in [(f"bench_pkg-{number}-py3-none-any.whl", "bdist_wheel"),
                                    (f"bench_pkg-{number}.tar.gz", "sdist")]]
        versions.append(model.Version(package="bench-pkg", version=number, summary="A package", created=made,
                                      files=files, yanked=i % 10 == 0, yanked_reason="broken <build> & \"more\""))
    return package, versions


def main() -> None:
    package, versions = page()
    for label, fmt in [("HTML", HTML), ("JSON", JSON)]:
        runs = timeit.repeat(lambda fmt=fmt: render_project(package, versions, fmt, ""), number=200, repeat=5)
        print(f"{label}: {min(runs) / 200 * 1e6:,.0f} µs per 200-file page (best of 5 x 200)")


if __name__ == "__main__":
    main()
