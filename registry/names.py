"""The rules on the names and text a user gives the registry: workspace slugs, project keys,
repository slugs, emails, package names, versions, roles, labels, reasons and patterns. Each rule
returns the value in its normal form or raises `Invalid` with a message that says what is allowed;
`record_problems` holds a stored record to today's rules (`registry verify`, `registry repair`).
How long each piece of text may be, and of which characters, is `bounds.py`'s. Pure: no I/O."""

from __future__ import annotations

import re

from packaging.utils import InvalidName, canonicalize_name
from packaging.version import InvalidVersion
from packaging.version import Version as PkgVersion

from pipelines import claims

from . import bounds
from .errors import Invalid
from .model import (
    ROLES,
    ApiToken,
    Package,
    PipelinesTrust,
    Project,
    Record,
    Repository,
    Role,
    User,
    Version,
    Workspace,
)

# Top-level URL segments the web app owns; a workspace can't take them ("-" is the web UI's).
RESERVED_WORKSPACES = frozenset({"api", "_", "-", "schema", "files", "static", "simple", "legacy", "health", "pypi"})
_WORKSPACE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,61}\Z")
_PROJECT_KEY_RE = re.compile(r"^[A-Z][A-Z0-9_]{0,63}\Z")
_REPO_RE = re.compile(r"^[a-z0-9_-][a-z0-9._-]{0,61}\Z")
_EMAIL_RE = re.compile(
    r"^[a-z0-9.!#$%&'*+=?^_`{|}~-]{1,64}@[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\Z"
)


def workspace_slug(value: str) -> str:
    slug = bounds.at_most(value.strip(), 62, "Workspace slugs")
    if not _WORKSPACE_RE.match(slug):
        raise Invalid(
            f"Invalid workspace slug {bounds.shown(value)}: use 1-62 lowercase letters, digits, '-' or '_', "
            "starting with a letter or digit."
        )
    if slug in RESERVED_WORKSPACES:
        raise Invalid(f"Workspace slug {slug!r} is reserved by the registry's URLs; choose another.")
    return slug


def project_key(value: str) -> str:
    key = bounds.at_most(value.strip(), 64, "Project keys").upper()
    if not _PROJECT_KEY_RE.match(key):
        raise Invalid(f"Invalid project key {bounds.shown(value)}: use a letter followed by letters, digits or '_' "
                      "(at most 64).")
    return key


def repository_slug(value: str) -> str:
    slug = bounds.at_most(value.strip(), 62, "Repository slugs")
    if not _REPO_RE.match(slug) or slug in {".", ".."}:
        raise Invalid(
            f"Invalid repository slug {bounds.shown(value)}: use 1-62 lowercase letters, digits, '.', '-' or '_'."
        )
    return slug


def email(value: str) -> str:
    address = bounds.at_most(value.strip(), bounds.EMAIL, "Email addresses").lower()
    if not _EMAIL_RE.match(address):
        raise Invalid(f"Invalid email address {bounds.shown(value)}: expected name@domain, the name at most "
                      f"{bounds.EMAIL_LOCAL} of a-z, 0-9 and .!#$%&'*+=?^_`{{|}}~-.")
    return address


def display_name(value: str, things: str) -> str:
    """A workspace's or a project's name as shown: one line of at most 250 characters."""
    return bounds.one_line(value, bounds.DISPLAY_NAME, things)


def role(value: str) -> Role:
    if value not in ROLES:
        raise Invalid(f"Invalid role {bounds.shown(value)}: use one of read, write, admin.")
    return value


def unreserved_package(canonical: str) -> str:
    """The normalised name, unless no package may take it: `simple` (/<ws>/simple/ is where other
    indexes keep theirs, so it leads to the workspace's index)."""
    if canonical == "simple":
        raise Invalid("The package name 'simple' is reserved: /<workspace>/simple/ leads to the workspace's index.")
    return canonical


