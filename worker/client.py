"""One way to reach Temporal, shared by the worker and the CLI: same address, namespace and data converter."""

from __future__ import annotations

from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter

from worker.config import GamedayConfig


async def connect(config: GamedayConfig) -> Client:
    """Connect to the configured Temporal frontend with the pydantic data converter the workflows need."""
    return await Client.connect(
        config.temporal_address,
        namespace=config.namespace,
        data_converter=pydantic_data_converter,
    )
