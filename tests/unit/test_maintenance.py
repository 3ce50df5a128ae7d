"""`registry verify` on the running usage figure: it agrees with a count of the published files
after publishes and deletions; a figure that drifted (a record removed behind the verbs' back, say)
is a problem that says both figures and the command that counts it afresh, which then makes verify
clean and keeps the quota."""

from __future__ import annotations

from registry import identity, layout, maintenance, model, operations
from registry.audit import Action
from registry.cli import main as cli_main
from registry.operations._common import make_change
from registry.reads.usage import counted
from tests.support.helpers import make_wheel
from tests.support.world import WS, publish

OP = identity.operator()


def drift(reg, by: int) -> model.StorageUsage:
    """A commit, signed as the registry signs them, that moves the figure off the count."""
    true = counted(reg.snapshot(), WS)
    wrong = model.StorageUsage(bytes=true.bytes + by, files=true.files + 1)
    reg.transact(lambda snap: make_change(OP, "cli", Action.SET_QUOTA, "a drifted figure",
                                          {layout.usage(WS): wrong}))
    return wrong


def test_verify_reports_a_drifted_usage_figure_and_what_counts_it_afresh(world, tmp_path, capsys):
    reg, data = world.reg, ["--data", str(world.reg.settings.data_path)]
    for v in ("1.0", "1.1"):
        publish(reg, OP, make_wheel(tmp_path, "Acme.Utils", v))
    operations.set_quota(reg, OP, "cli", WS, 10**6)
    publish(reg, OP, make_wheel(tmp_path, "Acme.Utils", "1.2"))
    operations.delete_version(reg, OP, "cli", WS, "acme-utils", "1.0")
    assert maintenance.verify(reg).ok  # (kept by every publish and deletion)
    for by in (4096, -1):  # (too high refuses uploads that fit; too low lets through what doesn't)
        wrong = drift(reg, by)
        true = counted(reg.snapshot(), WS)
        assert cli_main([*data, "verify"]) == 1
        out = capsys.readouterr().out
        assert (f"workspace {WS}'s usage figure says {wrong.bytes} bytes in {wrong.files} files, but its published "
                f"files count {true.bytes} bytes in {true.files} files") in out, out
        assert f"run `registry workspace quota {WS} 1000000` to count it afresh" in out and "1 problems" in out
        assert cli_main([*data, "workspace", "quota", WS, "1000000"]) == 0  # (what it says to run)
        capsys.readouterr()
        assert cli_main([*data, "verify"]) == 0, capsys.readouterr().out
        capsys.readouterr()
        workspace = reg.snapshot().get(layout.workspace(WS), model.Workspace)
        assert workspace.quota_bytes == 10**6 and reg.snapshot().get(layout.usage(WS), model.StorageUsage) == true


def test_a_workspace_without_a_quota_is_told_to_keep_none(world, tmp_path):
    publish(world.reg, OP, make_wheel(tmp_path, "Acme.Utils", "1.0"))
    drift(world.reg, 1)
    report = maintenance.verify(world.reg, hash_blobs=False)
    assert [p for p in report.problems if f"`registry workspace quota {WS} none`" in p], report.problems


def test_walks_through_every_version_keep_none_of_the_records_they_read(world, tmp_path):
    """A walk of the whole ledger (the check of the blob store after start, each collection, a count
    of usage) would push out of the records cache what requests use, and leave what it kept
    scattered through the worker's heap: it reads through the cache and keeps nothing."""
    from registry.ledger import codec
    from registry.reads.usage import workspace_usage

    reg = world.reg
    for v in ("1.0", "1.1", "1.2"):
        publish(reg, OP, make_wheel(tmp_path, "Acme.Utils", v))
    walks = {
        "check_blobs": lambda: maintenance.check_blobs(reg),
        "referenced_blobs": lambda: maintenance.referenced_blobs(reg.snapshot()),
        "referenced_files": lambda: maintenance.referenced_files(reg.snapshot()),
        "collect": lambda: maintenance.collect(reg, grace_seconds=3600, repack=False),
        "counted": lambda: counted(reg.snapshot(), WS),
        "workspace_usage": lambda: workspace_usage(reg.snapshot(), WS),
    }
    for name, walk in walks.items():
        codec._records.clear()
        result = walk()
        assert result is not None
        kept = [type_.__name__ for (_, type_), _ in codec._records.items()]
        assert "Version" not in kept and "Package" not in kept, (name, kept)
    assert len(maintenance.referenced_files(reg.snapshot())) == 3  # (and they still find every file)
    assert counted(reg.snapshot(), WS).files == 3
