"""Command probe: does a shell command exit with the expected code (and print the expected text) in time?"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time

from gameday.activities.probes.judge import Sample
from gameday.activities.probes.tcp import timed_out
from gameday.activities.secrets import command_env
from gameday.model.drill import CommandProbe

SHELL = "/bin/sh"
OUTPUT_IN_PROBLEM = 200
"""Characters of the command's output quoted in a problem: enough to recognise the error."""


async def take_sample(spec: CommandProbe, client: object = None) -> Sample:
    """Run ``spec.run`` with ``/bin/sh`` and check its exit code and standard output.

    The command runs in its own session (process group), and the whole group is killed when the sample
    ends, times out or is cancelled: a probe must not leave ``sleep``/``curl`` children behind on the worker.

    Args:
        spec: The probe's ``command`` section.
        client: unused: every sampler is called with the activity's shared HTTP client.

    Returns:
        A sample whose latency is the command's run time; a wrong exit code, missing output or a timeout
        is a failed sample, never an exception.
    """
    started = time.perf_counter()
    process = await asyncio.create_subprocess_shell(
        spec.run,
        executable=SHELL,
        env=command_env(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        async with asyncio.timeout(spec.timeout.total_seconds()):
            stdout, stderr = await process.communicate()
    except TimeoutError:
        return Sample(ok=False, latency=time.perf_counter() - started, problem=timed_out(spec.timeout))
    finally:
        # Also after a normal exit: children the command left running in its group are killed with it.
        _kill_group(process.pid)
        if process.returncode is None:
            # Reap the shell so no zombie stays behind; it was SIGKILLed, so this is quick.
            await process.wait()
    latency = time.perf_counter() - started

    if process.returncode != spec.exit_code:
        said = _excerpt(stderr) or _excerpt(stdout)
        problem = f"exit code {process.returncode} (expected {spec.exit_code})"
        return Sample(ok=False, latency=latency, problem=f"{problem}: {said}" if said else problem)
    if spec.stdout_contains is not None and spec.stdout_contains not in stdout.decode(errors="replace"):
        return Sample(ok=False, latency=latency, problem=f"stdout does not contain {spec.stdout_contains!r}")
    return Sample(ok=True, latency=latency)


def _kill_group(pid: int) -> None:
    # With start_new_session the shell leads its own group, whose id is its pid.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def _excerpt(output: bytes) -> str:
    text = " ".join(output.decode(errors="replace").split())
    return text if len(text) <= OUTPUT_IN_PROBLEM else text[: OUTPUT_IN_PROBLEM - 1] + "…"
