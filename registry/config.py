"""Settings: one struct, read from REGISTRY_* environment variables and command-line overrides."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import msgspec

ENV_PREFIX = "REGISTRY_"
ACCESS_LOGS = ("on", "off", "json")
EVENT_LOGS = ("off", "on", "json")
METRICS = ("loopback", "token", "off")
RETENTION_APPLY = ("off", "daily")
MAX_RETENTION_INTERVAL = 366 * 86400
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")  # what both Python's logging and granian take
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"  # a worker's log lines, and its walks apart
EXPECTED: dict[object, str] = {int: "expected an integer", float: "expected a number",
                               bool: "expected 1/0 or true/false"}


DEFAULT_DATA = "registry-data"  # in the current directory, unless that is inside a git work tree
USER_DATA = "pypi-registry"  # under $XDG_DATA_HOME (~/.local/share): the default inside a git work tree


def git_work_tree(path: Path) -> Path | None:
    """The git work tree ``path`` is in (the nearest folder above it with a `.git`), or None."""
    for folder in (path, *path.parents):
        if (folder / ".git").exists():
            return folder
    return None


def user_data_path() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or "~/.local/share").expanduser() / USER_DATA


def default_data() -> tuple[str, str]:
    """The data directory when none is given, and how to say where it comes from: ./registry-data, as
    long as that exists or is outside any git work tree. A new one inside a checkout would be deleted
    with everything in it, signing keys included, by `git clean -fdx`: there, the per-user one."""
    here = Path.cwd() / DEFAULT_DATA
    tree = None if here.exists() else git_work_tree(Path.cwd())
    if tree is None:
        return DEFAULT_DATA, f"the default, ./{DEFAULT_DATA}"
    return str(user_data_path()), (f"the default in a git work tree ({tree}), where `git clean -fdx` would delete a "
                                   f"./{DEFAULT_DATA}")


def placement_note(data: Path) -> str | None:
    """What to say of a new data directory about where it is (None: nothing): inside a git work tree
    (given there with --data), `git clean -fdx` deletes it; made per user, it isn't ./registry-data."""
    tree = git_work_tree(data)
    if tree is not None:
        return (f"note: {data} is inside the git work tree at {tree}, where `git clean -fdx` would delete it, "
                "signing keys included; move it out (--data DIR or REGISTRY_DATA=DIR) before relying on it.")
    if data == user_data_path().resolve() and git_work_tree(Path.cwd()) is not None:
        return (f"note: the data directory is {data}, not ./{DEFAULT_DATA}: this is a git work tree, where `git "
                "clean -fdx` would delete it, signing keys included. --data DIR or REGISTRY_DATA=DIR chooses another.")
    return None


class BadSetting(ValueError):
    """A value of the right type that the setting refuses: which setting, and what to give instead."""

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field, self.reason = field, reason


