"""The audit trail, the history and a file's publisher never name a repository the viewer can't read.

`acme/utils` lets the pipelines of `hideout` (private) read it, and a later commit rewrites utils's
record again (its list of readers in each diff); hideout is then renamed `hidenow`, which rewrites
utils's record in the rename's own commit. A version of utils's `Acme.Utils` was published by a
pipeline whose repository UUID is hideout's today (utils was rebound to another UUID since). Every
route and page that shows a history, the trail, a commit, a version, a package or a publisher's
badge (API and UI, JSON and HTML, the trail's older pages, the index at an older commit, each
commit's page) is walked as each kind of viewer who can't read hideout: utils's admin, utils's
reader, a member with no role, a stranger. Neither slug appears in a body or a header; utils's
admin still sees the grant's commit, naming hideout by its UUID (as the readers' lists do). The
workspace's admin sees every slug (so the walk can see one).
"""

from __future__ import annotations

import re

import pytest

from pipelines.claims import PipelineClaims
from registry import identity, layout, model, operations
from registry.audit import T
from registry.model import Repository
from tests.support.hidden_repository import HIDDEN, HIDDEN_ADMIN, OP, VIEWERS, as_viewer, hide, shown
from tests.support.world import WS, publish

RENAMED = "hidenow"
NEW_UTILS_UUID = "{7a7a7a7a-1111-4222-8333-444444444444}"
WITHOUT_READ = [v for v in VIEWERS if v != HIDDEN_ADMIN]  # (hideout's admin reads hideout's own trail)
API = f"/api/workspaces/{WS}/packages/pypi/acme-utils"
UI = f"/-/{WS}"
COMMIT_LINK = re.compile(rf"/-/{WS}/commits/([0-9a-f]{{40}})")


@pytest.fixture
def trail(world, dists):
    """The story above; returns the world and the hidden repository's UUID (utils's, once)."""
    reg = world.reg
    uuid = reg.snapshot().get(layout.repository(WS, "utils"), Repository).uuid
    workspace = reg.snapshot().get(layout.workspace(WS), model.Workspace)
    claims = PipelineClaims(iss="https://issuer.test", aud="ari", sub="{s}", exp=2**40, iat=0,
                            workspaceUuid=workspace.uuid, repositoryUuid=uuid, pipelineUuid=NEW_UTILS_UUID,
                            stepUuid=NEW_UTILS_UUID)
    for path in dists[("Acme.Utils", "1.0.0")]:
        publish(reg, identity.pipeline_principal(reg.snapshot(), WS, claims), path)
    operations.set_uuid(reg, OP, "cli", WS, NEW_UTILS_UUID, repository="utils")
    hide(world, uuid)  # (hideout takes the UUID utils's pipeline published with)
    operations.grant(reg, OP, "cli", WS, "dev@acme.test", "read", repository="utils")  # (utils's record again)
    operations.rename_repository(reg, OP, "cli", WS, HIDDEN, RENAMED)
    reg.catch_up_history()
    return world, uuid


def commits_of_workspace(world) -> list[str]:
    return [c.id for c in world.reg.ledger.walk() if c.trailer(T.WORKSPACE) == WS]


async def walk(client, auth: dict, commits: list[str]) -> list[tuple[str, object]]:
    """Every answer that shows a history, the trail, a commit, a version, a package or a publisher."""
    oldest = commits[-1]
    urls = [
        API, f"{API}/history", f"{API}/versions/1.0.0", f"{API}/versions/1.0.0/history",
        f"/{WS}/pypi/acme-utils/json", f"/{WS}/pypi/acme-utils/1.0.0/json",
        f"{UI}/", f"{UI}/repos/utils/", f"{UI}/projects/CORE/", f"{UI}/history", f"{UI}/repos/utils/history",
        f"{UI}/packages/acme-utils/", f"{UI}/packages/acme-utils/history", f"{UI}/packages/acme-utils/1.0.0/",
        f"{UI}/packages/acme-utils/1.0.0/history",
        f"/{WS}/@{commits[0]}/", f"/{WS}/@{commits[0]}/acme-utils/",
        *(f"{UI}/{page}?before={c}" for c in commits for page in ("history", "repos/utils/history")),
        *(f"{UI}/{page}?after={oldest}" for page in ("history", "repos/utils/history")),
        *(f"{UI}/commits/{c}" for c in commits), *(f"{UI}/commits/{c[:7]}" for c in commits[:3]),
    ]
    answers = []
    for url in urls:
        r = await client.get(url, headers=auth, follow_redirects=False)
        answers.append((url, r))
    return answers


