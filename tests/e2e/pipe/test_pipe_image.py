"""The pypi-publish pipe as Bitbucket Pipelines runs it: its image (pipes/pypi-publish/Dockerfile),
built once by a real engine (podman, tests/support/containers.py) and run the way a step runs a
`- pipe: docker://...`: the clone mounted at $BITBUCKET_CLONE_DIR and the working directory, and as
the whole environment only what Pipelines passes (the step's BITBUCKET_* variables, an `oidc: true`
step's token minted by the local issuer for that run, the pipe's variables). The registry and the
issuer are on the host's 127.0.0.1 (host network). test_pipe.py covers the script's behaviour as a
subprocess; this covers the image: its Python (Debian's 3.11 here), its tools, its size.
"""

from __future__ import annotations

import compileall
import hashlib
import json
import os
import re
import shlex
import subprocess
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.e2e.pipe.test_pipe import (
    PIPE_DIR,
    PROJECTS,
    Site,
    assert_no_secrets,
    flit_project,
    lib_package,
    open_site,
    sha256,
)
from tests.support import containers

IMAGE = "localhost/pypi-publish:e2e"
CLONE_DIR = "/opt/atlassian/pipelines/agent/build"
# Where Pipelines keeps pipes' state during a pipeline (inside the clone, so mounted with it).
PIPES_STORAGE = ".bitbucket/pipelines/generated/pipeline/pipes"
RED, GREEN, RESET = "\x1b[31m", "\x1b[32m", "\x1b[0m"
# What the pip layer may weigh (140 MB with the tools of this commit: uv's binary, poetry's tree).
LAYER_BUDGET = 160 * 2**20

pytestmark = pytest.mark.filterwarnings("ignore::ResourceWarning")


@pytest.fixture(scope="module")
def pipe_image(base_image) -> str:
    """The pipe's image, built once; the pipe's sources first get the bytecode a local run leaves,
    which .dockerignore must keep out of the image."""
    compileall.compile_dir(PIPE_DIR / "pipe", quiet=1)
    seconds = containers.build(PIPE_DIR, IMAGE)
    print(f"\n{IMAGE}: built in {seconds:.1f} s, {containers.image_size(IMAGE) / 1e6:.0f} MB")
    return IMAGE


@pytest.fixture(scope="module")
def registry(server, issuer) -> Site:
    """(Not named `site`: that fixture name marks a test `browser`, tests/conftest.py.)"""
    return open_site(server, issuer)


# --- a step, as Pipelines runs a pipe in it ------------------------------------------------------


def braced() -> str:
    return f"{{{uuid.uuid4()}}}"


