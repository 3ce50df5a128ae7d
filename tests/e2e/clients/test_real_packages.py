"""Real packages in: files from old and new build backends, and the odd but valid files older tools
wrote, published with the real twine (`uv publish` where twine itself refuses the file) to a live
registry, and installed back from it with pip and uv.

The backends are pinned and fetched by `python -m build` (an isolated build) from pip's configured
index, once per module; everything else talks only to the server the suite starts on 127.0.0.1.
"""

from __future__ import annotations

import base64
import hashlib
import io
import os
import sys
import tarfile
import textwrap
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from packaging.utils import canonicalize_name

from registry.coremetadata import NEWEST
from tests.support.helpers import client_env, new_team, run, said, tool

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")

LICENSE = "MIT License\n\nCopyright (c) the registry's tests\n"
LICENSE_FILE_UNDER_2_1 = "License-File is a Metadata-Version 2.4 field; this file declares 2.1."


@dataclass(frozen=True)
class Backend:
    label: str
    name: str  # as the project's author spells it
    requires: str  # pinned: "current" means the newest release when this test was written
    backend: str
    license: str | None  # the [project] license entry; None: a poetry-core 1.x [tool.poetry] project
    wheel_warnings: tuple[str, ...] = ()
    sdist_warnings: tuple[str, ...] = ()


BACKENDS = [
    Backend("setuptools 69", "Real.SetupTools69", "setuptools==69.5.1", "setuptools.build_meta",
            'license = {text = "MIT"}',
            # its bdist_wheel keeps the dots and capitals of the name in the wheel's filename
            wheel_warnings=(LICENSE_FILE_UNDER_2_1,
                            "Wheel filenames carry the normalised project name ('real_setuptools69', binary "
                            "distribution format); this one has 'Real.SetupTools69'. pip and uv read either."),
            sdist_warnings=(LICENSE_FILE_UNDER_2_1,)),
    Backend("setuptools current", "real-setuptools-current", "setuptools==84.2.1", "setuptools.build_meta",
            'license = "MIT"'),
    Backend("hatchling 1.21", "Real_Hatchling121", "hatchling==1.21.1", "hatchling.build",
            'license = {text = "MIT"}',
            wheel_warnings=(LICENSE_FILE_UNDER_2_1,), sdist_warnings=(LICENSE_FILE_UNDER_2_1,)),
    Backend("hatchling current", "real-hatchling-current", "hatchling==1.33.0", "hatchling.build", 'license = "MIT"'),
    Backend("flit-core", "real-flit", "flit_core==3.12.0", "flit_core.buildapi", 'license = "MIT"'),
    Backend("poetry-core 1.9", "Real.Poetry19", "poetry-core==1.9.1", "poetry.core.masonry.api", None),
    Backend("poetry-core 2", "real-poetry2", "poetry-core==2.5.0", "poetry.core.masonry.api", 'license = "MIT"'),
]


def module_of(name: str) -> str:
    return canonicalize_name(name).replace("-", "_")


def backend_project(root: Path, b: Backend) -> Path:
    """A project with a LICENSE file (so the backend writes License-File, where it does)."""
    module = module_of(b.name)
    (root / module).mkdir(parents=True)
    (root / module / "__init__.py").write_text(f'"""Built by {b.label}."""\n__version__ = "1.0.0"\n')
    (root / "LICENSE").write_text(LICENSE)
    (root / "README.md").write_text(f"# {b.name}\n")
    text = f'[build-system]\nrequires = ["{b.requires}"]\nbuild-backend = "{b.backend}"\n'
    if b.license is None:
        text += textwrap.dedent(f"""
            [tool.poetry]
            name = "{b.name}"
            version = "1.0.0"
            description = "Built by {b.label}"
            authors = ["Test <test@example.com>"]
            license = "MIT"
            readme = "README.md"
            packages = [{{include = "{module}"}}]

            [tool.poetry.dependencies]
            python = ">=3.8"
            """)
    else:
        text += textwrap.dedent(f"""
            [project]
            name = "{b.name}"
            version = "1.0.0"
            description = "Built by {b.label}"
            readme = "README.md"
            requires-python = ">=3.8"
            authors = [{{name = "Test", email = "test@example.com"}}]
            """) + b.license + "\n"
        if b.backend.startswith("hatchling"):
            text += f'\n[tool.hatch.build.targets.wheel]\npackages = ["{module}"]\n'
        elif b.backend.startswith("flit"):
            text += f'\n[tool.flit.module]\nname = "{module}"\n'
        elif b.backend.startswith("poetry"):
            text += f'\n[tool.poetry]\npackages = [{{include = "{module}"}}]\n'
    (root / "pyproject.toml").write_text(text)
    return root


