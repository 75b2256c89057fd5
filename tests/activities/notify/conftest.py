"""The fake Slack (``tests/fakes/slack.py``) on loopback, fresh for each test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.activities.notify.drill_events import TOKEN
from tests.fakes.slack import FakeSlack


@pytest_asyncio.fixture
async def slack() -> AsyncIterator[FakeSlack]:
    fake = await FakeSlack(token=TOKEN).start()
    yield fake
    await fake.stop()
