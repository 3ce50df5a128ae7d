"""A person's own settings: `registry user default-workspace`."""

from __future__ import annotations

from .. import operations
from ..errors import RegistryError
from .command import CHANNEL, Opened, opened


@opened
def user_default_workspace(cx: Opened) -> int:
    args = cx.args
    if (args.workspace is None) != args.clear:
        raise RegistryError("Give a workspace (the root index then takes a name several workspaces hold from it), "
                            "or --clear.")
    user = operations.set_default_workspace(cx.reg, cx.who, CHANNEL, args.email, args.workspace)
    if user.default_workspace:
        print(f"the root index takes names several workspaces hold from {user.default_workspace}, for {user.email}")
    else:
        print(f"{user.email} has no default workspace: a name several workspaces hold is a 409 at the root index")
    return 0
