"""The registry's verbs. Each checks permission against the snapshot it commits on, and is one commit.

Callers (the CLI, the web controllers) parse input, call a verb with a `Principal` and a channel,
and render the result. Nothing here knows about HTTP or argv. What a verb reads first (a package,
a version, a token) is `reads/records.py`'s, and the data directory is `datadir.py`'s: import them
from there.
"""

from .first_publish import set_create_on_publish
from .keys import rotate_keys
from .lifecycle import (
    delete_project,
    delete_repository,
    delete_workspace,
    rename_project,
    rename_repository,
    rename_workspace,
)
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
from .people import disable_user, enable_user, remove_member, rename_user
from .pipeline_readers import grant_pipelines, revoke_pipelines
from .pipelines import (
    MINTED_TOKEN_LIFETIME,
    mint_pipeline_token,
    remove_trust,
    run_url,
    set_publish_policy,
    set_trust,
)
from .preferences import set_default_workspace
from .retention import apply_deletion, remove_retention, set_quota, set_retention
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
    set_uuid,
)
from .webhooks import add_webhook, remove_webhook, replay_webhook

__all__ = [
    "MINTED_TOKEN_LIFETIME", "Published", "Started", "check_publish_policy", "create_package", "create_project",
    "create_repository", "create_signin_link", "create_token", "create_user", "create_workspace", "delete_package",
    "delete_version", "end_session", "end_sessions", "grant", "grant_pipelines", "mint_pipeline_token",
    "publish_file", "publish_target", "remove_trust", "revoke_pipelines", "revoke_token", "rotate_keys", "run_url",
    "set_publish_policy", "set_trust",
    "set_create_on_publish", "set_default_workspace", "set_uuid",
    "start_session", "use_signin_link", "yank",
    "delete_project", "delete_repository", "delete_workspace", "disable_user", "enable_user", "remove_member",
    "rename_project", "rename_repository", "rename_user", "rename_workspace",
    "apply_deletion", "remove_retention", "set_quota", "set_retention",
    "add_webhook", "remove_webhook", "replay_webhook",
]