def package_name(value: str) -> tuple[str, str]:
    """(normalised name, display name) of a PyPI project name, or a refusal saying why."""
    display = bounds.at_most(value, bounds.PACKAGE_NAME, "Package names")
    try:
        canonical = canonicalize_name(display, validate=True)
    except InvalidName:
        raise Invalid(
            f"Invalid package name {bounds.shown(value)}: a name is letters, digits, '.', '-' and '_', "
            "starting and ending with a letter or digit."
        ) from None
    return canonical, display


def version(value: str) -> str:
    """A PEP 440 version in its normal form, or a refusal saying why (its length is bounded before
    it is parsed: packaging turns each digit run into an int, and Python refuses huge ones)."""
    bounds.at_most(value, bounds.VERSION, "Versions")
    try:
        return str(PkgVersion(value))
    except (InvalidVersion, ValueError):
        raise Invalid(f"{bounds.shown(value)} is an invalid value for Version: not a PEP 440 version (such as 1.0, "
                      "2.0rc1, 1.0.post1).") from None


def token_label(value: str) -> str:
    return bounds.one_line(value, bounds.TOKEN_LABEL, "Token labels", empty=True)


def yank_reason(value: str) -> str:
    """One line (a reason typed over several is joined with spaces), at most 512 characters."""
    return bounds.one_line(" ".join(bounds.at_most(value, 4 * bounds.YANK_REASON, "Yank reasons").split()),
                           bounds.YANK_REASON, "Yank reasons", empty=True)


def account_reason(value: str) -> str:
    """Why an account is disabled: one line (one typed over several is joined), at most 512 characters."""
    return bounds.one_line(" ".join(bounds.at_most(value, 4 * bounds.YANK_REASON, "Reasons").split()),
                           bounds.YANK_REASON, "Reasons", empty=True)


def branch_glob(value: str) -> str:
    return bounds.one_line(value, bounds.BRANCH_GLOB, "Branch patterns")


def audience(value: str) -> str:
    return bounds.one_line(value, bounds.AUDIENCE, "Audiences (Bitbucket's limit)")


def record_problems(record: Record) -> list[str]:
    """What in a record breaks today's rules on names and text (one an older release accepted):
    `registry verify` notes them; `registry repair PATH --apply` removes one only when named."""
    checks: list = []
    match record:
        case Workspace():
            checks = [(workspace_slug, record.slug), (display_name, record.name, "Workspace names")]
        case Project():
            checks = [(project_key, record.key), (display_name, record.name, "Project names")]
        case Repository():
            checks = [(repository_slug, record.slug)]
        case User():
            checks = [(email, record.email), (bounds.person_name, record.name),
                      (account_reason, record.disabled_reason)]
        case ApiToken():
            checks = [(token_label, record.label)]
        case Package():
            checks = [(package_name, record.display_name)]
            checks += [(branch_glob, g) for g in record.publish_policy.branches] if record.publish_policy else []
        case Version():
            checks = [(version, record.version), (yank_reason, record.yanked_reason)]
        case PipelinesTrust():
            checks = [(bounds.one_line, record.issuer, bounds.ISSUER, "Issuer URLs")]
            checks += [(audience, a) for a in record.audiences]
    problems = []
    for check, *args in checks:
        try:
            check(*args)
        except Invalid as exc:
            problems.append(exc.message)
    return problems


_UPSTREAM_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}\Z")
_PATTERN_RE = re.compile(r"^[a-z0-9*?\[\]!._-]{1,200}\Z")


def upstream_name(value: str) -> str:
    value = bounds.at_most(value, 40, "Upstream names")
    if not _UPSTREAM_NAME_RE.match(value):
        raise Invalid(f"Invalid upstream name {bounds.shown(value)}: use 1-40 lowercase letters, digits, '-' or '_', "
                      "starting with a letter or digit (e.g. 'public', 'mirror-eu').")
    return value


def webhook_name(value: str) -> str:
    value = bounds.at_most(value, 40, "Webhook names")
    if not _UPSTREAM_NAME_RE.match(value):
        raise Invalid(f"Invalid webhook name {bounds.shown(value)}: use 1-40 lowercase letters, digits, '-' or '_', "
                      "starting with a letter or digit (e.g. 'ci', 'deploy-prod').")
    return value