@dataclass
class Step:
    """One step of one pipeline run: what Pipelines tells it, and what its OIDC token says."""

    build: int
    branch: str | None = "main"  # None on a tag build
    tag: str | None = None
    environment: str | None = None  # a `deployment:` step's environment
    pipeline: str = field(default_factory=braced)
    step: str = field(default_factory=braced)
    environment_uuid: str = field(default_factory=braced)

    @property
    def commit(self) -> str:
        return hashlib.sha1(f"{self.pipeline}".encode()).hexdigest()

    def token(self, site: Site) -> str:
        return site.issuer.mint(workspace="default", workspace_uuid=site.ws_uuid, repository_uuid=site.repo_uuid,
                                branch=self.branch, pipeline_uuid=self.pipeline, step_uuid=self.step,
                                environment_uuid=self.environment_uuid if self.environment else None)

    def env(self, site: Site, oidc: bool = True, **variables: str) -> dict[str, str]:
        """The pipe container's whole environment, as Pipelines gives it (its variables table, the pipe
        storage of `docker container run` in a step's log): nothing of this process leaks in."""
        full = f"default/{site.repo}"
        env = {
            "CI": "true",
            "BITBUCKET_BUILD_NUMBER": str(self.build),
            "BITBUCKET_CLONE_DIR": CLONE_DIR,
            "BITBUCKET_COMMIT": self.commit,
            "BITBUCKET_WORKSPACE": "default",
            "BITBUCKET_REPO_SLUG": site.repo,
            "BITBUCKET_REPO_UUID": site.repo_uuid,
            "BITBUCKET_REPO_FULL_NAME": full,
            "BITBUCKET_REPO_OWNER": "default",
            "BITBUCKET_REPO_OWNER_UUID": site.ws_uuid,
            "BITBUCKET_PROJECT_KEY": "MAIN",
            "BITBUCKET_PROJECT_UUID": braced(),
            "BITBUCKET_GIT_HTTP_ORIGIN": f"http://bitbucket.org/{full}",
            "BITBUCKET_GIT_SSH_ORIGIN": f"git@bitbucket.org:{full}.git",
            "BITBUCKET_PIPELINE_UUID": self.pipeline,
            "BITBUCKET_STEP_UUID": self.step,
            "BITBUCKET_STEP_RUN_NUMBER": "1",
            "BITBUCKET_STEP_TRIGGERER_UUID": braced(),
            "BITBUCKET_SSH_KEY_FILE": "/opt/atlassian/pipelines/agent/ssh/id_rsa",
            "BITBUCKET_PIPE_SHARED_STORAGE_DIR": f"{CLONE_DIR}/{PIPES_STORAGE}",
            "BITBUCKET_PIPE_STORAGE_DIR": f"{CLONE_DIR}/{PIPES_STORAGE}/pypi-registry/pypi-publish",
        }
        if self.branch:
            env["BITBUCKET_BRANCH"] = self.branch
        if self.tag:
            env["BITBUCKET_TAG"] = self.tag
        if self.environment:
            env["BITBUCKET_DEPLOYMENT_ENVIRONMENT"] = self.environment
            env["BITBUCKET_DEPLOYMENT_ENVIRONMENT_UUID"] = self.environment_uuid
        if oidc:
            env["BITBUCKET_STEP_OIDC_TOKEN"] = self.token(site)
        return {**env, **variables}


def clone(path: Path, project: Path | None = None) -> Path:
    """A clone as a step sees it: the project (or nothing), and Pipelines' pipe storage in it."""
    path = project or path
    (path / PIPES_STORAGE / "pypi-registry" / "pypi-publish").mkdir(parents=True, exist_ok=True)
    return path


