"""The pypi-publish pipe (pipes/pypi-publish), run as Bitbucket Pipelines runs it: the script as a
subprocess with a step's environment (BITBUCKET_* variables, an OIDC token from the local issuer),
on a small real project, against `registry serve` on 127.0.0.1. Assertions are on what the registry
recorded (its log and its version details), not only on exit codes.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import importlib.util
import re
import shlex
import shutil
import subprocess
import sys
import textwrap
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.helpers import client_env, make_sdist, make_wheel, run, tool

ROOT = Path(__file__).resolve().parents[3]
PIPE_DIR = ROOT / "pipes" / "pypi-publish"
SCRIPT = PIPE_DIR / "pipe" / "pipe.py"
# Any accidental index access fails here, loudly, instead of reaching out.
DEAD_INDEX = "http://127.0.0.1:9/simple/"

sys.path.insert(0, str(PIPE_DIR / "pipe"))
from pypi_publish import credentials, dists, tools, variables, verify  # noqa: E402
from pypi_publish.console import Console  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


# --- the world: a trusted issuer, a repository registered with its UUID, its packages -------------


@dataclass
class Site:
    server: object
    issuer: object
    ws_uuid: str
    repo: str
    repo_uuid: str
    email: str
    token: str = field(repr=False)

    def package(self, prefix: str, repo: str | None = None) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        self.server.cli("package", "create", "default", name, "--repo", repo or self.repo)
        return name

    def oidc_token(self, pipeline: str, step: str, **claims) -> str:
        claims = {"workspace": "default", "workspace_uuid": self.ws_uuid, "repository_uuid": self.repo_uuid,
                  "branch": "main", "pipeline_uuid": pipeline, "step_uuid": step, **claims}
        return self.issuer.mint(**claims)

    def log(self, name: str) -> str:
        return self.server.cli("log", "default", name).stdout

    def version(self, name: str, version: str) -> httpx.Response:
        auth = base64.b64encode(f"{self.server.admin}:{self.server.token}".encode()).decode()
        return httpx.get(f"{self.server.url}/api/workspaces/default/packages/pypi/{name}/versions/{version}",
                         headers={"authorization": f"Basic {auth}"}, timeout=30)


@pytest.fixture(scope="module")
def site(server, issuer) -> Site:
    return open_site(server, issuer)


def open_site(server, issuer) -> Site:
    """A repository of `default` registered with its UUID, trusting the issuer, and a user who may write to it."""
    ws_uuid = next(line.split("\t")[1] for line in server.cli("workspace", "list").stdout.splitlines()
                   if line.startswith("default\t"))
    repo, repo_uuid = f"pipe-{uuid.uuid4().hex[:8]}", f"{{{uuid.uuid4()}}}"
    server.cli("repo", "create", f"default/{repo}", "--project", "MAIN", "--uuid", repo_uuid)
    server.cli("trust", "default", "--issuer", issuer.issuer_url("default"))
    email = f"ci-{repo}@example.com"
    server.cli("user", "create", email)
    server.cli("grant", f"default/{repo}", email, "write")
    token = server.cli("token", "create", email).stdout.strip()
    return Site(server, issuer, ws_uuid, repo, repo_uuid, email, token)


# --- small real projects that build offline ------------------------------------------------------


def flit_project(root: Path, name: str, version: str, uv_lock: bool = False) -> Path:
    """A flit_core project whose backend is vendored (backend-path), so isolated builds need no index."""
    module = name.replace("-", "_")
    (root / module).mkdir(parents=True)
    (root / module / "__init__.py").write_text(f'"""{name}, published by the pipe."""\n__version__ = "{version}"\n')
    shutil.copytree(Path(importlib.util.find_spec("flit_core").origin).parent, root / "flit_core",
                    ignore=shutil.ignore_patterns("__pycache__", "tests"))
    (root / "pyproject.toml").write_text(textwrap.dedent(f"""\
        [build-system]
        requires = []
        build-backend = "flit_core.buildapi"
        backend-path = ["."]

        [project]
        name = "{name}"
        version = "{version}"
        description = "A package the pipe's tests publish"
        requires-python = ">=3.8"

        [tool.flit.module]
        name = "{module}"

        [tool.flit.sdist]
        include = ["flit_core/"]
        """))
    if uv_lock:
        run([tool("uv"), "lock"], env=step_env(root.parent / "home-lock"), cwd=root)
    return root


def poetry_project(root: Path, name: str, version: str) -> Path:
    """A [tool.poetry] project: `poetry build` builds it in-process with poetry-core, offline."""
    module = name.replace("-", "_")
    (root / module).mkdir(parents=True)
    (root / module / "__init__.py").write_text(f'__version__ = "{version}"\n')
    (root / "pyproject.toml").write_text(textwrap.dedent(f"""\
        [tool.poetry]
        name = "{name}"
        version = "{version}"
        description = "A poetry package the pipe's tests publish"
        authors = ["Test <test@example.com>"]
        packages = [{{include = "{module}"}}]

        [build-system]
        requires = ["poetry-core>=2.0"]
        build-backend = "poetry.core.masonry.api"
        """))
    return root


PROJECTS = {"twine": flit_project, "uv": lambda *a: flit_project(*a, uv_lock=True), "poetry": poetry_project}


# --- running the pipe as a step would ------------------------------------------------------------


def step_env(home: Path, **variables: str) -> dict[str, str]:
    return client_env(home, PIP_NO_INDEX="1", PIP_INDEX_URL=DEAD_INDEX, UV_DEFAULT_INDEX=DEAD_INDEX,
                      CI="true", **variables)


def run_pipe(project: Path, env: dict[str, str]):
    proc = run([sys.executable, str(SCRIPT)], env=env, cwd=project, check=False)
    proc.output = proc.stdout + proc.stderr
    return proc


def pipeline_vars(site: Site, pipeline: str, step: str, build: int, **extra: str) -> dict[str, str]:
    """What Pipelines gives an `oidc: true` step (UUID variables bare and upper case on purpose)."""
    return {
        "REGISTRY_URL": f"{site.server.url}/default",
        "BITBUCKET_STEP_OIDC_TOKEN": site.oidc_token(pipeline, step),
        "BITBUCKET_BUILD_NUMBER": str(build),
        "BITBUCKET_COMMIT": hashlib.sha1(str(build).encode()).hexdigest(),
        "BITBUCKET_TAG": "v1.0.0",
        "BITBUCKET_REPO_FULL_NAME": f"default/{site.repo}",
        "BITBUCKET_WORKSPACE": "default",
        "BITBUCKET_REPO_SLUG": site.repo,
        "BITBUCKET_REPO_UUID": site.repo_uuid,
        "BITBUCKET_PIPELINE_UUID": pipeline.upper(),
        "BITBUCKET_STEP_UUID": step,
        **extra,
    }


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fresh_clone(project: Path) -> None:
    """A re-run works on a new clone: new file times, no dist/ left over."""
    shutil.rmtree(project / "dist", ignore_errors=True)
    for path in project.rglob("*"):
        if path.is_file():
            path.touch()


def assert_no_secrets(output: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in output
    assert not re.search(r"rgy_[A-Za-z0-9_-]{8,}", output), "a minted registry token was printed"


# --- publishing ------------------------------------------------------------------------------------


@pytest.mark.parametrize("client", ["twine", "uv", "poetry"])
def test_publishes_with_the_steps_oidc_token_then_a_rerun_skips(site, tmp_path, client):
    name = site.package(f"piped-{client}")
    project = PROJECTS[client](tmp_path / "src", name, "1.0.0")
    pipeline, step = str(uuid.uuid4()), str(uuid.uuid4())
    env = step_env(tmp_path / "home", **pipeline_vars(site, pipeline, step, 4242), DEBUG="true")
    proc = run_pipe(project, env)

    assert proc.returncode == 0, proc.output
    built = sorted((project / "dist").iterdir())
    assert sorted(p.suffix for p in built) == [".gz", ".whl"]
    assert f"Tool: {client} (auto: " in proc.stdout and "WARNING" not in proc.stdout
    for path in built:
        assert f"{path.name}  " in proc.stdout and sha256(path) in proc.stdout
        assert f"Published {path.name}" in proc.stdout
    assert proc.stdout.count("published by this run") == 2
    version_url = f"{site.server.url}/api/workspaces/default/packages/pypi/{name}/versions/1.0.0"
    assert version_url in proc.stdout
    assert_no_secrets(proc.output, env["BITBUCKET_STEP_OIDC_TOKEN"])

    # the ledger: two publishes by this run, with the context the step reported
    log = site.log(name)
    assert log.count(f"publish {name} 1.0.0") == 2
    assert log.count(f"pipeline-uuid {{{pipeline}}}") == 2 and log.count(f"step-uuid {{{step}}}") == 2
    assert f"pipeline-run-url https://bitbucket.org/default/{site.repo}/pipelines/results/4242" in log
    # the version details (needs the version-details API): every file, attributed to this run
    details = site.version(name, "1.0.0")
    assert details.status_code == 200, details.text
    files = {f["filename"]: f for f in details.json()["files"]}
    assert set(files) == {p.name for p in built}
    for path in built:
        entry = files[path.name]
        assert entry["sha256"] == sha256(path)
        assert entry["publisher"]["kind"] == "pipeline"
        run_record = entry["publisher"]["pipeline"]
        assert (run_record["pipeline_uuid"], run_record["step_uuid"]) == (f"{{{pipeline}}}", f"{{{step}}}")
        assert run_record["reported"]["build_number"] == "4242"
        assert run_record["reported"]["commit"] == env["BITBUCKET_COMMIT"]
        assert run_record["reported"]["tag"] == "v1.0.0"
        assert run_record["reported"]["repo_full_name"] == f"default/{site.repo}"
        assert run_record["url"] == f"https://bitbucket.org/default/{site.repo}/pipelines/results/4242"

    # a re-run (new pipeline, fresh clone) with SKIP_EXISTING rebuilds identical files and skips them
    fresh_clone(project)
    again = str(uuid.uuid4())
    env = step_env(tmp_path / "home", **pipeline_vars(site, again, str(uuid.uuid4()), 4243), SKIP_EXISTING="yes")
    proc = run_pipe(project, env)
    assert proc.returncode == 0, proc.output
    assert proc.stdout.count("(same sha256)") == 2 and "Skipping 2 file(s)" in proc.stdout
    assert "Nothing to upload" in proc.stdout
    assert proc.stdout.count("it was already there") == 2 and version_url in proc.stdout
    assert site.log(name).count(f"publish {name} 1.0.0") == 2
    assert again not in site.log(name)
    files = {f["filename"]: f for f in site.version(name, "1.0.0").json()["files"]}
    assert {f["publisher"]["pipeline"]["pipeline_uuid"] for f in files.values()} == {f"{{{pipeline}}}"}


def test_publishes_with_the_token_variables(site, tmp_path):
    name = site.package("tokened")
    project = flit_project(tmp_path / "src", name, "2.0.0")
    env = step_env(tmp_path / "home", REGISTRY_URL=f"{site.server.url}/default/", TOOL="uv", DEBUG="True",
                   BITBUCKET_PACKAGES_USERNAME=site.email, BITBUCKET_PACKAGES_TOKEN=site.token,
                   EXTRA_ARGS_COUNT="1", EXTRA_ARGS_0="--no-progress", BITBUCKET_BUILD_NUMBER="7")
    proc = run_pipe(project, env)

    assert proc.returncode == 0, proc.output
    assert "Tool: uv (TOOL=uv)" in proc.stdout
    assert f"BITBUCKET_PACKAGES_USERNAME / BITBUCKET_PACKAGES_TOKEN (user {site.email})" in proc.stdout
    assert "publish --publish-url" in proc.stdout and "--no-progress" in proc.stdout  # EXTRA_ARGS reach uv
    assert proc.stdout.count("only presence and content can be checked") == 2
    basic = base64.b64encode(f"{site.email}:{site.token}".encode()).decode()
    assert_no_secrets(proc.output, site.token, basic)
    log = site.log(name)
    assert log.count(f"publish {name} 2.0.0") == 2 and "pipeline-uuid" not in log
    details = site.version(name, "2.0.0")
    assert details.status_code == 200, details.text
    assert {f["publisher"]["kind"] for f in details.json()["files"]} == {"api-token"}

    # USERNAME / PASSWORD, publishing the earlier build (BUILD=false) again with twine: all skipped
    env = step_env(tmp_path / "home", REGISTRY_URL=f"{site.server.url}/default", TOOL="twine", BUILD="no",
                   USERNAME=site.email, PASSWORD=site.token, SKIP_EXISTING="1")
    proc = run_pipe(project, env)
    assert proc.returncode == 0, proc.output
    assert f"USERNAME / PASSWORD (user {site.email})" in proc.stdout and "(BUILD=false)" in proc.stdout
    assert proc.stdout.count("(same sha256)") == 2 and "Nothing to upload" in proc.stdout
    assert site.log(name).count(f"publish {name} 2.0.0") == 2


def test_a_rebuild_with_other_bytes_is_never_taken_for_the_published_release(site, tmp_path):
    name = site.package("drifted")
    project = flit_project(tmp_path / "src", name, "1.0.0", uv_lock=True)
    vars_ = pipeline_vars(site, str(uuid.uuid4()), str(uuid.uuid4()), 10)
    assert run_pipe(project, step_env(tmp_path / "home", **vars_)).returncode == 0
    published = {p.name: sha256(p) for p in (project / "dist").iterdir()}
    module = project / name.replace("-", "_") / "__init__.py"
    module.write_text(module.read_text() + "CHANGED = True\n")  # same version, other content

    proc = run_pipe(project, step_env(tmp_path / "home", **vars_))
    assert proc.returncode != 0
    assert "already has" in proc.stderr and "with different content" in proc.stderr

    proc = run_pipe(project, step_env(tmp_path / "home", **vars_, SKIP_EXISTING="true"))
    assert proc.returncode != 0, proc.output
    last = proc.stderr.strip().splitlines()[-1]
    assert "doesn't match this run" in last and "sha256" in last and "another build" in last
    files = {f["filename"]: f["sha256"] for f in site.version(name, "1.0.0").json()["files"]}
    assert files == published


# --- failures: one clear line, a non-zero exit, nothing published ---------------------------------


def test_missing_registry_url(tmp_path):
    proc = run_pipe(tmp_path, step_env(tmp_path / "home"))
    assert proc.returncode != 0
    assert proc.stderr.strip().startswith("✖ REGISTRY_URL is required")


@pytest.mark.parametrize("setting, message", [
    ({"TOOL": "pdm"}, "TOOL must be one of auto, twine, uv, poetry; got 'pdm'"),
    ({"BUILD": "maybe"}, "BUILD must be true or false"),
    ({"VERIFY": "2"}, "VERIFY must be true or false"),
    ({"AUTH": "ldap"}, "AUTH must be one of auto, oidc, token"),
    ({"REGISTRY_URL": "ftp://registry.example.com/acme"}, "REGISTRY_URL must be an http(s) URL"),
    ({"REGISTRY_URL": "https://registry.example.com/"}, "REGISTRY_URL must be a workspace URL"),
    ({"REGISTRY_URL": "https://me:secret@registry.example.com/acme"}, "must not contain credentials"),
    ({"EXTRA_ARGS_COUNT": "2", "EXTRA_ARGS_0": "-v"}, "EXTRA_ARGS_COUNT is 2 but EXTRA_ARGS_1 is not set"),
    ({"EXTRA_ARGS": "--verbose"}, "EXTRA_ARGS must be a list"),
    ({"FOLDER": "no/such/dir"}, "is not a directory"),
    ({"AUTH": "oidc"}, "add `oidc: true` to the step"),
    ({"AUTH": "token", "BITBUCKET_STEP_OIDC_TOKEN": "x.y.z"}, "No credentials"),
])
def test_invalid_variables_fail_with_a_clear_reason(tmp_path, setting, message):
    env = step_env(tmp_path / "home", **{"REGISTRY_URL": "http://127.0.0.1:9/acme", **setting})
    proc = run_pipe(tmp_path, env)
    assert proc.returncode != 0
    assert message in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "secret" not in proc.output


def test_an_unreachable_registry(tmp_path):
    env = step_env(tmp_path / "home", REGISTRY_URL="http://127.0.0.1:9/acme", PASSWORD="pw")
    proc = run_pipe(tmp_path, env)
    assert proc.returncode != 0
    assert proc.stderr.startswith("✖ Could not reach the registry at http://127.0.0.1:9/acme/: ")


def test_wrong_credentials_fail_before_building(site, tmp_path):
    name = site.package("wrongcreds")
    project = flit_project(tmp_path / "src", name, "1.0.0")
    env = step_env(tmp_path / "home", REGISTRY_URL=f"{site.server.url}/default", USERNAME=site.email,
                   PASSWORD="not-a-token", DEBUG="true")
    proc = run_pipe(project, env)
    assert proc.returncode != 0
    assert "refused the credentials (401): Invalid credentials" in proc.stderr
    assert not (project / "dist").exists() and "not-a-token" not in proc.output
    # an OIDC token the registry doesn't accept (another workspace's audience): the exchange says why
    env = step_env(tmp_path / "home", REGISTRY_URL=f"{site.server.url}/default",
                   BITBUCKET_STEP_OIDC_TOKEN=site.oidc_token(str(uuid.uuid4()), str(uuid.uuid4()),
                                                             workspace_uuid=str(uuid.uuid4())))
    proc = run_pipe(project, env)
    assert proc.returncode != 0
    assert "The registry refused the step's OIDC token" in proc.stderr and "(422 from" in proc.stderr
    assert f"publish {name}" not in site.log(name)


@pytest.mark.parametrize("client", ["twine", "uv", "poetry"])
def test_a_package_linked_to_another_repository_is_refused_with_the_reason(site, tmp_path, client):
    """The other repository is public, so the pipe can read the package: the upload itself is refused."""
    other = f"public-{uuid.uuid4().hex[:8]}"
    site.server.cli("repo", "create", f"default/{other}", "--project", "MAIN", "--public")
    name = site.package("elsewhere", repo=other)
    project = poetry_project(tmp_path / "src", name, "1.0.0")  # poetry publishes from a project
    (project / "dist").mkdir()
    make_wheel(project / "dist", name, "1.0.0")
    make_sdist(project / "dist", name, "1.0.0")
    env = step_env(tmp_path / "home", **pipeline_vars(site, str(uuid.uuid4()), str(uuid.uuid4()), 1),
                   TOOL=client, BUILD="false")
    proc = run_pipe(project, env)
    assert proc.returncode != 0, proc.output
    last = proc.stderr.strip().splitlines()[-1]
    assert f"Publishing with {client} failed" in last and "HTTP 403: pipeline:" in last
    assert f"needs write permission on repository default/{other}" in last
    assert "linked to its own repository" in last
    assert f"publish {name}" not in site.log(name)


def test_a_private_package_of_another_repository_is_refused_before_uploading(site, tmp_path):
    other = f"private-{uuid.uuid4().hex[:8]}"
    site.server.cli("repo", "create", f"default/{other}", "--project", "MAIN")
    name = site.package("hidden", repo=other)
    project = flit_project(tmp_path / "src", name, "1.0.0", uv_lock=True)
    env = step_env(tmp_path / "home", **pipeline_vars(site, str(uuid.uuid4()), str(uuid.uuid4()), 2))
    proc = run_pipe(project, env)
    assert proc.returncode != 0
    # Since "strangers learn nothing", the pipeline is answered as if another repository's private
    # package didn't exist (uv's check sees a 404; the upload is a 403 saying how a package gets created),
    # and nothing says where it is.
    assert f"HTTP 403: Package '{name}' does not exist" in proc.stderr and other not in proc.stderr
    assert f"publish {name}" not in site.log(name)


def test_a_build_error_fails_the_step_and_publishes_nothing(site, tmp_path):
    name = site.package("broken")
    project = flit_project(tmp_path / "src", name, "1.0.0")
    shutil.rmtree(project / name.replace("-", "_"))  # the module flit is told to package is gone
    env = step_env(tmp_path / "home", REGISTRY_URL=f"{site.server.url}/default", PASSWORD=site.token)
    proc = run_pipe(project, env)
    assert proc.returncode != 0
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("✖ The build failed (twine, exit 1; its output is above):")
    assert "No file/folder found for module" in last
    assert f"publish {name}" not in site.log(name)


# --- verification, in-process: what counts as "this run's" ----------------------------------------


def test_verification_requires_the_uploaded_files_to_be_attributed_to_this_run(monkeypatch, tmp_path):
    wheel = make_wheel(tmp_path, "acme", "1.0")
    mine = {"pipeline_uuid": "{0b6d3c1e-0000-4000-8000-000000000001}",
            "step_uuid": "{0b6d3c1e-0000-4000-8000-000000000002}"}
    # the token's UUIDs as the step might spell them: upper case, or without braces
    run_ = credentials.PipelineRun(credentials.brace_uuid("{0B6D3C1E-0000-4000-8000-000000000001}"),
                                   credentials.brace_uuid("0b6d3c1e-0000-4000-8000-000000000002"), None, None)
    creds = credentials.Credentials("__token__", "x", "oidc", run=run_)
    dist = dists.inspect(wheel)
    dist.uploaded = True

    def details(publisher):
        entry = {"filename": wheel.name, "sha256": dist.sha256, "publisher": publisher}
        monkeypatch.setattr(verify, "version_details", lambda *a: {"files": [entry], "url": "http://r/v"})

    details({"kind": "pipeline", "pipeline": mine})
    assert verify.verify_release(Console(), "http://r", "ws", "acme", "1.0", [dist], creds) == "http://r/v"
    details({"kind": "pipeline", "pipeline": {**mine, "step_uuid": "{0b6d3c1e-0000-4000-8000-000000000003}"}})
    with pytest.raises(verify.VerificationFailed, match="attributed to pipeline .* not to this run"):
        verify.verify_release(Console(), "http://r", "ws", "acme", "1.0", [dist], creds)
    details({"kind": "api-token", "by": "dev@example.com", "token": "abc", "pipeline": None})
    with pytest.raises(verify.VerificationFailed, match="API token abc of dev@example.com"):
        verify.verify_release(Console(), "http://r", "ws", "acme", "1.0", [dist], creds)
    dist.uploaded = False  # it was already there: only its content counts
    assert verify.verify_release(Console(), "http://r", "ws", "acme", "1.0", [dist], creds) == "http://r/v"


@pytest.mark.parametrize("value, expected", [("TRUE", True), ("Yes", True), ("1", True), ("false", False),
                                             ("NO", False), ("0", False), ("", True)])
def test_booleans(tmp_path, value, expected):
    cfg = variables.load({"REGISTRY_URL": "https://r.example.com/acme", "VERIFY": value}, cwd=tmp_path)
    assert cfg.verify is expected and cfg.registry_url == "https://r.example.com/acme/"


def test_auto_auth_prefers_oidc_then_packages_variables_then_username_password(tmp_path):
    cfg = variables.load({"REGISTRY_URL": "https://r.example.com/acme", "USERNAME": "me@example.com",
                          "PASSWORD": "pw"}, cwd=tmp_path)
    both = {"BITBUCKET_PACKAGES_USERNAME": "bb", "BITBUCKET_PACKAGES_TOKEN": "bbtok", "PASSWORD": "pw"}
    assert credentials.resolve(cfg, both, Console()).username == "bb"
    creds = credentials.resolve(cfg, {"PASSWORD": "pw"}, Console())
    assert (creds.username, creds.password) == ("me@example.com", "pw")


def test_auto_tool_poetry_then_uv_lock_then_twine(tmp_path):
    assert tools.detect(tmp_path)[0] == "twine"
    (tmp_path / "uv.lock").write_text("version = 1\n")
    assert tools.detect(tmp_path)[0] == "uv"
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n\n[tool.poetry]\npackage-mode = true\n')
    assert tools.detect(tmp_path) == ("poetry", "pyproject.toml has [tool.poetry]")


def test_reported_context_leaves_out_what_the_registry_would_refuse(capsys):
    env = {"BITBUCKET_BUILD_NUMBER": "12", "BITBUCKET_COMMIT": "ABCDEF1234567", "BITBUCKET_TAG": "v1\n2",
           "BITBUCKET_REPO_FULL_NAME": "not a repo"}
    assert credentials.reported_context(env, Console()) == {"build_number": "12", "commit": "abcdef1234567"}
    out = capsys.readouterr().out
    assert "BITBUCKET_TAG" in out and "BITBUCKET_REPO_FULL_NAME" in out and "not reported" in out


def test_console_masks_secrets_and_their_basic_header(capsys):
    console = Console(debug=True)
    console.add_secret("s3cret-token", "me@example.com")
    header = base64.b64encode(b"me@example.com:s3cret-token").decode()
    console.debug(f"token s3cret-token header Basic {header}")
    out = capsys.readouterr().out
    assert "s3cret" not in out and header not in out and out.count("********") == 2


# --- the pipe's definition: pipe.yml, README and script agree; the image has what the script needs --


def readme_table() -> dict[str, tuple[bool, str]]:
    text = (PIPE_DIR / "README.md").read_text()
    section = text.split("## Variables", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 2 and cells[0] not in ("Variable", "---"):
            rows[cells[0].removesuffix("(*)").strip()] = (cells[0].endswith("(*)"), cells[1])
    assert "_(*) = required variable._" in section
    return rows


def test_pipe_yml_readme_and_script_list_the_same_variables():
    script = {v.name: v for v in variables.VARIABLES}
    meta = {v["name"]: v for v in yaml.safe_load((PIPE_DIR / "pipe.yml").read_text())["variables"]}
    table = readme_table()
    assert list(meta) == list(script) == list(table)
    for name, var in script.items():
        assert meta[name].get("required", False) is var.required is table[name][0], name
        assert meta[name].get("secret", False) is var.secret, name
        default = meta[name].get("default")
        assert (None if default is None else str(default)) == var.default, name
        assert tuple(meta[name].get("allowed_values", ())) == var.choices, name
        if var.default is not None:
            assert f"Default: `{var.default}`." in table[name][1], name
    # the YAML Definition: required variables set, optional ones commented out
    definition = (PIPE_DIR / "README.md").read_text().split("## YAML Definition", 1)[1].split("```", 2)[1]
    for name, var in script.items():
        assert re.search(rf"^\s+{'' if var.required else '# '}{name}:", definition, re.M), name


def test_the_image_installs_everything_the_script_needs():
    dockerfile = (PIPE_DIR / "Dockerfile").read_text()
    pinned = dict(re.findall(r"([A-Za-z0-9_.-]+)==([0-9][^\s\\]*)", dockerfile))
    assert {"build", "twine", "uv", "poetry", "packaging"} <= set(pinned)
    assert re.search(r"^FROM python:3\.\d+-slim(-[a-z]+)?$", dockerfile, re.M)
    assert 'ENTRYPOINT ["python3", "/pipe/pipe.py"]' in dockerfile and "COPY pipe /pipe" in dockerfile
    imported = set()
    for source in (PIPE_DIR / "pipe").rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text())):
            if isinstance(node, ast.Import):
                imported |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                imported.add(node.module.split(".")[0])
    outside = imported - set(sys.stdlib_module_names) - {"pypi_publish", "__future__"}
    assert outside <= set(pinned), f"imported but not installed by the Dockerfile: {outside - set(pinned)}"
    assert yaml.safe_load((PIPE_DIR / "pipe.yml").read_text())["image"].endswith("/pypi-publish:1")


def test_the_projects_own_pipeline_dogfoods_the_pipe():
    config = yaml.safe_load((ROOT / "bitbucket-pipelines.yml").read_text())
    default = config["pipelines"]["default"]
    parallel = next(s["parallel"] for s in default if "parallel" in s)
    steps = parallel["steps"] if isinstance(parallel, dict) else parallel
    assert len(steps) >= 2 and all(s["step"].get("caches") for s in steps)
    tagged = config["pipelines"]["tags"]["v*"]
    flat = [s["step"] for s in tagged if "step" in s]
    assert any("dist/**" in s.get("artifacts", []) for s in flat)
    publish = next(s for s in flat if any(isinstance(c, dict) and "pipe" in c for c in s["script"]))
    assert publish["oidc"] is True
    pipe = next(c for c in publish["script"] if isinstance(c, dict) and "pipe" in c)
    assert pipe["pipe"].startswith("docker://") and "/pypi-publish:" in pipe["pipe"]
    assert set(pipe["variables"]) <= {v.name for v in variables.VARIABLES} and "REGISTRY_URL" in pipe["variables"]


# --- MODE: credentials: a step that installs, another repository's packages too -------------------


def lib_package(site: Site, tmp_path: Path) -> tuple[str, str]:
    """A repository of its own (not the pipeline's) with a published private package: (repo, name)."""
    from tests.support.world import upload_form

    lib = f"lib-{uuid.uuid4().hex[:8]}"
    site.server.cli("repo", "create", f"default/{lib}", "--project", "MAIN")
    name = site.package("granted", repo=lib)
    (tmp_path / "lib-dist").mkdir()
    data, files = upload_form(make_wheel(tmp_path / "lib-dist", name, "1.0"))
    auth = base64.b64encode(f"{site.server.admin}:{site.server.token}".encode()).decode()
    r = httpx.post(f"{site.server.url}/default/", data=data, files=files, timeout=60,
                   headers={"authorization": f"Basic {auth}"})
    assert r.status_code == 200, r.text
    return lib, name


def install_sourced(clone: Path, home: Path, name: str, installer: str, registry_url: str = "",
                    source: str = "registry") -> subprocess.CompletedProcess:
    """What the step's next command does: `source .registry/env`, then install (nothing else configured;
    poetry: a project whose one source, named `registry`, is the registry's workspace URL)."""
    env = client_env(home)
    target = clone / f"site-{installer}-{uuid.uuid4().hex[:6]}"
    command = {
        "pip": f"{shlex.quote(sys.executable)} -m pip install --no-cache-dir --no-deps --target {target} {name}",
        "uv": f"{shlex.quote(tool('uv'))} pip install --no-cache --target {target} {name}",
        "poetry": f"cd {target} && {shlex.quote(tool('poetry'))} --no-cache add {name} && "
                  f".venv/bin/python -c 'import {name.replace('-', '_')}'",
    }[installer]
    if installer == "poetry":
        target.mkdir()
        (target / "pyproject.toml").write_text(textwrap.dedent(f"""\
            [project]
            name = "app"
            version = "0.1.0"
            requires-python = ">=3.11"

            [tool.poetry]
            package-mode = false

            [[tool.poetry.source]]
            name = "{source}"
            url = "{registry_url}"
            priority = "primary"
            """))
    return run(["bash", "-c", f"set -e; source {clone}/.registry/env; {command}"], env=env, cwd=clone, check=False)


def test_credentials_mode_writes_a_read_token_the_steps_installers_use(site, tmp_path):
    lib, name = lib_package(site, tmp_path)
    clone = tmp_path / "clone"
    clone.mkdir()
    env = step_env(tmp_path / "home", **pipeline_vars(site, str(uuid.uuid4()), str(uuid.uuid4()), 9),
                   MODE="credentials", BITBUCKET_CLONE_DIR=str(clone))
    proc = run_pipe(clone, env)
    assert proc.returncode == 0, proc.output
    assert "source .registry/env" in proc.stdout and "short-lived read registry token" in proc.stdout
    assert_no_secrets(proc.output, env["BITBUCKET_STEP_OIDC_TOKEN"])
    written = clone / ".registry" / "env"
    assert written.stat().st_mode & 0o777 == 0o600 and (clone / ".registry" / ".gitignore").read_text() == "*\n"
    token = re.search(r"POETRY_HTTP_BASIC_REGISTRY_PASSWORD=(\S+)", written.read_text()).group(1)
    assert token.startswith("rgy_") and "PIP_INDEX_URL=" in written.read_text()
    assert "mint token" in site.server.cli("log", "default").stdout

    # not granted: the package is as missing to the step's installers
    installers, url = ("pip", "uv", "poetry"), env["REGISTRY_URL"]
    for installer in installers:
        refused = install_sourced(clone, tmp_path / "home", name, installer, url)
        assert refused.returncode != 0, (installer, refused.stdout)
    site.server.cli("pipelines", "grant", f"default/{lib}", site.repo)
    for installer in installers:
        done = install_sourced(clone, tmp_path / "home", name, installer, url)
        assert done.returncode == 0, (installer, done.stdout + done.stderr)
    # (poetry takes the token for the source named `registry` only: the env file's words are what it reads)
    assert install_sourced(clone, tmp_path / "home", name, "poetry", url, source="other").returncode != 0
    # the token may read, never publish, even to its own repository
    (tmp_path / "mine").mkdir()
    data, files = upload_form_of(make_wheel(tmp_path / "mine", site.package("nope"), "1.0"))
    r = httpx.post(f"{site.server.url}/default/", data=data, files=files, auth=("__token__", token), timeout=60)
    assert r.status_code == 403 and "read scope" in r.text
    site.server.cli("pipelines", "revoke", f"default/{lib}", site.repo)
    for installer in installers:  # (none of them from a cache: nothing is kept between steps)
        refused = install_sourced(clone, tmp_path / "home", name, installer, url)
        assert refused.returncode != 0, (installer, refused.stdout)


def upload_form_of(path: Path):
    from tests.support.world import upload_form
    return upload_form(path)


def test_credentials_mode_needs_the_steps_oidc_token(tmp_path):
    env = step_env(tmp_path / "home", REGISTRY_URL="http://127.0.0.1:9/default", MODE="credentials")
    proc = run_pipe(tmp_path, env)
    assert proc.returncode == 1 and "add `oidc: true` to the step" in proc.output
    assert not (tmp_path / ".registry").exists()


def readme_step_without_the_pipe() -> list[str]:
    """The script of README's step that installs another repository's package without the pipe."""
    section = (ROOT / "README.md").read_text().split("### Installing another repository's packages in a pipeline")[1]
    block = re.search(r"```yaml\n(.*?)\n```", section, re.S)
    assert block, "README's section on installing in a pipeline has no yaml step"
    return yaml.safe_load(block.group(1))[0]["step"]["script"]


def test_the_readmes_two_lines_install_what_the_steps_pipeline_may_read(site, tmp_path):
    """README's two lines, with only the host, the workspace and the package swapped: the step's OIDC
    token for a read token (curl), then pip with it; refused before the grant, installed after it."""
    lib, name = lib_package(site, tmp_path)
    host = site.server.url.removeprefix("http://")
    script = [line.replace("https://", "http://").replace("registry.example.com", host)
              .replace("/acme/", "/default/")
              .replace("acme-utils", f"--no-cache-dir --target {tmp_path / 'site'} {name}")
              for line in readme_step_without_the_pipe()]
    assert "example" not in "".join(script) and "/default/" in script[1], script
    assert len(script) == 2 and "mint-token" in script[0] and '\\"scope\\":\\"read\\"' in script[0]
    env = client_env(tmp_path / "home", BITBUCKET_STEP_OIDC_TOKEN=site.oidc_token(str(uuid.uuid4()),
                                                                                   str(uuid.uuid4())))
    steps = ["set -e", *script]
    before = run(["bash", "-c", "\n".join(steps)], env=env, cwd=tmp_path, check=False)
    assert before.returncode != 0 and "No matching distribution" in before.stdout + before.stderr
    site.server.cli("pipelines", "grant", f"default/{lib}", site.repo)
    after = run(["bash", "-c", "\n".join(steps)], env=env, cwd=tmp_path, check=False)
    assert after.returncode == 0, after.stdout + after.stderr
    assert list((tmp_path / "site").glob("*.dist-info")) and "read scope" in site.server.cli("log", "default").stdout
