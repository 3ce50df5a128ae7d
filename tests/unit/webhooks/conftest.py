import msgspec
import pytest

from registry.config import Settings


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The test receivers are on 127.0.0.1: allowed (tests/unit/webhooks/test_addresses.py: when not)."""
    return msgspec.structs.replace(settings, webhooks_private=True)