@pytest.mark.parametrize("who", WITHOUT_READ)
async def test_no_viewer_who_cant_read_it_sees_its_slug(client, trail, who):
    world, _ = trail
    auth = await as_viewer(client, world, who)
    for url, r in await walk(client, auth, commits_of_workspace(world)):
        assert r.status_code < 500, (url, r.text)
        for slug in (HIDDEN, RENAMED):
            assert slug not in shown(r), f"{url} as {who}: {r.status_code} {r.text[:300]}"


async def test_the_repositorys_admin_sees_the_grant_by_its_uuid(client, trail):
    world, uuid = trail
    await as_viewer(client, world, "owner@acme.test")
    page = (await client.get(f"{UI}/repos/utils/history")).text
    assert f"grant read on {WS}/utils to the pipelines of {WS}/{uuid}" in page, page
    granted = [c for c in world.reg.ledger.walk() if c.trailer(T.PIPELINES_OF) == RENAMED or
               c.trailer(T.PIPELINES_OF) == HIDDEN]
    detail = (await client.get(f"{UI}/commits/{granted[0].id}")).text
    assert uuid in detail and "public-lib" in detail, detail
    later = [c for c in world.reg.ledger.walk() if c.trailer(T.USER) == "dev@acme.test"][0]
    detail = (await client.get(f"{UI}/commits/{later.id}")).text  # (utils's record names its readers)
    assert uuid in detail and "utils" in detail, detail
    version = (await client.get(f"{UI}/packages/acme-utils/1.0.0/")).text
    assert uuid in version, version  # (the publisher by the UUID its claims gave)


async def test_the_workspaces_admin_sees_every_slug(client, trail):
    world, _ = trail
    await as_viewer(client, world, "wsadmin@acme.test")
    assert f"to the pipelines of {WS}/{HIDDEN}" in (await client.get(f"{UI}/repos/utils/history")).text
    commits = commits_of_workspace(world)
    pages = [(await client.get(f"{UI}/commits/{c}")).text for c in commits]
    assert any(f"&#34;{HIDDEN}&#34;" in p for p in pages) and any(f"&#34;{RENAMED}&#34;" in p for p in pages)
    assert RENAMED in (await client.get(f"{UI}/packages/acme-utils/1.0.0/")).text


async def test_the_hidden_repositorys_admin_learns_nothing_of_the_repository_it_reads(client, trail):
    """The other way round: hideout's rename rewrote utils's record in its own commit, which hideout's
    admin sees; utils (which they can't read) is left out of it, and of every page of theirs."""
    world, _ = trail
    await as_viewer(client, world, HIDDEN_ADMIN)
    renamed = next(c for c in world.reg.ledger.walk() if c.trailer(T.RENAMED_FROM) == HIDDEN)
    page = await client.get(f"{UI}/commits/{renamed.id}")
    assert page.status_code == 200 and RENAMED in page.text, page.text
    for url in (f"{UI}/commits/{renamed.id}", f"{UI}/history", f"{UI}/repos/{RENAMED}/history"):
        r = await client.get(url)
        assert r.status_code == 200 and "utils" not in shown(r) and "owner@acme.test" not in r.text, (url, r.text)
