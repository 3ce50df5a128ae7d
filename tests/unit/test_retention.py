"""The retention plan (registry/retention.py), over random version histories (Hypothesis): it never
deletes a protected version nor the newest release, keeps exactly the N newest (and what protections
keep), deletes only old pre-releases by age, and is a function of its input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from registry import model, retention

NOW = datetime(2026, 6, 1, tzinfo=UTC)
PROD_UUID = "{11111111-2222-3333-4444-555555555555}"


def provenance(days_ago: int, env: str | None) -> model.Provenance:
    run = None
    if env is not None:  # a pipeline publish: into the environment by UUID, or by the name it reported
        run = model.PipelineRun(issuer="i", subject="s", workspace_uuid=PROD_UUID, repository_uuid=PROD_UUID,
                                pipeline_uuid=PROD_UUID, step_uuid=PROD_UUID,
                                environment_uuid=PROD_UUID if env == "uuid" else None,
                                reported=model.ReportedRunContext(deployment_environment="Production")
                                if env == "name" else model.ReportedRunContext(deployment_environment="Staging"))
    return model.Provenance(at=NOW - timedelta(days=days_ago), by="dev@example.com", channel="upload", pipeline=run)


def version(text: str, days_ago: int, env: str | None = None, yanked: bool = False) -> model.Version:
    p = provenance(days_ago, env)
    f = model.DistFile(filename=f"p-{text}.tar.gz", size=10, sha256="0" * 64, blake2b_256="0" * 64, md5="0" * 32,
                       packagetype="sdist", python_version="source", metadata_version="2.1",
                       metadata_sha256="0" * 64, uploaded=p)
    return model.Version(package="p", version=text, files=[f], created=p, yanked=yanked)


release = st.builds(lambda a, b, pre: f"{a}.{b}{pre}", st.integers(0, 5), st.integers(0, 9),
                    st.sampled_from(["", "", "", "rc1", "a2", ".dev3", "b1.dev1", ".post1"]))
histories = st.lists(st.tuples(release, st.integers(0, 400), st.sampled_from([None, None, "uuid", "name", "other"]),
                               st.booleans()),
                     min_size=0, max_size=14, unique_by=lambda t: model.release_key(t[0])).map(
    lambda rows: [version(v, d, e, y) for v, d, e, y in rows])
policies = st.builds(lambda keep, days, protect: model.RetentionPolicy(
    name="p", repository="r", keep_newest=keep, prerelease_days=days, protect_environments=protect,
    updated=provenance(0, None)),
    st.none() | st.integers(1, 6), st.none() | st.integers(0, 200),
    st.sampled_from([[], [PROD_UUID], ["production"], [PROD_UUID, "production"]]))


def deployed(v: model.Version, protect: list[str]) -> bool:
    run = v.files[0].uploaded.pipeline
    if run is None:
        return False
    return (run.environment_uuid in protect) or any(
        run.reported and (run.reported.deployment_environment or "").lower() == p for p in protect)


@settings(max_examples=300, deadline=None)
@given(histories, policies)
def test_never_the_newest_release_nor_a_protected_version_and_exactly_the_rules(history, policy):
    deletions, spared = retention.plan_package([policy], "p", history, NOW)
    gone = {d.version for d in deletions}
    newest = model.latest_release(history)
    assert newest is None or newest.version not in gone
    assert not any(deployed(v, policy.protect_environments) for v in history if v.version in gone)
    ordered = sorted(history, key=lambda v: model.release_key(v.version), reverse=True)
    for rank, v in enumerate(ordered):
        by_count = policy.keep_newest is not None and rank >= policy.keep_newest
        age = (NOW - v.created.at).days
        by_age = (policy.prerelease_days is not None and age > policy.prerelease_days
                  and (model.release_key(v.version)[1].is_prerelease))
        protected = (v is newest) or deployed(v, policy.protect_environments)
        # exactly what a rule selects and no protection keeps goes; what a protection keeps is said
        assert (v.version in gone) == ((by_count or by_age) and not protected), (v.version, rank, age)
        assert (v.version in {s.version for s in spared}) == ((by_count or by_age) and protected)
    if policy.keep_newest is not None and policy.prerelease_days is None:
        # the N newest are kept, and beyond them only what protections keep
        kept = [v for v in ordered if v.version not in gone]
        assert ordered[:policy.keep_newest] == kept[:policy.keep_newest]
        assert all(v is newest or deployed(v, policy.protect_environments) for v in kept[policy.keep_newest:])
    # deterministic: the same input, in any order, gives the same plan
    again = retention.plan_package([policy], "p", list(reversed(history)), NOW)
    assert again == (deletions, spared)


@given(histories)
def test_without_a_rule_nothing_is_selected(history):
    policy = model.RetentionPolicy(name="p", repository="r", updated=provenance(0, None))
    assert retention.plan_package([policy], "p", history, NOW) == ([], [])


def test_a_deletion_says_its_policy_rule_and_age():
    history = [version("1.0", 100), version("1.1", 50), version("2.0", 10), version("2.1rc1", 40)]
    keep = model.RetentionPolicy(name="keep-two", repository="r", keep_newest=2, updated=provenance(0, None))
    pre = model.RetentionPolicy(name="a-pre", repository="r", prerelease_days=30, updated=provenance(0, None))
    deletions, _ = retention.plan_package([keep, pre], "p", history, NOW)
    by = {d.version: d for d in deletions}
    assert sorted(by) == ["1.0", "1.1", "2.1rc1"]
    assert (by["2.1rc1"].policy, by["2.1rc1"].age_days) == ("a-pre", 40)  # (the first policy by name that selects it)
    assert "older than 30 days" in by["2.1rc1"].reason
    assert (by["1.0"].policy, by["1.0"].age_days, by["1.0"].bytes) == ("keep-two", 100, 10)
    assert "newest 2" in by["1.0"].reason
