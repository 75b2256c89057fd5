"""One way to reach Temporal, shared by the worker and the CLI: same address, namespace and data converter."""

from __future__ import annotations

import asyncio
import time

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from gameday.config.app import GamedayConfig


async def connect(config: GamedayConfig, *, wait_ready: float = 0.0) -> Client:
    """Connect to the configured Temporal frontend with the pydantic data converter the workflows need.

    Args:
        config: where to connect.
        wait_ready: seconds to keep retrying while a just-started server says it is not ready yet.
    """
    deadline = time.monotonic() + wait_ready
    while True:
        try:
            return await Client.connect(
                config.temporal_address,
                namespace=config.namespace,
                data_converter=pydantic_data_converter,
            )
        except RuntimeError:
            # A dev server opens its port before its frontend is healthy.
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.1)