def url_problem(url: str) -> str | None:
    """Why ``url`` can't be where the registry is reached (None: it can); a path is fine (a proxy's)."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # (raises on a port that isn't a number)
    except ValueError as exc:
        return f"not a URL ({exc})"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return "give http:// or https:// and a host, e.g. https://pypi.example.com"
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        return "give the URL without a query or fragment"
    return None


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    data: str = DEFAULT_DATA  # (Settings.load: `default_data()` when none is given)
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    # The public index's default per-file limit; 413 above it.
    max_upload_bytes: int = 100 * 2**20
    # The URL clients use to reach this server (behind a proxy, say); only used in printed settings.
    public_url: str | None = None
    committer_name: str = "registry"
    committer_email: str = "registry@localhost"
    # How long unreferenced blobs are kept before the background collector frees them.
    gc_grace_seconds: int = 3600
    # What GET /_/oidc/audience answers (default: the public URL); add it to a trust's audiences.
    oidc_audience: str | None = None
    log_level: str = "info"
    # One line per request on the server's stderr (method, path, status, bytes, ms, who, request id):
    # "on", "off", or "json" (the same, as one JSON object a line).
    access_log: str = "on"
    # One line per ledger commit a served worker makes and per upload it refuses, with the request's id
    # (registry/web/eventlog.py): "off", "on" (text) or "json" (one JSON object a line).
    event_log: str = "off"
    # Who may read GET /_/metrics: "loopback" (a request from this host, not through a proxy, or with a
    # witness or replica token), "token" (only with a witness or replica token), or "off" (404, and
    # requests are not counted). Not given: "token" with a public URL (behind a proxy), else "loopback"
    # (`metrics_access`).
    metrics: str | None = None
    # GET /_/ready answers 503 on a read replica more than this many seconds behind its primary.
    ready_max_lag_seconds: float = 60.0
    # Where distribution files live: "" for the data directory's blobs/, or s3://BUCKET[/PREFIX] (the
    # endpoint, region and credentials come from the usual AWS_* environment variables).
    blobs: str = ""
    # With S3: answer a download with a redirect to a short-lived presigned URL of the bucket.
    blobs_redirect: bool = False
    # With S3: how long a call to the bucket may wait for it (to connect, or for its next bytes); a
    # call that fails is retried only while it can still end within twice this. A stalled bucket is a
    # 503 after that long, so no request waits longer on it.
    blobs_timeout: float = 4.0
    # How long `serve` waits, at start, for a blob store that can't be used yet (a bucket another
    # container is still making, as under compose): it asks again every 2 s, then refuses as at once.
    blobs_start_wait: float = 0.0
    # Free space kept on the data directory's filesystem: an upload that would leave less is refused
    # (507), and other writes (a few KiB each) when less than a quarter of it is left.
    min_free_bytes: int = 256 * 2**20
    # A read replica: the primary's URL (`registry serve --follow URL`), and its replica token.
    follow: str | None = None
    follow_token: str | None = None
    # How long a write forwarded by a replica waits for its commit to arrive there (then a 504 that
    # says the primary did it): longer for a replica far from its primary.
    follow_wait_seconds: float = 10.0
    # A request body must keep arriving: after its first seconds, at least this many bytes a second
    # (else a 408), so a client can't hold a worker's connection by trickling a form in.
    min_body_rate: int = 1024
    body_grace_seconds: float = 10.0
    # What each cache of a worker may hold, in bytes (registry/cache.py; the README's "Memory" adds
    # them up to the worker's ceiling). A cache of 0 keeps nothing.
    cache_records_bytes: int = 8 * 2**20  # ledger records, decoded (ledger/codec.py)
    cache_pages_bytes: int = 8 * 2**20  # rendered index pages (web/caches.py)
    cache_answers_bytes: int = 4 * 2**20  # whole answers to repeated index requests (web/caches.py)
    cache_repeats_bytes: int = 2**20  # the same answers, by the request's every byte (web/repeats.py)
    cache_credentials_bytes: int = 2**20  # Authorization headers resolved to who sent them (web/credentials.py)
    cache_sessions_bytes: int = 2**20  # web UI session cookies resolved to who holds them (web/ui/viewer.py)
    cache_session_signatures_bytes: int = 256 * 2**10  # session cookies whose signature was checked (web/ui/session.py)
    cache_negotiation_bytes: int = 64 * 2**10  # Accept headers and formats to what is served (web/simple.py)
    cache_package_lists_bytes: int = 4 * 2**20  # a workspace's packages (reads/lists.py)
    cache_summaries_bytes: int = 8 * 2**20  # package summaries, by shard (reads/summaries.py)
    cache_repositories_bytes: int = 2**20  # a workspace's repositories (reads/reader.py)
    cache_timeline_refs_bytes: int = 256 * 2**10  # @<commit> and @<time> to the commit they name (reads/timeline.py)
    cache_commit_counts_bytes: int = 256 * 2**10  # commits to their position on main (reads/timeline.py)
    cache_written_trees_bytes: int = 2 * 2**20  # the trees the last commits wrote, for the next (ledger/trees.py)
    cache_in_bucket_bytes: int = 2**20  # a replica's files known to be in its bucket (replica/blobs.py)
    cache_git_objects_bytes: int = 8 * 2**20  # libgit2's object cache
    cache_git_mapped_bytes: int = 16 * 2**20  # libgit2's memory-mapped windows onto pack files (file-backed)
    cache_history_bytes: int = 4 * 2**20  # SQLite's page cache of the history index, all connections together
    # How long a replica waits on a silent primary (to connect, to send it more of a request, to hear
    # from it again) before it gives up and says so: a forwarded write is answered 503/504 within
    # about this long of the primary going silent, and /_/health says it is unreachable.
    follow_timeout_seconds: float = 8.0
    # Upstream indexes (`registry upstream`): how long a project page fetched from one is used before
    # it is asked again (with a conditional request), and how long a call to one may wait for it (to
    # connect, or for its next bytes) before the answer is a 504 that names it (or its cached page).
    upstream_ttl_seconds: int = 600
    upstream_timeout_seconds: float = 10.0
    # Webhooks may deliver to this machine (loopback, http:// too) and private networks (10/8, 192.168/16,
    # 169.254/16, 100.64/10, ...): off, a hook to one is refused when added and not connected to when sent
    # (its host resolved, every address checked): workspace admins add hooks, and would reach the inside.
    webhooks_private: bool = False
    # Whether `registry serve` applies every workspace's retention policies itself: "off" (only
    # `registry retention apply` deletes, as from cron) or "daily" (one worker applies them once every
    # retention_interval seconds, its last run and the next in the data directory; see Retention).
    retention_apply: str = "off"
    # The period of those runs: a day, unless tests or an operator want another.
    retention_interval: int = 86400

    def __post_init__(self) -> None:
        if self.blobs and not self.blobs.startswith("s3://"):
            raise BadSetting("blobs", "leave it empty (the data directory's blobs/) or give s3://BUCKET[/PREFIX] - "
                                      "`registry blobs migrate --to s3://...` moves existing blobs there")
        if not 0 <= self.blobs_start_wait <= 3600:
            raise BadSetting("blobs_start_wait", "give a number of seconds from 0 to 3600")
        if not self.blobs_timeout > 0:
            raise BadSetting("blobs_timeout", "give a number of seconds above 0")
        if self.min_free_bytes < 0:
            raise BadSetting("min_free_bytes", "give a number of bytes, 0 or more")
        if not self.follow_wait_seconds > 0:
            raise BadSetting("follow_wait_seconds", "give a number of seconds above 0")
        if not 1 <= self.follow_timeout_seconds <= 300:
            raise BadSetting("follow_timeout_seconds", "give a number of seconds from 1 to 300")
        if not 1 <= self.port <= 65535:  # (0, any free port, would leave clients guessing)
            raise BadSetting("port", "give a port from 1 to 65535")
        if self.min_body_rate < 1:
            raise BadSetting("min_body_rate", "give 1 or more bytes a second")
        if not self.body_grace_seconds > 0:
            raise BadSetting("body_grace_seconds", "give a number of seconds above 0")
        if self.log_level.lower() not in LOG_LEVELS:
            raise BadSetting("log_level", f"give one of {', '.join(LOG_LEVELS)} (in any case)")
        if self.access_log.lower() not in ACCESS_LOGS:
            raise BadSetting("access_log", "give on, off or json")
        if self.event_log.lower() not in EVENT_LOGS:
            raise BadSetting("event_log", "give off, on or json")
        if self.metrics is not None and self.metrics.lower() not in METRICS:
            raise BadSetting("metrics", "give loopback (this host, or a witness or replica token), token (only those "
                                        "tokens) or off")
        if not self.ready_max_lag_seconds > 0:
            raise BadSetting("ready_max_lag_seconds", "give a number of seconds above 0")
        if self.upstream_ttl_seconds < 0:
            raise BadSetting("upstream_ttl_seconds", "give a number of seconds, 0 or more")
        if not 0 < self.upstream_timeout_seconds <= 300:
            raise BadSetting("upstream_timeout_seconds", "give a number of seconds above 0, up to 300")
        if self.retention_apply.lower() not in RETENTION_APPLY:
            raise BadSetting("retention_apply", "give off (only `registry retention apply` deletes) or daily (the "
                                                "server applies every workspace's policies once a day)")
        if not 1 <= self.retention_interval <= MAX_RETENTION_INTERVAL:
            raise BadSetting("retention_interval", f"give a number of seconds from 1 to {MAX_RETENTION_INTERVAL} "
                                                   "(366 days); 86400 is a day")
        if self.workers < 1:
            raise BadSetting("workers", "give 1 or more worker processes")
        for field in msgspec.structs.fields(self):
            if field.name.startswith("cache_") and getattr(self, field.name) < 0:
                raise BadSetting(field.name, "give a number of bytes, 0 or more")
        if self.public_url is not None and (problem := url_problem(self.public_url)):
            raise BadSetting("public_url", problem)

    @property
    def logs_access(self) -> bool:
        return self.access_log.lower() in ("on", "json")

    @property
    def logs_json(self) -> bool:
        return self.access_log.lower() == "json"

    @property
    def metrics_access(self) -> str:
        """Who may read GET /_/metrics: REGISTRY_METRICS if given; else `token` when a public URL is set,
        for that means a proxy, and a proxy on this host that adds no X-Forwarded-For (or Forwarded,
        X-Real-IP) makes every request it passes on look like this host's; else `loopback`."""
        if self.metrics is not None:
            return self.metrics.lower()
        return "token" if self.public_url else "loopback"

    def metrics_note(self) -> tuple[str, bool]:
        """What `serve` says at start of who may read the metrics, and why; and whether it warns."""
        mode, given = self.metrics_access, self.metrics is not None
        who = {"loopback": "requests from this host that no proxy forwarded, and witness or replica tokens",
               "token": "witness or replica tokens only", "off": "nobody (404), and requests are not counted"}[mode]
        head = f"Metrics (GET /_/metrics): {mode}, {who}"
        if given and mode == "loopback" and self.public_url:
            return (f"warning: {head}, as REGISTRY_METRICS (--metrics) says, though REGISTRY_PUBLIC_URL is set: a "
                    "proxy on this host that adds no X-Forwarded-For, Forwarded or X-Real-IP header makes them "
                    "public; give REGISTRY_METRICS=token unless it adds one.", True)
        if given:
            return f"{head} (REGISTRY_METRICS, or --metrics).", False
        if self.public_url:
            return (f"{head}: the default behind a proxy (REGISTRY_PUBLIC_URL is set), which may make every "
                    "request look local; REGISTRY_METRICS=loopback lets this host in too.", False)
        return f"{head}: the default (REGISTRY_METRICS=token or off to change it).", False

    @property
    def primary(self) -> str | None:
        return self.follow.rstrip("/") if self.follow else None

    @property
    def data_path(self) -> Path:
        return Path(self.data).expanduser().resolve()

    @property
    def ledger_path(self) -> Path:
        return self.data_path / "ledger.git"

    @property
    def blobs_path(self) -> Path:
        return self.data_path / "blobs"

    @property
    def keys_path(self) -> Path:
        """The private signing keys (mode 0700; never in the ledger)."""
        return self.data_path / "keys"

    @property
    def cache_path(self) -> Path:
        return self.data_path / "cache"

    @property
    def served_at_path(self) -> Path:
        """The base URL the last `registry serve` here was reached at, and its process id, for the links
        the CLI prints (only while that process runs)."""
        return self.data_path / "served-at"

    # --- the rest of the data directory: every file's name is here, and nowhere else -------------

    @property
    def replica_of_path(self) -> Path:
        """In a read replica's data directory: the primary it follows."""
        return self.data_path / "replica-of"

    @property
    def replica_path(self) -> Path:
        """A read replica's own state: its status, its files cursor."""
        return self.data_path / "replica"

    @property
    def blobs_location_path(self) -> Path:
        """The bucket the distribution files are in, once they are in one."""
        return self.data_path / "blobs-location"

    @property
    def blobs_missing_path(self) -> Path:
        """Files the ledger references that the blob store was found to lack (damage, for /_/health)."""
        return self.data_path / "blobs-missing"

    @property
    def s3_staging_path(self) -> Path:
        """Uploads on their way to a bucket, checked here first."""
        return self.data_path / "s3-staging"

    @property
    def upstream_credentials_path(self) -> Path:
        """Credentials of upstream indexes (mode 0600; never in the ledger, which says only that they are set)."""
        return self.data_path / "upstream-credentials.json"

    @property
    def upstream_cache_path(self) -> Path:
        """Upstream project pages as last fetched, shared by the workers (a cache: safe to delete)."""
        return self.data_path / "upstream-cache"

    @property
    def webhooks_path(self) -> Path:
        """Webhooks' delivery state: per hook its cursor and recent attempts; the deliverer's lock."""
        return self.data_path / "webhooks"

    @property
    def retention_runs(self) -> bool:
        """Whether the server applies the retention policies itself (REGISTRY_RETENTION_APPLY)."""
        return self.retention_apply.lower() != "off"

    @property
    def retention_run_path(self) -> Path:
        """The server's last retention run: when, what it deleted and refused, its errors, the next."""
        return self.data_path / "retention-run.json"

    @property
    def collect_lock_path(self) -> Path:
        """Held by the worker collecting unreferenced blobs (the others skip that round's collection)."""
        return self.data_path / "collect.lock"

    @property
    def retention_lock_path(self) -> Path:
        """Held by the one worker that runs the retention runs (the others wait to take over)."""
        return self.data_path / "retention-run.lock"

    @property
    def webhook_secrets_path(self) -> Path:
        """Webhooks' HMAC secrets and Bitbucket tokens (mode 0600): never in the ledger."""
        return self.data_path / "webhook-secrets.json"

    @property
    def session_key_path(self) -> Path:
        """The 32-byte Ed25519 seed web sessions are signed with (a primary's only; mode 0600)."""
        return self.data_path / "web-session.key"

    @property
    def session_public_key_path(self) -> Path:
        """Its public half, raw: what a read replica checks sessions with."""
        return self.data_path / "web-session.pub"

    def link_url(self) -> str:
        """The registry's URL in what the CLI prints: the public URL, else where it is served now (the
        server that wrote `served-at` still runs), else host and port (a link to the default port would
        be wrong for a server on another)."""
        if self.public_url:
            return self.base_url
        recorded, running = self.served_at()
        return recorded if recorded and running else self.base_url

    def served_at(self) -> tuple[str | None, bool]:
        """(where the last `registry serve` here was reached, whether that server still runs)."""
        try:
            lines = self.served_at_path.read_text().split()
        except OSError:
            return None, False
        url = lines[0] if lines and not url_problem(lines[0]) else None
        if len(lines) < 2 or not lines[1].isdigit():  # (written before the pid was: can't tell)
            return url, True
        try:
            os.kill(int(lines[1]), 0)
        except ProcessLookupError:
            return url, False
        except PermissionError:  # (someone else's process: it runs)
            pass
        return url, True

    @property
    def base_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        return f"http://{host}:{self.port}"

    @classmethod
    def load(cls, **overrides) -> Settings:
        """Defaults, then REGISTRY_* variables, then explicit (non-None) overrides."""
        values: dict[str, object] = {}
        source: dict[str, str] = {}  # where each value came from, to name it when it is refused
        for field in msgspec.structs.fields(cls):
            raw = os.environ.get(ENV_PREFIX + field.name.upper())
            if raw is not None and raw != "":
                values[field.name], source[field.name] = raw, ENV_PREFIX + field.name.upper()
        for name, value in overrides.items():
            if value is not None:
                values[name], source[name] = value, "--" + name.replace("_", "-")
        if "data" not in values:
            values["data"] = default_data()[0]
        try:
            return msgspec.convert(values, cls, strict=False)
        except msgspec.ValidationError as exc:
            if isinstance(exc.__cause__, BadSetting):
                name, reason = exc.__cause__.field, exc.__cause__.reason
            else:
                found = re.search(r"at `\$\.(\w+)`", str(exc))
                name = found[1] if found else ""
                kind = next((f.type for f in msgspec.structs.fields(cls) if f.name == name), None)
                reason = EXPECTED.get(kind) or str(exc).split(" - at ")[0]
            if name not in source:
                raise SystemExit(f"registry: invalid setting {name}: {reason}") from None
            raise SystemExit(f"registry: invalid setting {source[name]}={values[name]!r}: {reason}") from None

    def to_env(self) -> dict[str, str]:
        """The same settings as environment variables, for worker processes."""
        return {
            ENV_PREFIX + f.name.upper(): str(getattr(self, f.name))
            for f in msgspec.structs.fields(self)
            if getattr(self, f.name) is not None
        }