def build_isolated(project: Path) -> list[Path]:
    """`python -m build` in isolation: pip installs the pinned backend from its configured index."""
    out = project / "dist"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REGISTRY_", "PYTHONPATH"))}
    run([sys.executable, "-m", "build", "--outdir", str(out), str(project)], env=env, timeout=600)
    return sorted(out.iterdir())


# --- files as older tools wrote them (valid and installable, built here in milliseconds) ----------


def _record_line(member: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{member},sha256={digest},{len(data)}"


def write_wheel(out: Path, filename: str, metadata: str, purelib: bool = True,
                extra: dict[str, str] | None = None) -> Path:
    """A valid wheel named ``filename`` whose module reports the version in its name."""
    name_part, version = filename.split("-")[:2]
    module, dist_info = module_of(name_part), f"{name_part}-{version}.dist-info"
    tags = filename.removesuffix(".whl").split("-")[-3:]
    wheel = "Wheel-Version: 1.0\nGenerator: the registry's tests\n" + f"Root-Is-Purelib: {str(purelib).lower()}\n"
    wheel += "".join(f"Tag: {py}-{tags[1]}-{plat}\n" for py in tags[0].split(".") for plat in tags[2].split("."))
    files = {f"{module}/__init__.py": f'__version__ = "{version}"\n', f"{dist_info}/METADATA": metadata,
             f"{dist_info}/WHEEL": wheel, **{f"{dist_info}/{k}": v for k, v in (extra or {}).items()}}
    with zipfile.ZipFile(out / filename, "w", zipfile.ZIP_DEFLATED) as zf:
        record = []
        for member, text in files.items():
            zf.writestr(member, text.encode())
            record.append(_record_line(member, text.encode()))
        zf.writestr(f"{dist_info}/RECORD", "\n".join([*record, f"{dist_info}/RECORD,,"]) + "\n")
    return out / filename


def write_sdist(out: Path, filename: str, name: str, version: str) -> Path:
    """A legacy-named sdist (.tar.gz or .zip) with a setuptools 69-style PKG-INFO, which pip and uv
    build with flit_core from the test environment."""
    top = filename.removesuffix(".zip").removesuffix(".tar.gz")
    module = module_of(name)
    files = {
        f"{top}/PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\nSummary: legacy sdist\n"
                           "License: MIT\nRequires-Python: >=3.8\nLicense-File: LICENSE\n",
        f"{top}/LICENSE": LICENSE,
        f"{top}/{module}/__init__.py": f'"""A legacy sdist."""\n__version__ = "{version}"\n',
        f"{top}/pyproject.toml": textwrap.dedent(f"""\
            [build-system]
            requires = ["flit_core>=3.9"]
            build-backend = "flit_core.buildapi"

            [project]
            name = "{name}"
            version = "{version}"
            description = "legacy sdist"
            requires-python = ">=3.8"

            [tool.flit.module]
            name = "{module}"
            """),
    }
    if filename.endswith(".zip"):
        with zipfile.ZipFile(out / filename, "w", zipfile.ZIP_DEFLATED) as zf:
            for member, text in files.items():
                zf.writestr(member, text)
    else:
        with tarfile.open(out / filename, "w:gz") as tf:
            for member, text in files.items():
                info = tarfile.TarInfo(member)
                info.size, info.mtime = len(text.encode()), 1_600_000_000  # wheels can't hold pre-1980 times
                tf.addfile(info, io.BytesIO(text.encode()))
    return out / filename


def pep625(name: str, version: str, filename: str, what: str) -> str:
    return (f"Source distribution filenames are '{module_of(name)}-{version}.tar.gz' since PEP 625 (normalised "
            f"name, .tar.gz); this one is {filename!r}, {what} as older tools wrote. pip and uv install it, and it "
            "is served under the name it was uploaded with.")


def old_wheel_name(filename: str) -> str:
    part = filename.split("-")[0]
    return (f"Wheel filenames carry the normalised project name ({module_of(part)!r}, binary distribution format); "
            f"this one has {part!r}. pip and uv read either.")


# One field per Metadata-Version that introduced it (2.0: what bdist_wheel wrote under it).
METADATA_FIELDS = {
    "1.0": "", "1.1": "Classifier: Programming Language :: Python :: 3\n", "1.2": "Requires-Python: >=3.8\n",
    "2.0": "Requires-Python: >=3.8\nProvides-Extra: test\n", "2.1": "Description-Content-Type: text/markdown\n",
    "2.2": "Requires-Python: >=3.8\n", "2.3": "Requires-Python: >=3.8\n",
    "2.4": "License-Expression: MIT\nLicense-File: LICENSE\n", "2.5": "Import-Name: mv25\n", "2.99": "",
}
TWINE_REFUSES = {"2.0", "2.99"}  # its own packaging validation knows neither; uv publish sends them


def metadata_wheel(out: Path, version: str) -> Path:
    name = f"mv{version.replace('.', '')}"
    text = f"Metadata-Version: {version}\nName: {name}\nVersion: 1.0\nSummary: Metadata-Version {version}\n"
    extra = {"licenses/LICENSE": LICENSE} if version == "2.4" else {}
    return write_wheel(out, f"{name}-1.0-py3-none-any.whl", text + METADATA_FIELDS[version], extra=extra)


@dataclass
class Expected:
    name: str  # the package (display name)
    version: str
    module: str
    files: dict[str, tuple[str, ...]]  # filename -> the warnings the registry should record
    twine: bool = True  # published with twine, else with uv publish


def synthesized(out: Path) -> list[tuple[Expected, list[Path]]]:
    found = []
    abi3 = "abi3_ext-1.0-cp38-abi3-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"  # as maturin names them
    found.append((Expected("abi3-ext", "1.0", "abi3_ext", {abi3: ()}),
                  [write_wheel(out, abi3, "Metadata-Version: 2.4\nName: abi3-ext\nVersion: 1.0\n", purelib=False)]))
    for filename, name in (("Old_Wheel-1.0-py2.py3-none-any.whl", "Old_Wheel"),
                           ("old.dotted.wheel-1.0-py3-none-any.whl", "old.dotted.wheel")):
        path = write_wheel(out, filename, f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
        found.append((Expected(name, "1.0", module_of(name), {filename: (old_wheel_name(filename),)}), [path]))
    for filename, name, version in (("Legacy.Dotted-1.0.tar.gz", "Legacy.Dotted", "1.0"),
                                    ("LegacyCapital-2.1.tar.gz", "LegacyCapital", "2.1"),
                                    ("legacy-hyphen-name-0.3.tar.gz", "legacy-hyphen-name", "0.3"),
                                    ("Legacy_Zip-1.5.zip", "Legacy_Zip", "1.5")):
        what = "a .zip" if filename.endswith(".zip") else "a legacy name"
        warnings = (LICENSE_FILE_UNDER_2_1, pep625(name, version, filename, what))
        found.append((Expected(name, version, module_of(name), {filename: warnings}),
                      [write_sdist(out, filename, name, version)]))
    for version in METADATA_FIELDS:
        name = f"mv{version.replace('.', '')}"
        warnings = ()
        if version == "2.0":
            warnings = ("Metadata-Version 2.0 was never standardised (PEP 426 was withdrawn); the file's fields "
                        "were read as Metadata-Version 2.1 fields.",)
        elif version == "2.99":
            warnings = (f"Metadata-Version 2.99 is newer than this registry knows ({NEWEST}); the file's fields "
                        f"were read as Metadata-Version {NEWEST} fields.",)
        path = metadata_wheel(out, version)
        found.append((Expected(name, "1.0", name, {path.name: warnings}, twine=version not in TWINE_REFUSES), [path]))
    return found


# --- the module's one publish ----------------------------------------------------------------------


@dataclass
class Published:
    server: object
    team: dict
    expected: list[Expected]

    def index(self, token: str | None = None) -> str:
        host = self.server.url.split("://", 1)[1]
        return f"http://{quote(self.team['email'], safe='')}:{token or self.team['read_token']}@{host}/default/"

    def get(self, path: str, **headers: str) -> httpx.Response:
        return httpx.get(f"{self.server.url}{path}", auth=(self.team["email"], self.team["read_token"]),
                         headers=headers, timeout=30)


@pytest.fixture(scope="module")
def published(server, tmp_path_factory) -> Published:
    root = tmp_path_factory.mktemp("real")
    team = new_team(server)
    projects = [backend_project(root / f"backend-{i}", b) for i, b in enumerate(BACKENDS)]
    with ThreadPoolExecutor(4) as pool:
        built = list(pool.map(build_isolated, projects))
    expected = []
    for b, files in zip(BACKENDS, built, strict=True):
        assert len(files) == 2, files
        warnings = {f.name: b.wheel_warnings if f.name.endswith(".whl") else b.sdist_warnings for f in files}
        expected.append((Expected(b.name, "1.0.0", module_of(b.name), warnings), files))
    (root / "synth").mkdir()
    expected += synthesized(root / "synth")

    admin = (server.admin, server.token)
    for e, _ in expected:
        r = httpx.post(f"{server.url}/api/workspaces/default/packages", auth=admin, timeout=30,
                       json={"name": e.name, "repository": team["repo"]})
        assert r.status_code == 201, r.text
    env = client_env(root / "home")
    by_twine = [str(p) for e, paths in expected for p in paths if e.twine]
    by_uv = [str(p) for e, paths in expected for p in paths if not e.twine]
    run([sys.executable, "-m", "twine", "upload", "--repository-url", server.index(), "-u", team["email"],
         "-p", team["token"], *by_twine], env=env)
    run([tool("uv"), "publish", "--publish-url", server.index(), "--username", team["email"], "--password",
         team["token"], *by_uv], env=env)
    return Published(server, team, [e for e, _ in expected])


def test_every_file_is_accepted_with_the_warnings_it_deserves(published):
    for e in published.expected:
        r = published.get(f"/api/workspaces/default/packages/pypi/{canonicalize_name(e.name)}/versions/{e.version}")
        assert r.status_code == 200, r.text
        recorded = {f["filename"]: tuple(f["warnings"]) for f in r.json()["files"]}
        assert recorded == e.files, e.name


def test_the_simple_index_serves_them_under_the_names_they_were_uploaded_with(published):
    for e in published.expected:
        page = published.get(f"/default/{canonicalize_name(e.name)}/", accept="application/vnd.pypi.simple.v1+json")
        files = {f["filename"]: f for f in page.json()["files"]}
        assert set(files) == set(e.files), e.name
        for filename, f in files.items():
            url = f"{published.server.url}/default/{canonicalize_name(e.name)}/{f['url']}"
            body = httpx.get(url, auth=(published.team["email"], published.team["read_token"]), timeout=30)
            assert hashlib.sha256(body.content).hexdigest() == f["hashes"]["sha256"], filename
            metadata = httpx.get(url + ".metadata", auth=(published.team["email"], published.team["read_token"]))
            if filename.endswith(".whl"):  # PEP 658: wheels only
                assert (f["core-metadata"] and metadata.status_code == 200
                        and metadata.content.startswith(b"Metadata-Version"))
            else:
                assert f["core-metadata"] is False and metadata.status_code == 404
    zip_page = published.get("/default/legacy-zip/", accept="text/html").text
    assert ">Legacy_Zip-1.5.zip</a>" in zip_page and 'href="1.5/Legacy_Zip-1.5.zip#sha256=' in zip_page
    # the JSON API reads a release's metadata from its only file, here a .zip sdist
    doc = published.get("/default/pypi/legacy-zip/json").json()
    assert (doc["info"]["name"], doc["info"]["version"],
            doc["info"]["license_files"]) == ("Legacy_Zip", "1.5", ["LICENSE"])
    assert [(f["filename"], f["packagetype"]) for f in doc["urls"]] == [("Legacy_Zip-1.5.zip", "sdist")]


def test_metadata_version_3_is_refused_with_what_to_do(published, tmp_path):
    path = write_wheel(tmp_path, "mv30-1.0-py3-none-any.whl", "Metadata-Version: 3.0\nName: mv30\nVersion: 1.0\n")
    r = httpx.post(f"{published.server.url}/api/workspaces/default/packages",
                   auth=(published.server.admin, published.server.token),
                   json={"name": "mv30", "repository": published.team["repo"]})
    assert r.status_code == 201, r.text
    proc = run([tool("uv"), "publish", "--publish-url", published.server.index(), "--username", published.team["email"],
                "--password", published.team["token"], str(path)], env=client_env(tmp_path / "home"), check=False)
    assert proc.returncode != 0
    assert "Metadata-Version 3.0 is a major version this registry doesn't know" in said(proc), said(proc)
    assert "writes Metadata-Version 2.x" in said(proc)


def requirements(published: Published) -> list[str]:
    return [f"{e.name}=={e.version}" for e in published.expected]


def versions_in(site: Path, expected: list[Expected]) -> dict[str, str]:
    modules = [e.module for e in expected]
    code = "import importlib, sys\nfor m in sys.argv[1:]: print(m, importlib.import_module(m).__version__)"
    proc = run([sys.executable, "-c", code, *modules], env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"})
    return dict(line.split(" ", 1) for line in proc.stdout.splitlines())


def test_pip_installs_every_one(published, tmp_path):
    # sdists are built with flit_core from this environment: the registry is the only index here
    proc = run([sys.executable, "-m", "pip", "install", "--no-cache-dir", "--no-build-isolation", "--target",
                str(tmp_path / "site"), "--index-url", published.index(), *requirements(published)],
               env=client_env(tmp_path / "pip-home"), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert versions_in(tmp_path / "site", published.expected) == {e.module: e.version for e in published.expected}


def test_uv_installs_every_one(published, tmp_path):
    proc = run([tool("uv"), "pip", "install", "--no-cache", "--no-build-isolation", "--python", sys.executable,
                "--target", str(tmp_path / "site"), "--index-url", published.index(), *requirements(published)],
               env=client_env(tmp_path / "uv-home"), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert versions_in(tmp_path / "site", published.expected) == {e.module: e.version for e in published.expected}


# Files the public index hosts, fetched by pip (pinned) from its configured index as they are: the
# kinds a team moving its packages here brings along (legacy sdist names, License-File under 2.1,
# an old wheel name).
HOSTED = ["ruamel.yaml.clib==0.2.8", "backports.tarfile==1.2.0", "zope.interface==6.1", "Django==4.2"]
HOSTED_WHEELS = ["PyYAML==6.0.1", "setuptools==69.5.1"]


def test_files_the_public_index_hosts_are_accepted_and_installed(server, tmp_path):
    env = client_env(tmp_path / "home")
    env.pop("PIP_CONFIG_FILE")  # (this one download uses pip's own index configuration)
    files = tmp_path / "files"
    for spec, kind in ((HOSTED, "--no-binary"), (HOSTED_WHEELS, "--only-binary")):
        run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", kind, ":all:", "-d", str(files), *spec],
            env=env)
    team = new_team(server)
    admin = (server.admin, server.token)
    names = [spec.split("==")[0] for spec in HOSTED + HOSTED_WHEELS]
    for name in names:
        r = httpx.post(f"{server.url}/api/workspaces/default/packages", auth=admin, timeout=30,
                       json={"name": name, "repository": team["repo"]})
        assert r.status_code in (201, 409), r.text
    paths = sorted(files.iterdir())
    assert len(paths) == 6, paths
    run([sys.executable, "-m", "twine", "upload", "--repository-url", server.index(), "-u", team["email"],
         "-p", team["token"], *map(str, paths)], env=client_env(tmp_path / "home2"))
    for name, spec in zip(names, HOSTED + HOSTED_WHEELS, strict=True):
        version = spec.split("==")[1]
        r = httpx.get(f"{server.url}/api/workspaces/default/packages/pypi/{canonicalize_name(name)}/versions/{version}",
                      auth=admin, timeout=30)
        assert r.status_code == 200, r.text
        [f] = r.json()["files"]
        assert LICENSE_FILE_UNDER_2_1 in f["warnings"], (name, f["warnings"])
    # the wheels come back with pip from here alone (the sdists' build backends live elsewhere)
    host = server.url.removeprefix("http://")
    index = f"http://{quote(team['email'])}:{team['read_token']}@{host}/default/"
    proc = run([sys.executable, "-m", "pip", "install", "--no-cache-dir", "--no-deps", "--target",
                str(tmp_path / "site"),
                "--index-url", index,
                *HOSTED_WHEELS], env=client_env(tmp_path / "pip-home"), check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "site" / "setuptools").is_dir() and (tmp_path / "site" / "yaml").is_dir()
