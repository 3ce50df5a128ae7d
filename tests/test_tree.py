"""The tests' tree mirrors the code's, so that a module's tests are found by its name (tests/README.md):
tests/unit/<package>/test_<module>.py tests registry/<package>/<module>.py (or the package <module>/), and
tests/unit/pipelines/test_<module>.py tests pipelines/<module>.py. Every other test file lives under
tests/e2e/ or tests/adversarial/."""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent

# Unit test files that name no module, each with the reason it can't: keep this short. A test of one
# module belongs in that module's file; one that crosses modules belongs where its main subject is.
CROSS_CUTTING: dict[str, str] = {}

# Test files outside unit/, e2e/ and adversarial/: this file (it tests the tests, not the code).
TOP_LEVEL = {"test_tree.py"}


def module_for(test: Path) -> list[Path]:
    """Where the code a unit test file names may be: a module, or a package of that name."""
    parts = test.relative_to(TESTS / "unit").parts
    folders, name = list(parts[:-1]), parts[-1].removeprefix("test_").removesuffix(".py")
    root = "registry"
    if folders[:1] == ["pipelines"]:
        root, folders = "pipelines", folders[1:]
    base = ROOT.joinpath(root, *folders)
    return [base / f"{name}.py", base / name / "__init__.py"]


def test_every_unit_test_file_names_a_module_that_exists():
    stray = []
    for test in sorted((TESTS / "unit").rglob("test_*.py")):
        where = test.relative_to(TESTS).as_posix()
        if where not in CROSS_CUTTING and not any(path.is_file() for path in module_for(test)):
            stray.append(where)
    assert stray == [], f"unit test files that name no module under registry/ or pipelines/: {stray}"


def test_the_exceptions_are_still_there():
    assert [name for name in CROSS_CUTTING if not (TESTS / name).is_file()] == []


def test_every_test_file_is_unit_e2e_or_adversarial():
    kinds = {"unit", "e2e", "adversarial"}
    elsewhere = sorted(
        test.relative_to(TESTS).as_posix()
        for test in TESTS.rglob("test_*.py")
        if test.relative_to(TESTS).parts[0] not in kinds and test.name not in TOP_LEVEL
    )
    assert elsewhere == []


def test_every_test_folder_is_a_package():
    """Test files of the same name in two folders (unit/web/test_api.py, ...) need packages to coexist."""
    folders = {test.parent for test in TESTS.rglob("test_*.py") if "benchmarks" not in test.parts}
    assert sorted(str(f.relative_to(TESTS)) for f in folders if not (f / "__init__.py").is_file()) == []
