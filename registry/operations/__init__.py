"""The registry's verbs. Each checks permission against the snapshot it commits on, and is one commit.

Callers (the CLI, the web controllers) parse input, call a verb with a `Principal` and a channel,
and render the result. Nothing here knows about HTTP or argv.
"""

from ..datadir import Registry
from ..layout import version_key
from ..model import ApiToken, Package, Version
from ..reads.records import (
    check_signin_link,
    core_metadata,
    find_signin_link,
    find_token,
    get_package,
    get_version,
    list_packages,
    list_tokens,
    live_session,
    sessions_of,
    versions,
)
from .keys import rotate_keys
from .packages import (
    Published,
    check_publish_policy,
    create_package,
    delete_package,
    delete_version,
    publish_file,
    publish_target,
    yank,
)
from .pipelines import (
    MINTED_TOKEN_LIFETIME,
    mint_pipeline_token,
    remove_trust,
    run_url,
    set_publish_policy,
    set_trust,
)
from .signin import (
    Started,
    create_signin_link,
    end_session,
    end_sessions,
    start_session,
    use_signin_link,
)
from .tenancy import (
    create_project,
    create_repository,
    create_token,
    create_user,
    create_workspace,
    grant,
    revoke_token,
)

__all__ = [
    "MINTED_TOKEN_LIFETIME", "ApiToken", "Package", "Published", "Registry", "Version", "check_publish_policy",
    "core_metadata", "create_package", "create_project", "create_repository", "create_token", "create_user",
    "create_workspace", "delete_package", "delete_version", "find_token", "get_package", "get_version", "grant",
    "list_packages", "list_tokens", "mint_pipeline_token", "publish_file", "publish_target", "remove_trust",
    "revoke_token", "rotate_keys", "run_url",
    "set_publish_policy", "set_trust", "version_key", "versions", "yank",
    "check_signin_link", "create_signin_link", "find_signin_link", "use_signin_link",
    "Started", "start_session", "end_session", "end_sessions", "live_session", "sessions_of",
]
