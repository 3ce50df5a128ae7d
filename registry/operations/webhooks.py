"""Webhooks: an admin adds one (or replaces it, by name), removes it, or has it deliver again from a
commit. Each is one commit of `workspaces/<ws>/webhooks/<name>.json`; the hook's whole URL and its secret
(an HMAC key, or a Bitbucket token) are kept in the data directory first, under a key that version of
the record names (webhooks/secrets.py), never in the ledger. What is delivered,
and how far, is the deliverer's (webhooks/delivery.py), in the data directory: no delivery is a commit.
"""

from __future__ import annotations

from dataclasses import dataclass

import pygit2

from .. import bounds, layout, names
from ..audit import Action, T
from ..datadir import Registry
from ..errors import Invalid, NotFound
from ..identity import Principal
from ..ledger import Change, Snapshot
from ..model import (
    WEBHOOK_EVENTS,
    BitbucketPipeline,
    Channel,
    Repository,
    Webhook,
    WebhookReplay,
)
from ..webhooks import addresses, secrets
from ..webhooks.sending import BITBUCKET_API
from ._common import make_change, replace, require_workspace_admin

MAX_HOOKS = 50  # per workspace: each is a thread of the deliverer
_SIGNINGS = ("ed25519", "hmac-sha256")
_FORMATS = ("event", "bitbucket-pipeline")


@dataclass(frozen=True)
class Added:
    hook: Webhook
    secret: str | None  # a secret the registry made (HMAC): shown once, here


def events(given: list[str]) -> list[str]:
    """The events subscribed to, checked ('*': every one), in the order WEBHOOK_EVENTS lists them."""
    wanted = {e.strip() for e in given if e.strip()}
    if "*" in wanted:
        return list(WEBHOOK_EVENTS)
    unknown = sorted(wanted - set(WEBHOOK_EVENTS))
    if unknown or not wanted:
        said = f"Unknown webhook event(s) {', '.join(map(repr, unknown))}" if unknown else "No event given"
        raise Invalid(f"{said}: subscribe to one or more of {', '.join(WEBHOOK_EVENTS)}, or '*' for all.")
    return [e for e in WEBHOOK_EVENTS if e in wanted]


def add_webhook(reg: Registry, who: Principal, channel: Channel, ws: str, name: str, url: str | None,
                subscribed: list[str], *, repository: str | None = None, signing: str = "ed25519",
                secret: str | None = None, fmt: str = "event", bitbucket_repository: str | None = None,
                branch: str = "main", pipeline: str | None = None) -> Added:
    """Add a hook, or replace the one of the same name (which keeps its cursor: nothing is sent twice
    or skipped). ``fmt`` "bitbucket-pipeline": on each publish, run the custom ``pipeline`` of
    ``bitbucket_repository`` (WS/REPO, or ``url``: its pipelines endpoint) with ``secret``, a
    repository access token, as Bearer."""
    name = names.webhook_name(name)
    if signing not in _SIGNINGS:
        raise Invalid(f"A webhook is signed with {' or '.join(_SIGNINGS)}, not {bounds.shown(signing)}.")
    if fmt not in _FORMATS:
        raise Invalid(f"A webhook's format is {' or '.join(_FORMATS)}, not {bounds.shown(fmt)}.")
    if repository is not None:
        repository = names.repository_slug(repository)
    target = None
    made_secret = None
    if fmt == "bitbucket-pipeline":
        if not pipeline:
            raise Invalid("A Bitbucket webhook runs a custom pipeline: name it (--pipeline NAME, as under `custom:` "
                          "in that repository's bitbucket-pipelines.yml).")
        target = BitbucketPipeline(branch=names.branch_glob(branch), pipeline=bounds.one_line(
            pipeline, 255, "Pipeline names"))
        if url is None:
            if not bitbucket_repository or bitbucket_repository.count("/") != 1:
                raise Invalid("Name the repository whose pipeline runs as WORKSPACE/REPO (--bitbucket-repo), or give "
                              "its pipelines API URL.")
            bb_ws, bb_repo = bitbucket_repository.split("/")
            url = BITBUCKET_API.format(workspace=names.repository_slug(bb_ws),
                                       repository=names.repository_slug(bb_repo))
        if not secret:
            raise Invalid("A Bitbucket webhook calls the API with a repository access token of the target repository "
                          "(scope pipeline:write): give it (--token-stdin); it is kept in the data directory.")
        subscribed = ["publish"] if not subscribed else subscribed
        if events(subscribed) != ["publish"]:
            raise Invalid("A Bitbucket webhook runs its pipeline when a package is published: subscribe it to "
                          "'publish' only.")
        signing = "ed25519"
    elif signing == "hmac-sha256" and not secret:
        secret = made_secret = secrets.new_secret()
    elif signing == "ed25519" and secret:
        raise Invalid("An ed25519 webhook is signed with the ledger's key and takes no secret: give --signing "
                      "hmac-sha256 to sign with a secret.")
    if url is None:
        raise Invalid("Give the URL the webhook delivers to.")
    url = names.webhook_url(url)
    if why := addresses.refusal(url, reg.settings):
        raise Invalid(f"Invalid webhook URL {bounds.shown(url)}: {why}.")
    subscribed = events(subscribed)
    if secret is not None:
        secret = bounds.secret(secret, 4096, "Webhook secrets")
        if len(secret) < 16:
            raise Invalid("A webhook secret has at least 16 characters (leave it out: the registry makes one).")
    _check(reg.snapshot(), who, ws, name, repository)  # (before anything is kept: a refusal keeps nothing)
    record = Webhook(name=name, endpoint=secrets.endpoint(url), key=secrets.new_key(), events=subscribed,  # type: ignore[arg-type]
                     repository=repository, signing=signing, format=fmt, bitbucket=target,  # type: ignore[arg-type]
                     secret=secret is not None, since="", added=who.provenance(channel))
    # Durable before the commit names it, under a key of this version's own: until the commit lands
    # (or if it never does) the hook goes on with the URL and secret its current record names.
    secrets.stage(reg.settings, ws, record, url, secret)
    scope = f"{ws}/{repository}" if repository else ws

    def build(snap: Snapshot) -> Change:
        before = _check(snap, who, ws, name, repository)
        made = replace(record, since=before.since if before else snap.commit_id)
        return make_change(who, channel, Action.ADD_WEBHOOK,
                           f"{'replace' if before else 'add'} webhook {name} of {scope}: {', '.join(subscribed)} "
                           f"to {secrets.shown(made)} ({secrets.endpoint_of(made).fingerprint})",
                           {layout.webhook(ws, name): made}, (T.WORKSPACE, ws),
                           *(((T.REPOSITORY, repository),) if repository else ()), (T.WEBHOOK, name),
                           result=(made, before))

    done = reg.transact(build)
    hook, before = done.result
    _tidy(reg, ws, hook, before)
    return Added(hook, made_secret)