def webhook_url(value: str) -> str:
    """Where a webhook delivers: https, or http to this machine only (a receiver on loopback); a host,
    no credentials, query or fragment (the URL is recorded in the ledger, where no secret goes)."""
    from urllib.parse import urlsplit

    value = bounds.one_line(value, 1024, "Webhook URLs")
    try:
        parts = urlsplit(value)
        _ = parts.port
    except ValueError as exc:
        raise Invalid(f"Invalid webhook URL {bounds.shown(value)}: {exc}.") from None
    loopback = parts.hostname in ("localhost", "127.0.0.1", "::1")
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise Invalid(f"Invalid webhook URL {bounds.shown(value)}: use an https:// URL (http:// only to a receiver on "
                      "this machine: localhost, 127.0.0.1 or [::1]).")
    if not parts.hostname or parts.query or parts.fragment or "@" in parts.netloc:
        raise Invalid(f"Invalid webhook URL {bounds.shown(value)}: give a plain URL, without credentials, query or "
                      "fragment (it is recorded in the ledger; a secret goes in --secret, kept in the data directory).")
    return value


def upstream_url(value: str) -> str:
    """An upstream index's Simple API root: http(s), a host, no query or fragment; ends in '/'."""
    from urllib.parse import urlsplit

    value = bounds.at_most(value.strip(), 1024, "Upstream URLs")
    try:
        parts = urlsplit(value)
        _ = parts.port
    except ValueError as exc:
        raise Invalid(f"Invalid upstream URL {bounds.shown(value)}: {exc}.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise Invalid(f"Invalid upstream URL {bounds.shown(value)}: give the http(s) URL of its Simple API root, the "
                      "one pip's --index-url takes (e.g. https://mirror.example.com/simple/), without a query.")
    if "@" in parts.netloc:
        raise Invalid("Give an upstream's credentials with --username and --password (or in the API's fields), not "
                      "in its URL: the URL is recorded in the ledger, credentials never are.")
    return value if value.endswith("/") else value + "/"


def name_pattern(value: str) -> str:
    """A pattern of normalised project names (fnmatch: `*`, `?`, `[...]`), e.g. `acme-*`."""
    value = bounds.at_most(value.strip().lower(), 200, "Name patterns")
    if not _PATTERN_RE.match(value):
        raise Invalid(f"Invalid name pattern {bounds.shown(value)}: use a project name with '*', '?' or '[...]' "
                      "wildcards, e.g. 'acme-*' (names are matched normalised: lowercase, '-' for '.' and '_').")
    return value.replace("_", "-").replace(".", "-")


def reason(value: str) -> str:
    """Why a rule, a block or an exemption is there: required, one line."""
    value = bounds.one_line(value, bounds.YANK_REASON, "Reasons", empty=True)
    if not value:
        raise Invalid("Give a reason (--reason TEXT): it is recorded with the rule, and shown to whoever it refuses.")
    return value


_POLICY_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}\Z")


def policy_name(value: str) -> str:
    """A retention policy's name: a slug, as commits and plans name it."""
    value = bounds.at_most(value.strip().lower(), 40, "Policy names")
    if not _POLICY_NAME_RE.match(value):
        raise Invalid(f"Invalid policy name {bounds.shown(value)}: use 1 to 40 lowercase letters, digits, '-' or '_', "
                      "starting with a letter or digit (e.g. 'nightlies').")
    return value


def environment(value: str) -> str:
    """A deployment environment a retention policy protects: a UUID (braces optional; kept braced and
    lowercase, as tokens say it) or a name, as the step reported it (matched without regard to case)."""
    value = bounds.one_line(value, 255, "Environment names", empty=True).strip()
    if not value:
        raise Invalid("Give a deployment environment's name (e.g. Production) or its UUID.")
    try:
        return claims.brace_uuid(value)
    except ValueError:
        return value
