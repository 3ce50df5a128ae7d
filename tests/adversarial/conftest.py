from __future__ import annotations

import pytest

from tests.support.world import publish


@pytest.fixture
def published(world, dists):
    """Acme.Utils 1.0.0 (wheel and sdist) in acme/utils, and public-pkg 0.1 in the public repository."""
    dev = world.principal("dev@acme.test")
    for path in dists[("Acme.Utils", "1.0.0")]:
        publish(world.reg, dev, path)
    operations_admin = world.principal("wsadmin@acme.test")
    for path in dists[("public-pkg", "0.1")]:
        publish(world.reg, operations_admin, path)
    return world