def _check(snap: Snapshot, who: Principal, ws: str, name: str, repository: str | None) -> Webhook | None:
    """The hook of that name now (None: a new one), if ``who`` may add it as asked."""
    require_workspace_admin(snap, who, ws, f"change the webhooks of workspace {ws}")
    if repository is not None and snap.get(layout.repository(ws, repository), Repository) is None:
        raise NotFound(f"Workspace {ws} has no repository {repository!r}.")
    before = snap.get(layout.webhook(ws, name), Webhook)
    if before is None and len(snap.names(layout.webhooks_dir(ws))) >= MAX_HOOKS:
        raise Invalid(f"A workspace has at most {MAX_HOOKS} webhooks; remove one first.")
    return before


def _tidy(reg: Registry, ws: str, hook: Webhook, before: Webhook | None) -> None:
    """After a replace: exactly the replaced version's URL and secret go (the deliverer goes only as
    the record now says). Best effort: one left behind is dropped by the deliverer's next prune."""
    if before is None or before.key == hook.key:
        return
    try:
        secrets.drop(reg.settings, ws, [before])
    except OSError:
        pass


def remove_webhook(reg: Registry, who: Principal, channel: Channel, ws: str, name: str) -> Webhook:
    name = names.webhook_name(name)

    def build(snap: Snapshot) -> Change:
        require_workspace_admin(snap, who, ws, f"change the webhooks of workspace {ws}")
        hook = _existing(snap, ws, name)
        return make_change(who, channel, Action.REMOVE_WEBHOOK, f"remove webhook {name} of {ws}",
                           {layout.webhook(ws, name): None}, (T.WORKSPACE, ws), (T.WEBHOOK, name), result=hook)

    hook = reg.transact(build).result
    try:
        secrets.drop(reg.settings, ws, [hook])
    except OSError:  # (the ledger no longer names it: never used)
        pass
    return hook


def replay_webhook(reg: Registry, who: Principal, channel: Channel, ws: str, name: str, start: str) -> Webhook:
    """Deliver again everything the hook wants from commit ``start`` (included) on, in order: its
    cursor goes back there once the deliverer reads this commit."""
    name = names.webhook_name(name)

    def build(snap: Snapshot) -> Change:
        require_workspace_admin(snap, who, ws, f"change the webhooks of workspace {ws}")
        hook = _existing(snap, ws, name)
        full = _on_main(reg, snap.commit_id, start)
        record = replace(hook, replay=WebhookReplay(start=full, requested=who.provenance(channel)))
        return make_change(who, channel, Action.REPLAY_WEBHOOK, f"replay webhook {name} of {ws} from {full[:12]}",
                           {layout.webhook(ws, name): record}, (T.WORKSPACE, ws), (T.WEBHOOK, name), result=record)

    return reg.transact(build).result


def _existing(snap: Snapshot, ws: str, name: str) -> Webhook:
    hook = snap.get(layout.webhook(ws, name), Webhook)
    if hook is None:
        raise NotFound(f"Workspace {ws} has no webhook named {name!r} (`registry webhook list {ws}` lists them).")
    return hook


def _on_main(reg: Registry, head: str, start: str) -> str:
    """``start`` as a whole commit id, if it is one of main's commits up to ``head``."""
    repo = reg.ledger.repo()
    if not 4 <= len(start) <= 40 or any(c not in "0123456789abcdef" for c in start):
        raise Invalid(f"Replay from a commit id (4 to 40 hex digits), not {bounds.shown(start)}.")
    try:
        found = str(repo.revparse_single(start).peel(pygit2.Commit).id)
    except (KeyError, ValueError, pygit2.GitError):
        found = None
    if found is None or not (found == head or repo.descendant_of(head, found)):
        raise NotFound(f"No commit of the ledger's main branch is named {start!r} (`registry log` lists them; give "
                       "more digits if several start so).")
    return found
