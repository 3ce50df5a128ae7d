"""README.md's commands, run as written against a registry this test starts: the README can't drift.

Every ```sh block is run, in order, in one shell (so `TOKEN=...` in one is there in the next), with
only the host swapped. A comment line before a block says where it runs (`<!-- run: in the
package -->`), or that it is a file to add to (`<!-- file: ~/.pypirc -->`), or why it isn't run
here (the quick start's two commands are run by .ci/run; `<!-- not run by tests/e2e/test_readme.py:
... -->`). A block without one runs where the registry's data directory is.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

from registry import layout
from tests.support.helpers import build, client_env, make_project, start_server

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"(?:<!-- (?P<tag>[^\n]*?) -->\n)?```(?P<lang>[a-z]*)\n(?P<body>.*?)^```", re.S | re.M)
QUICK_START = 2  # the first two sh blocks: .ci/run runs them verbatim on a new machine
DEFAULT = "127.0.0.1:8080"
TOKEN = "<your API token>"


def readme_blocks() -> list[tuple[str, str, str]]:
    found = [(m["tag"] or "", m["lang"], m["body"]) for m in BLOCK.finditer(README.read_text())]
    return [b for b in found if b[1] in ("sh", "ini", "toml")]


def test_every_readme_block_says_how_it_is_run():
    blocks = readme_blocks()
    sh = [b for b in blocks if b[1] == "sh"]
    assert len(sh) >= 10 and all("registry serve" not in b[2] for b in sh[QUICK_START:])
    for tag, lang, body in blocks[QUICK_START:]:
        if lang == "sh":
            assert tag == "" or tag.startswith(("run: ", "not run by tests/e2e/test_readme.py: ")), tag
        else:
            assert tag.startswith("file: "), (lang, body)


def test_the_readme_commands_work_as_written(tmp_path):
    work = tmp_path / "here"  # where a user stands: the registry's data directory is ./registry-data
    work.mkdir()
    live = start_server(work / "registry-data", workers=2)
    try:
        host = live.url.removeprefix("http://")
        package = make_project(tmp_path / "acme-utils", "acme-utils", "0.1.0")
        build(package, package / "dist")
        places = {
            "": work,
            "run: in the package": package,
            "run: in a uv project": _project(tmp_path / "uv-app"),
            "run: in a poetry project": _project(tmp_path / "poetry-app", poetry=True),
            "run: in a virtual environment": work,
        }
        files = {
            "file: ~/.pypirc": tmp_path / "home" / ".pypirc",
            "file: pyproject.toml, in the package": package / "pyproject.toml",
            "file: pyproject.toml, in a poetry project": places["run: in a poetry project"] / "pyproject.toml",
        }
        venv = tmp_path / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        env = client_env(tmp_path / "home")
        script, ran = ["set -euo pipefail"], []
        for n, (tag, lang, body) in enumerate(readme_blocks()[QUICK_START:]):
            body = body.replace(DEFAULT, host)
            if tag.startswith("not run by"):
                continue
            if lang != "sh":
                target = files[tag]  # (a file block nobody reads would be a README bug)
                script += [f"mkdir -p '{target.parent}'", f"cat >> '{target}' <<README_EOF",
                           body.replace(TOKEN, "${TOKEN}") + "README_EOF"]
                continue
            path = f"{venv}/bin:{env['PATH']}" if tag == "run: in a virtual environment" else env["PATH"]
            script += [f"echo '::block {n}::'", f"cd '{places[tag]}'", f"export PATH='{path}'", body]
            ran.append(body)
        proc = subprocess.run(["bash", "-c", "\n".join(script)], env=env, capture_output=True, text=True, timeout=900)
        output = proc.stdout + proc.stderr
        assert proc.returncode == 0, f"a README command failed:\n{output[-6000:]}"
    finally:
        live.stop()
    outputs = dict(re.findall(r"::block (\d+)::\n(.*?)(?=::block |\Z)", proc.stdout, re.S))
    assert len(outputs) == len(ran) >= 10
    joined = "\n".join(outputs.values())
    assert "publish acme-utils 0.1.0: acme_utils-0.1.0" in joined  # the audit examples print the audit
    assert '"version":"0.1.0"' in joined  # the API example
    assert "Successfully installed acme-utils-0.1.0" in joined  # pip
    assert "experimental" not in output.lower() and "warning" not in proc.stderr.lower(), proc.stderr
    uv_app = (places["run: in a uv project"] / "pyproject.toml").read_text()
    assert "acme-utils==0.1.0" in uv_app and 'acme-utils = { index = "registry" }' in uv_app
    assert "acme-utils" in (places["run: in a poetry project"] / "poetry.lock").read_text()


def test_the_ledger_table_is_the_grammar_the_ledger_is_written_by():
    """The table under "The ledger" is what registry/layout.py declares, line for line (the same
    table the ledger's own README is written with): a path can't be documented one way and built
    another."""
    section = README.read_text().split("\n## The ledger\n", 1)[1]
    shown = re.search(r"^```\n(.*?)^```", section, re.S | re.M)
    assert shown and shown[1] == layout.table(), \
        "README.md's ledger table drifted: replace it with the output of\n" \
        "  python -c 'from registry import layout; print(layout.table(), end=\"\")'"


def _project(root: Path, poetry: bool = False) -> Path:
    root.mkdir()
    extra = "\n[tool.poetry]\npackage-mode = false\n" if poetry else ""
    (root / "pyproject.toml").write_text(textwrap.dedent(f"""\
        [project]
        name = "{root.name}"
        version = "0.1.0"
        requires-python = ">=3.11"
        dependencies = []
        """) + extra)
    return root


def test_every_yaml_block_of_the_readmes_is_yaml():
    """A step copied from a README must load: a plain list item with `: ` in it is a mapping, and
    Bitbucket refuses the file (README's curl step once was)."""
    import yaml

    for readme in (README, README.parent / "pipes/pypi-publish/README.md"):
        blocks = re.findall(r"^```ya?ml\n(.*?)\n```", readme.read_text(), re.S | re.M)
        assert blocks, readme
        for block in blocks:
            yaml.safe_load(block)
