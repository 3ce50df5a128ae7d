"""Who holds which grant, and the people an administrator sees: a workspace's grants (its admins, its
projects' and repositories' roles) and members, the users, one user's grants everywhere.

Who sees what: the operator, everything; a workspace admin, their workspace's grants and members
(anyone with a grant there), and of those people only the grants in workspaces they administer; a
repository admin, their repository's grants; a person, their own. Anyone else is refused with
`Denied` (after the workspace is `hidden` from whoever doesn't see it). These are administrators'
views: each costs a lookup per project and repository of the workspaces it covers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .. import layout, model, names
from ..errors import Denied, NotFound, RegistryError, Unauthorized
from ..identity import Principal
from ..ledger import Snapshot
from ..model import ApiToken, Project, Repository, Role, User, Workspace
from ..permissions import role_on, role_on_workspace
from .catalog import Catalog

Where = Literal["workspace", "project", "repository"]


@dataclass(frozen=True)
class Grant:
    """One grant: ``user`` holds ``role`` on the workspace itself (its admins), on project ``target``
    (a key) or on repository ``target`` (a slug)."""

    workspace: str
    where: Where
    target: str  # "" for the workspace itself
    user: str
    role: Role

    @property
    def shown(self) -> str:
        """Where, as the CLI names it: `ws`, `ws --project KEY`, `ws/repo`."""
        return {"workspace": self.workspace, "project": f"{self.workspace} --project {self.target}",
                "repository": f"{self.workspace}/{self.target}"}[self.where]


@dataclass(frozen=True)
class Person:
    """A user as an administrator sees them: the record, their grants (where the viewer may see
    them) and, to the operator and to themself, how many of their API tokens still hold."""

    user: User
    grants: list[Grant]
    tokens: int | None = None

    @property
    def state(self) -> str:
        return "disabled" if self.user.disabled is not None else "active"


@dataclass(frozen=True)
class ReadersSeen:
    """A repository's pipeline readers as one caller may know them. ``named``: the slugs of those
    they may read, and `*` (every pipeline of the workspace). ``hidden``: the UUIDs of the others (a
    repository the caller can't read is as missing: its slug is never shown, but its admins must see,
    and may revoke, every grant on it; UUIDs are no secret, as a pipeline's provenance shows them)."""

    named: list[str]
    hidden: list[str]

    @property
    def sources(self) -> list[str]:
        """What revokes each grant: a slug, `*`, or a hidden one's UUID (`{...}`, never a slug)."""
        return self.named + self.hidden


def seen_readers(snap: Snapshot, who: Principal, ws: str, repository: Repository) -> ReadersSeen:
    """``repository``'s pipeline readers as ``who`` may know them: every one by slug, to the
    workspace's admins; to the repository's admins, by slug those they read, by UUID the others; to
    anyone else, only `*` and those they read (a grant names no repository to whoever can't see it).
    A grant to a repository that no longer exists (none: a deletion drops its grants) reads nothing
    and is shown to the workspace's admins only. Whoever asks (verbs' messages too)."""
    if role_on_workspace(snap, who, ws) == "admin":
        return ReadersSeen(list(repository.pipeline_readers), [])
    admin = model.at_least(role_on(snap, who, ws, repository.slug), "admin")
    named, hidden = [], []
    for source in repository.pipeline_readers:
        found = None if source == model.ALL_PIPELINES else snap.get(layout.repository(ws, source), Repository)
        if found is None and source != model.ALL_PIPELINES:
            continue
        if found is None or model.at_least(role_on(snap, who, ws, source), "read"):
            named.append(source)
        elif admin:
            hidden.append(found.uuid)
    return ReadersSeen(named, sorted(hidden))


def workspace_grants(snap, ws: str) -> list[Grant]:
    """Every grant of a workspace: its admins, then its projects' and repositories' grants, by name.
    Whoever asks (a verb's question too)."""
    workspace = snap.get(layout.workspace(ws), Workspace)
    if workspace is None:
        return []
    found = [Grant(ws, "workspace", "", email, "admin") for email in workspace.admins]
    for p in sorted(snap.records(layout.projects_dir(ws), Project), key=lambda p: p.key):
        found += [Grant(ws, "project", p.key, email, role) for email, role in sorted(p.grants.items())]
    for r in sorted(snap.records(layout.repositories_dir(ws), Repository), key=lambda r: r.slug):
        found += [Grant(ws, "repository", r.slug, email, role) for email, role in sorted(r.grants.items())]
    return found


class Members(Catalog):
    """The Reader's grants and people (see the module's note for who sees what)."""

    def _denied(self, seeing: str, need: str) -> RegistryError:
        if self.who.kind == "anonymous":  # (a public repository shows the workspace: credentials may see more)
            return Unauthorized(f"Authentication required to see {seeing}: use your email and an API token.")
        return Denied(f"{self.who.actor} may not see {seeing}: it needs {need}.")

    def _require_admin(self, ws: str, seeing: str) -> None:
        self.workspace(ws)  # (hidden from whoever doesn't see it)
        if not self.administers(ws):
            raise self._denied(seeing, f"admin permission on workspace {ws}; ask a workspace admin")

    def grants(self, ws: str, *, project: str | None = None, repository: str | None = None,
               user: str | None = None) -> list[Grant]:
        """The workspace's grants (workspace admins'), or those on one project and its repositories,
        or on one repository (its admins' too); ``user``: only theirs. NotFound for a project or
        repository that doesn't exist."""
        if repository is not None:
            self.repository(ws, repository)
            if not model.at_least(role_on(self.now, self.who, ws, repository), "admin"):
                raise self._denied(f"the grants of {ws}/{repository}",
                                   "admin permission on it; ask a repository or workspace admin")
        else:
            self._require_admin(ws, f"the grants of workspace {ws}")
        found = workspace_grants(self.snapshot, ws)
        if project is not None:
            key = names.project_key(project)
            if not self.snapshot.exists(layout.project(ws, key)):
                raise NotFound(f"Project {key} does not exist in workspace {ws}.")
            in_project = {r.slug for r in self._all_repositories(ws) if r.project == key}
            found = [g for g in found if (g.where, g.target) == ("project", key)
                     or (g.where == "repository" and g.target in in_project)]
        if repository is not None:
            found = [g for g in found if (g.where, g.target) == ("repository", repository)]
        if user is not None:
            email = names.email(user)
            found = [g for g in found if g.user == email]
        return found

    def pipeline_readers(self, ws: str, repository: str) -> ReadersSeen:
        """The grants of read on ``ws/repository`` to other pipelines (`*`: every pipeline of the
        workspace), as the caller may know them (`seen_readers`). Hidden, as a missing one, from
        whoever can't read it. A few lookups per grant."""
        return seen_readers(self.now, self.who, ws, self.repository(ws, repository))

    def projects(self, ws: str) -> list[tuple[Project, list[Repository]]]:
        """The workspace's projects the caller sees, by key, each with its repositories they may read:
        every project, to its admins; to others, those with a repository they may read. The
        workspace is `hidden` from whoever doesn't see it. A lookup per project and repository."""
        self.workspace(ws)
        admin = self.administers(ws)
        readable: dict[str, list[Repository]] = {}
        for r in self.repositories(ws):
            readable.setdefault(r.project, []).append(r)
        return [(p, readable.get(p.key, [])) for p in sorted(self.snapshot.records(layout.projects_dir(ws), Project),
                                                             key=lambda p: p.key) if admin or p.key in readable]

    def members(self, ws: str) -> list[Person]:
        """The people with a grant in the workspace, by email, each with their grants there: for its
        admins (and the operator)."""
        self._require_admin(ws, f"the members of workspace {ws}")
        by_user: dict[str, list[Grant]] = {}
        for g in workspace_grants(self.snapshot, ws):
            by_user.setdefault(g.user, []).append(g)
        out = []
        for email, grants in sorted(by_user.items()):
            user = self.snapshot.get(layout.user(email), User)
            if user is not None:
                out.append(Person(user, grants))
        return out

    def people(self) -> list[Person]:
        """The users the caller may see, by email: every one, to the operator; to a workspace admin,
        the members of the workspaces they administer (with their grants there). Denied to anyone
        who administers none. A scan of every user (the operator) or of those workspaces' grants."""
        if self.who.kind == "operator":
            grants, tokens = self._all_grants(None), self._token_counts()
            return [Person(u, grants.get(u.email, []), tokens.get(u.email, 0))
                    for u in sorted(self.snapshot.records("users", User), key=lambda u: u.email)]
        mine = self._administered()
        if not mine and self.who.kind == "anonymous":
            raise Unauthorized("Authentication required to list users: use your email and an API token.")
        if not mine:
            raise Denied(f"{self.who.actor} may not list users: the operator sees every user, and a workspace admin "
                         "the members of their workspaces.")
        grants = self._all_grants(mine)
        found = [self.snapshot.get(layout.user(email), User) for email in sorted(grants)]
        return [Person(u, grants[u.email]) for u in found if u is not None]

    def person(self, email: str) -> Person:
        """One user and their grants: every one of theirs and their token count, to the operator and
        to themself; to an admin of a workspace they are a member of, their grants in the workspaces
        that admin administers. NotFound ("no user") to anyone else, as for a user that doesn't exist."""
        email = names.email(email)
        user = self.snapshot.get(layout.user(email), User)
        missing = NotFound(f"There is no user {email}.")
        if user is None:
            raise missing
        if self.who.kind == "operator" or (self.who.kind == "user" and self.who.email == email):
            return Person(user, self._all_grants(None).get(email, []), self._token_counts().get(email, 0))
        grants = self._all_grants(self._administered()).get(email)
        if not grants:
            raise missing
        return Person(user, grants)

    def _administered(self) -> list[str]:
        """The workspaces the caller administers (a lookup per workspace of the registry)."""
        if self.who.kind != "user":
            return []
        return [ws for ws in self.snapshot.names("workspaces")
                if self.snapshot.exists(layout.workspace(ws)) and self.administers(ws)]

    def _all_grants(self, workspaces: list[str] | None) -> dict[str, list[Grant]]:
        by_user: dict[str, list[Grant]] = {}
        for ws in workspaces if workspaces is not None else self.snapshot.names("workspaces"):
            for g in workspace_grants(self.snapshot, ws):
                by_user.setdefault(g.user, []).append(g)
        return by_user

    def _token_counts(self) -> dict[str, int]:
        """How many API tokens of each person still hold (not revoked, not expired, not a pipeline's):
        a scan of every token."""
        now, counts = model.now(), dict[str, int]()
        for t in self.snapshot.records("tokens", ApiToken):
            if t.repository is None and t.revoked is None and (t.expires is None or t.expires > now):
                counts[t.user] = counts.get(t.user, 0) + 1
        return counts