def run_pipe(image: str, clone_dir: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    """`- pipe: docker://<image>` in a step: stdout and stderr kept apart, as the step's log shows them."""
    args = containers.run_args(image, env=env, volumes=[(clone_dir, CLONE_DIR)], workdir=CLONE_DIR)
    return subprocess.run([*containers.ENGINE, *args], capture_output=True, text=True, timeout=600)


def in_image(image: str, script: str) -> str:
    proc = containers.run(image, extra=("--entrypoint", "sh"), command=("-c", script), check=True)
    return proc.stdout.decode()


def files_under(root: Path) -> dict[str, os.stat_result]:
    return {p.relative_to(root).as_posix(): p.lstat() for p in root.rglob("*")}



# --- credentials: the step's next commands install another repository's packages ----------------


def test_credentials_mode_lets_the_steps_next_command_install_what_its_pipelines_may_read(
        pipe_image, base_image, registry, tmp_path):
    """`MODE: credentials` in the pipe's container, then the step's own image (here the Python base,
    as `image: python:3.12`) runs `. .registry/env && pip install ...` in the same clone: before the
    grant the package is as missing, after it it installs, after the revoke it is missing again."""
    lib, name = lib_package(registry, tmp_path)
    work = clone(tmp_path / "clone")
    work.mkdir(parents=True, exist_ok=True)
    step = Step(build=130)
    env = step.env(registry, MODE="credentials", REGISTRY_URL=f"{registry.server.url}/default")
    proc = run_pipe(pipe_image, work, env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[-1].startswith(GREEN) and "source .registry/env" in proc.stdout
    assert_no_secrets(proc.stdout + proc.stderr, env["BITBUCKET_STEP_OIDC_TOKEN"])

    def next_command() -> subprocess.CompletedProcess:
        script = f". .registry/env && pip install --no-cache-dir --disable-pip-version-check -q {name}==1.0"
        return containers.run(base_image, ("sh", "-c", script), volumes=[(work, CLONE_DIR)], workdir=CLONE_DIR)

    refused = next_command()
    assert refused.returncode != 0 and b"No matching distribution" in refused.stdout, refused.stdout
    registry.server.cli("pipelines", "grant", f"default/{lib}", registry.repo)
    done = next_command()
    assert done.returncode == 0, done.stdout.decode()[-3000:]
    registry.server.cli("pipelines", "revoke", f"default/{lib}", registry.repo)
    assert next_command().returncode != 0

# --- publishing: each tool, attributed to the run, re-run on the same clone ----------------------------

STEPS = {  # a deployment step on main, a tag build (no branch), a plain branch build
    "twine": dict(build=101, environment="production"),
    "uv": dict(build=102, branch=None, tag="v1.0.0"),
    "poetry": dict(build=103, branch="release/1.x"),
}


@pytest.mark.parametrize("tool", ["twine", "uv", "poetry"])
def test_the_image_publishes_and_verifies_then_reruns_on_the_same_clone(pipe_image, registry, tmp_path, tool):
    name = registry.package(f"imaged-{tool}")
    project = clone(tmp_path, PROJECTS[tool](tmp_path / "clone", name, "1.0.0"))
    before = files_under(project)
    step = Step(**STEPS[tool])
    env = step.env(registry, REGISTRY_URL=f"{registry.server.url}/default")
    proc = run_pipe(pipe_image, project, env)

    assert proc.returncode == 0, proc.stdout + proc.stderr
    version_url = f"{registry.server.url}/api/workspaces/default/packages/pypi/{name}/versions/1.0.0"
    assert f"Tool: {tool} (auto: " in proc.stdout and "WARNING" not in proc.stdout
    assert proc.stdout.count("published by this run") == 2
    # Bitbucket's pipe convention: the last line, green
    assert proc.stdout.splitlines()[-1] == f"{GREEN}✔ {name} 1.0.0 is on the registry, verified: {version_url}{RESET}"
    assert proc.stderr == ""
    assert_no_secrets(proc.stdout + proc.stderr, env["BITBUCKET_STEP_OIDC_TOKEN"])

    # dist/ in the clone, for the next steps (artifacts: dist/**): this engine's root is our user
    built = sorted((project / "dist").iterdir())
    assert sorted(p.suffix for p in built) == [".gz", ".whl"]
    created = {path: st for path, st in files_under(project).items() if path not in before}
    # besides dist/, only the bytecode of the in-tree build backend (flit_core here), as a build on the host
    assert {p for p in created if p.split("/")[0] != "dist"} <= {p for p in created if "__pycache__" in p}
    assert {st.st_uid for st in created.values()} == {os.getuid()}

    # the registry's record: every file published by this run, with what the step reported
    log = registry.log(name)
    assert log.count(f"publish {name} 1.0.0") == 2 and log.count(f"pipeline-uuid {step.pipeline}") == 2
    details = registry.version(name, "1.0.0")
    assert details.status_code == 200, details.text
    files = {f["filename"]: f for f in details.json()["files"]}
    assert set(files) == {p.name for p in built}
    for path in built:
        assert files[path.name]["sha256"] == sha256(path)
        publisher = files[path.name]["publisher"]
        assert publisher["kind"] == "pipeline"
        run = publisher["pipeline"]
        assert (run["pipeline_uuid"], run["step_uuid"], run["repository_uuid"]) == (
            step.pipeline, step.step, registry.repo_uuid)
        assert run.get("branch") == step.branch
        assert run.get("environment_uuid") == (step.environment_uuid if step.environment else None)
        assert run["reported"]["build_number"] == str(step.build) and run["reported"]["commit"] == step.commit
        assert run["reported"].get("tag") == step.tag
        assert run["reported"].get("deployment_environment") == step.environment
        assert run["reported"]["repo_full_name"] == f"default/{registry.repo}"
        assert run["url"] == f"https://bitbucket.org/default/{registry.repo}/pipelines/results/{step.build}"

    # "Rerun" of the step on the same clone, dist/ as the container left it: identical files, skipped
    rerun = Step(**{**STEPS[tool], "build": STEPS[tool]["build"] + 1})
    proc = run_pipe(pipe_image, project, rerun.env(registry, REGISTRY_URL=f"{registry.server.url}/default",
                                                   SKIP_EXISTING="true"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.count("(same sha256)") == 2 and "Nothing to upload" in proc.stdout
    assert proc.stdout.count("it was already there") == 2 and proc.stdout.splitlines()[-1].startswith(GREEN)
    assert sorted((project / "dist").iterdir()) == built and registry.log(name).count(f"publish {name}") == 2


def test_the_pipe_sees_only_what_pipelines_passes_and_the_images_own_environment(pipe_image, registry, tmp_path):
    env = Step(build=5).env(registry, REGISTRY_URL=f"{registry.server.url}/default")
    show = "import json, os; print(json.dumps([dict(os.environ), os.getcwd()]))"
    args = containers.run_args(pipe_image, ("-c", show), env=env, volumes=[(clone(tmp_path), CLONE_DIR)],
                               workdir=CLONE_DIR, extra=("--entrypoint", "python3"))
    seen, cwd = json.loads(subprocess.run([*containers.ENGINE, *args], capture_output=True, check=True).stdout)
    own = {"PATH", "HOME", "LANG", "PYTHONUNBUFFERED", "PIP_DISABLE_PIP_VERSION_CHECK", "HOSTNAME", "TERM", "container"}
    assert set(seen) - set(env) <= own and {k: seen[k] for k in env} == env
    assert seen["PATH"] != os.environ["PATH"] and seen["HOME"] == "/root" and cwd == CLONE_DIR


# --- mistakes: Bitbucket's convention, a non-zero exit and one red line saying why ---------------------

MISTAKES = {
    "no REGISTRY_URL": (dict(REGISTRY_URL=""), "REGISTRY_URL is required: The registry's workspace URL"),
    "a TOOL not allowed": (dict(TOOL="pdm"), "TOOL must be one of auto, twine, uv, poetry; got 'pdm'."),
    "not an http URL": (dict(REGISTRY_URL="ftp://127.0.0.1/default"), "REGISTRY_URL must be an http(s) URL"),
    "no workspace in the URL": (dict(REGISTRY_URL="{server}/"), "REGISTRY_URL must be a workspace URL"),
    "credentials in the URL": (dict(REGISTRY_URL="http://me:secret@127.0.0.1/default"),
                               "REGISTRY_URL must not contain credentials"),
    "a boolean that isn't": (dict(SKIP_EXISTING="maybe"), "SKIP_EXISTING must be true or false"),
    "a FOLDER not in the clone": (dict(FOLDER="libs/nowhere"), f"FOLDER {CLONE_DIR}/libs/nowhere is not a directory"),
    "no credentials": (dict(oidc=False), "No credentials: add `oidc: true` to the step"),
    "AUTH=oidc without oidc: true": (dict(oidc=False, AUTH="oidc"), "add `oidc: true` to the step"),
    "a wrong password": (dict(oidc=False, PASSWORD="secret-not-a-token"),
                         "The registry refused the credentials (401): Invalid credentials"),
    "no registry there": (dict(oidc=False, PASSWORD="pw", REGISTRY_URL="http://127.0.0.1:9/default"),
                          "Could not reach the registry at http://127.0.0.1:9/default/"),
}


@pytest.mark.parametrize("mistake", MISTAKES)
def test_a_mistake_fails_the_step_with_one_red_line(pipe_image, registry, tmp_path, mistake):
    setting, message = MISTAKES[mistake]
    setting = {k: v.format(server=registry.server.url) if isinstance(v, str) else v for k, v in setting.items()}
    oidc = setting.pop("oidc", True)
    project = clone(tmp_path, flit_project(tmp_path / "clone", f"mistaken-{uuid.uuid4().hex[:8]}", "1.0.0"))
    env = Step(build=7).env(registry, oidc=oidc, **{"REGISTRY_URL": f"{registry.server.url}/default", **setting})
    if not env["REGISTRY_URL"]:
        del env["REGISTRY_URL"]  # not set at all, as when the pipe's variables leave it out
    proc = run_pipe(pipe_image, project, env)

    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{RED}✖ ") and lines[0].endswith(RESET), proc.stderr
    assert message in lines[0]
    assert "✖" not in proc.stdout and "secret" not in proc.stdout + proc.stderr
    assert not (project / "dist").exists()


# --- the image itself: pinned tools, small, nothing left behind --------------------------------------


def dockerfile_pins() -> dict[str, str]:
    """The packages of the Dockerfile's `pip install`, each pinned exactly (else the test fails)."""
    dockerfile = (PIPE_DIR / "Dockerfile").read_text()
    installs = re.findall(r"^RUN pip install ((?:.*\\\n)*.*)$", dockerfile, re.M)
    assert len(installs) == 1, "one `RUN pip install`, one layer"
    words = [w for w in shlex.split(installs[0].replace("\\\n", " ")) if not w.startswith("-")]
    pins = {}
    for word in words:
        pinned = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][0-9A-Za-z.+!-]*)", word)
        assert pinned, f"{word!r} in the Dockerfile is not pinned exactly (NAME==VERSION)"
        pins[pinned.group(1).lower()] = pinned.group(2)
    return pins


def test_the_dockerfile_pins_every_tool_and_the_image_runs_those_versions(pipe_image):
    pins = dockerfile_pins()
    assert {"build", "twine", "uv", "poetry", "packaging"} <= set(pins)
    shown = in_image(pipe_image, "twine --version; uv --version; poetry --version; python3 -m build --version;"
                                 " python3 -c 'import packaging; print(\"packaging\", packaging.__version__)'")
    assert re.search(rf"^twine version {re.escape(pins['twine'])} ", shown, re.M), shown
    assert re.search(rf"^uv {re.escape(pins['uv'])}\b", shown, re.M), shown
    assert f"Poetry (version {pins['poetry']})" in shown, shown
    assert re.search(rf"^build {re.escape(pins['build'])} ", shown, re.M), shown
    assert f"packaging {pins['packaging']}\n" in shown, shown


def test_the_image_is_small_and_carries_no_caches_build_tools_or_bytecode_of_ours(pipe_image, base_image):
    layer = containers.image_size(pipe_image) - containers.image_size(base_image)
    biggest = in_image(pipe_image, "du -sk /usr/local/lib/python3*/site-packages/* /usr/local/bin/* | sort -n"
                                   " | tail -8")
    assert layer <= LAYER_BUDGET, f"the pipe adds {layer / 1e6:.0f} MB to its base; the biggest (KiB):\n{biggest}"
    # pip's, uv's and poetry's caches, apt's, temporary files; compilers and make
    leftovers = in_image(pipe_image, "find /root/.cache /tmp /var/tmp -mindepth 1 2>/dev/null;"
                                     " find /var/cache/apt /var/lib/apt/lists -name '*.deb' -o -name '*_Packages*';"
                                     " command -v gcc cc make; true")
    assert leftovers.strip() == "", leftovers
    # the pipe's files exactly: no __pycache__ from the host (.dockerignore), pipe.yml and the README
    shipped = sorted(in_image(pipe_image, "cd /pipe && find . -type f; ls /pipe.yml /README.md").split())
    sources = sorted(f"./{p.relative_to(PIPE_DIR / 'pipe').as_posix()}" for p in (PIPE_DIR / "pipe").rglob("*.py"))
    assert any((PIPE_DIR / "pipe").rglob("__pycache__/*.pyc")), "the fixture leaves bytecode on the host"
    assert shipped == sorted([*sources, "/pipe.yml", "/README.md"])
