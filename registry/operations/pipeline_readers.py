"""Letting other repositories' pipelines read a repository (`Repository.pipeline_readers`).

Bitbucket's step credential reaches only its own repository, so a step that installs another
repository's packages needed a person's token, which expires and belongs to someone. Instead a
repository's admin names the repositories of the workspace whose pipelines may read it (or every
pipeline of the workspace); their steps then install with their OIDC token, or a read token minted
for it. Never more than read, and never another workspace's pipelines (`permissions.role_on`).

Slugs are never reused (`RetiredRepository`), so a grant keyed by slug can't pass to a newcomer; a
rename rewrites it, and a deletion drops it, in their own commit (`lifecycle.py`).
"""

from __future__ import annotations

from .. import layout, model, names, visibility
from ..audit import Action, T
from ..datadir import Registry
from ..errors import Conflict, Invalid, NotFound
from ..identity import Principal
from ..ledger import Change, Snapshot
from ..model import ALL_PIPELINES, Channel, Repository
from ..permissions import require, role_on_workspace
from ..reads.members import seen_readers
from ._common import make_change, replace

SHOWN = 10  # repositories a refusal names


def grant_pipelines(reg: Registry, who: Principal, channel: Channel, ws: str, slug: str,
                    source: str) -> Repository:
    """Let the pipelines of repository ``source`` of the same workspace (`*`: every pipeline of the
    workspace) read ``ws/slug`` (its admin's, or the workspace's): one commit."""
    source = _source(source)

    def build(snap: Snapshot) -> Change:
        repository = _administered(snap, who, ws, slug, f"let other pipelines read {ws}/{slug}")
        if source == slug:
            raise Invalid(f"The pipelines of {ws}/{slug} already publish to and read it: name another repository of "
                          f"workspace {ws}, whose pipelines should read {ws}/{slug}.")
        if source != ALL_PIPELINES:
            _readable_source(snap, who, ws, source)
        if source in repository.pipeline_readers:
            raise Conflict(f"{_whose(ws, source).capitalize()} may already read {ws}/{slug}.")
        updated = model_replace(repository, sorted({*repository.pipeline_readers, source}))
        return make(who, channel, Action.GRANT_PIPELINES,
                    f"grant read on {ws}/{slug} to {_whose(ws, source)}", ws, slug, source, updated)

    return reg.transact(build).result


def revoke_pipelines(reg: Registry, who: Principal, channel: Channel, ws: str, slug: str,
                     source: str) -> Repository:
    """Stop the pipelines of ``source`` (`*`: the grant to every pipeline; `{UUID}`: the repository
    with that UUID, as the lists name one the caller can't read) reading ``ws/slug``: one commit.
    Each grant is taken away by name: revoking `*` leaves those named, and the other way round."""
    given = source.strip()
    by_uuid = given.startswith("{")

    def build(snap: Snapshot) -> Change:
        repository = _administered(snap, who, ws, slug, f"change which pipelines read {ws}/{slug}")
        named = _by_uuid(snap, ws, given) if by_uuid else _source(given)
        seen = seen_readers(snap, who, ws, repository)  # (never a slug the caller may not read)
        # By slug, only one the caller reads (one they don't, they know by its UUID): a guessed slug
        # learns nothing, as for a repository that doesn't exist.
        if named is None or named not in repository.pipeline_readers or (not by_uuid and named not in seen.named):
            whose = f"the pipelines of repository {given}" if by_uuid else _whose(ws, named or given)
            raise NotFound(f"{ws}/{slug} doesn't let {whose} read it; the pipelines it lets read it are those of: "
                           f"{', '.join(seen.sources) or 'none'} (`registry pipelines list {ws}/{slug}`).")
        updated = model_replace(repository, [r for r in repository.pipeline_readers if r != named])
        return make(who, channel, Action.REVOKE_PIPELINES,
                    f"revoke read on {ws}/{slug} from {_whose(ws, named)}", ws, slug, named, updated)

    return reg.transact(build).result


def model_replace(repository: Repository, readers: list[str]) -> Repository:
    return replace(repository, pipeline_readers=readers)


def make(who: Principal, channel: Channel, action: Action, summary: str, ws: str, slug: str, source: str,
         updated: Repository) -> Change:
    # (the granting repository's trailer first: the trail files the commit under it, for its admins)
    return make_change(who, channel, action, summary, {layout.repository(ws, slug): updated},
                       (T.WORKSPACE, ws), (T.REPOSITORY, slug), (T.PIPELINES_OF, source), result=updated)


def without(snap: Snapshot, ws: str, slug: str, new_slug: str | None = None) -> dict[str, Repository]:
    """The workspace's other repositories that let ``slug``'s pipelines read them, with ``slug``
    renamed to ``new_slug`` (None: dropped, the repository is deleted): for the rename's or the
    deletion's commit."""
    out = {}
    for r in snap.records(layout.repositories_dir(ws), Repository):
        if r.slug != slug and slug in r.pipeline_readers:
            readers = {x for x in r.pipeline_readers if x != slug} | ({new_slug} if new_slug else set())
            out[layout.repository(ws, r.slug)] = model_replace(r, sorted(readers))
    return out


def _source(source: str) -> str:
    if source.strip() == ALL_PIPELINES:
        return ALL_PIPELINES
    return names.repository_slug(source)


def _by_uuid(snap: Snapshot, ws: str, given: str) -> str | None:
    """The slug of the workspace's repository with this UUID (None: none); Invalid for no UUID."""
    uuid = model.brace_uuid(given)
    return next((r.slug for r in snap.records(layout.repositories_dir(ws), Repository) if r.uuid == uuid), None)


def _whose(ws: str, source: str) -> str:
    return f"every pipeline of workspace {ws}" if source == ALL_PIPELINES else f"the pipelines of {ws}/{source}"


def _administered(snap: Snapshot, who: Principal, ws: str, slug: str, doing: str) -> Repository:
    repository = visibility.repository(snap, who, ws, slug)  # (one they can't read is as missing)
    require(snap, who, ws, slug, "admin", doing)
    return repository


def _readable_source(snap: Snapshot, who: Principal, ws: str, source: str) -> None:
    """The repository whose pipelines are granted must exist and be one ``who`` reads (or administers
    the workspace of): the same refusal for both, so a grant tells no one what they may not see."""
    found = snap.get(layout.repository(ws, source), Repository)
    admin = role_on_workspace(snap, who, ws) == "admin"
    if found is not None and (admin or visibility.can_read(snap, who, ws, source)):
        return
    seen = sorted(r.slug for r in snap.records(layout.repositories_dir(ws), Repository)
                  if admin or visibility.can_read(snap, who, ws, r.slug))
    listed = ", ".join(seen[:SHOWN]) + (f" and {len(seen) - SHOWN} more" if len(seen) > SHOWN else "")
    raise NotFound(f"Repository {ws}/{source} does not exist, or you may not read it (a workspace admin may still "
                   f"grant its pipelines); the repositories of {ws} you read: {listed or 'none'} (`registry repo list "
                   f"{ws}`). Use `*` for every pipeline of the workspace.")
