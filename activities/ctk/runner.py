"""Run one Chaos Toolkit activity on this worker and return its journal entry, as chaoslib's ``execute_activity``.

Configuration values read from the environment and every secret are resolved here, on the worker, and only here
(:func:`resolve_context`): secrets follow the ``${env:}`` rules of drills (the worker's ``GAMEDAY_DRILL_SECRETS``
allowlist, gameday's own settings never), and every resolved secret value is scrubbed from outputs and errors
before an entry leaves the activity.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import json
import os
import shlex
import shutil
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from gameday.activities import policy
from gameday.activities.ctk.substitute import substitute
from gameday.activities.ctk.tolerance import ToleranceError, within_tolerance
from gameday.activities.secrets import Allowlist, SecretMissing, SecretRefused, command_env, scrub
from gameday.model.budget import clip
from gameday.model.ctk_format import Activity, Context, EnvRef

OUTPUT_BYTES = 600
"""Characters of one activity's output kept in its entry (the run record carries every entry)."""
READ_BYTES = 1024 * 1024
"""Bytes of a process's stdout, of its stderr, and of an HTTP body read into the worker's memory; the rest is read
and dropped as it comes (tolerances judge what was kept): a worker is shared and long-lived."""


class ActivityFailed(Exception):
    """The activity could not run or did not complete (chaoslib's ``ActivityFailed``): its entry is ``failed``."""


@dataclass(frozen=True)
class Resolution:
    """An experiment's configuration and secrets, resolved on this worker.

    Attributes:
        names: every configuration and secret value by name, for ``${name}`` substitution.
        secrets: secret groups, for python providers that take ``secrets``.
        values: the secret values, scrubbed from every output and error.
    """

    names: dict[str, Any] = field(default_factory=dict)
    secrets: dict[str, dict[str, str]] = field(default_factory=dict)
    values: tuple[str, ...] = ()

    def scrub(self, text: str) -> str:
        return scrub(text, self.values)


def resolve_context(context: Context, env: dict[str, str] | None = None) -> Resolution:
    """Read the experiment's env-sourced configuration and its secrets from this worker's environment.

    Raises:
        ActivityFailed: a secret this worker does not give out, or an env value with no default that is not set.
    """
    env = dict(os.environ) if env is None else env
    names: dict[str, Any] = {}
    for name, value in context.configuration.items():
        if isinstance(value, dict) and value.get("type") == "env":
            ref = EnvRef.model_validate(value)
            if (why := Allowlist().refusal(ref.key)) is not None and "gameday's own" in why:
                raise ActivityFailed(f"configuration {name!r}: {why}")
            if ref.key not in env and ref.default is None:
                raise ActivityFailed(
                    f"configuration {name!r}: environment variable {ref.key} is not set on this worker"
                )
            names[name] = env.get(ref.key, ref.default)
        else:
            names[name] = value
    allowlist = Allowlist.from_env(env)
    groups: dict[str, dict[str, str]] = {}
    values: list[str] = []
    for group, secrets in context.secrets.items():
        for name, ref in secrets.items():
            if (why := allowlist.refusal(ref.key)) is not None:
                raise ActivityFailed(f"secret {group}.{name}: {SecretRefused(why)}")
            found = env.get(ref.key, ref.default)
            if found is None:
                raise ActivityFailed(f"secret {group}.{name}: {SecretMissing(f'{ref.key} is not set on this worker')}")
            groups.setdefault(group, {})[name] = str(found)
            names[name] = found
            if str(found):
                values.append(str(found))
    return Resolution(names, groups, tuple(dict.fromkeys(values)))


@dataclass
class Entry:
    """One activity's journal entry (chaoslib's run dict), bounded and scrubbed."""

    name: str
    type: str
    status: str
    start: str
    end: str
    duration: float
    output: Any = None
    exception: str | None = None
    tolerance_met: bool | None = None

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in self.__dict__.items() if v is not None or k == "output"}
        return out


async def run_activity(activity: Activity, resolution: Resolution, *, client: httpx.AsyncClient | None = None) -> Entry:
    """Run ``activity`` (its pauses included) and return its entry; a failure is an entry, never an exception.

    Raises:
        asyncio.CancelledError: cancelled (a stop): what it started is killed first.
    """
    pauses = activity.pauses
    if pauses is not None and pauses.before:
        await asyncio.sleep(pauses.before)
    start = datetime.now(UTC)
    began = time.monotonic()
    output: Any = None
    exception: str | None = None
    try:
        output = await _call(activity, resolution, client)
    except ActivityFailed as exc:
        exception = resolution.scrub(str(exc))
    end = datetime.now(UTC)
    entry = Entry(
        name=activity.name,
        type=activity.type,
        status="failed" if exception is not None else "succeeded",
        start=start.isoformat(),
        end=end.isoformat(),
        duration=round(time.monotonic() - began, 6),
        output=_bounded(output, resolution),
        exception=exception,
    )
    if pauses is not None and pauses.after:
        await asyncio.sleep(pauses.after)
    return entry


def judge(activity: Activity, entry: Entry, resolution: Resolution) -> Entry:
    """``entry`` of a hypothesis probe with ``tolerance_met`` set, as chaoslib's steady-state check does."""
    if entry.status == "failed":
        entry.tolerance_met = False
        return entry
    tolerance = (
        substitute(activity.tolerance, resolution.names) if isinstance(activity.tolerance, str) else activity.tolerance
    )

    def probe_runner(spec: dict[str, Any], value: Any) -> bool:
        raise ToleranceError("probe tolerances are run by the sampler")

    try:
        entry.tolerance_met = within_tolerance(tolerance, entry.output, probe_runner)
    except ToleranceError as exc:
        entry.tolerance_met = False
        entry.exception = str(exc)
    return entry


def _bounded(output: Any, resolution: Resolution) -> Any:
    if output is None:
        return None
    text = json.dumps(output, default=str)
    scrubbed = resolution.scrub(text)
    if len(scrubbed) <= OUTPUT_BYTES and scrubbed == text:
        return output
    if len(scrubbed) <= OUTPUT_BYTES:
        return json.loads(scrubbed)
    return clip(scrubbed, OUTPUT_BYTES)


async def _call(activity: Activity, resolution: Resolution, client: httpx.AsyncClient | None) -> Any:
    provider = activity.provider
    if provider.type in ("process", "python") and not policy.current().rules.commands:
        raise ActivityFailed(
            f"{policy.REFUSED_PREFIX}: a {provider.type} provider runs code on the worker (commands: false)"
        )
    if provider.type == "process":
        return await _process(activity, resolution)
    if provider.type == "http":
        return await _http(activity, resolution, client)
    return await _python(activity, resolution)


async def _process(activity: Activity, resolution: Resolution) -> dict[str, Any]:
    provider = activity.provider
    raw = str(provider.path)
    path = shutil.which(os.path.expanduser(raw))  # noqa: ASYNC240 (a PATH lookup, no I/O wait worth a thread)
    if path is None:
        raise ActivityFailed(f"path '{raw}' cannot be found on this worker")
    arguments = substitute(provider.arguments, resolution.names) if provider.arguments is not None else []
    if isinstance(arguments, str):
        argv = ["/bin/sh", "-c", f"{shlex.quote(path)} {arguments}"]
    else:
        if isinstance(arguments, dict):
            arguments = [item for pair in arguments.items() for item in pair]
        argv = [path, *(str(a) for a in arguments if a not in (None, ""))]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        env=command_env(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        async with asyncio.timeout(provider.time_limit):
            assert proc.stdout is not None and proc.stderr is not None
            stdout, stderr, _ = await asyncio.gather(_read_capped(proc.stdout), _read_capped(proc.stderr), proc.wait())
    except TimeoutError as exc:
        raise ActivityFailed("process activity took too long to complete") from exc
    finally:
        # Also on cancel (a stop): nothing the action started may go on behind the rollback's back.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                await proc.wait()
    return {
        "status": proc.returncode,
        "stdout": stdout.decode(errors="replace"),
        "stderr": stderr.decode(errors="replace"),
    }


async def _read_capped(stream: asyncio.StreamReader) -> bytes:
    """The first :data:`READ_BYTES` of ``stream``; the rest read to its end and dropped."""
    kept = bytearray()
    while chunk := await stream.read(64 * 1024):
        if len(kept) < READ_BYTES:
            kept += chunk[: READ_BYTES - len(kept)]
    return bytes(kept)


async def _http(activity: Activity, resolution: Resolution, client: httpx.AsyncClient | None) -> dict[str, Any]:
    provider = activity.provider
    url = str(substitute(provider.url, resolution.names))
    rules = policy.current().rules
    host = urlsplit(url).hostname or ""
    if rules.hosts is not None and not policy.host_allowed(host, rules.hosts):
        raise ActivityFailed(
            resolution.scrub(f"{policy.REFUSED_PREFIX}: host {host!r} is not allowed (hosts: {', '.join(rules.hosts)})")
        )
    headers = substitute(provider.headers, resolution.names) if provider.headers else None
    arguments = substitute(provider.arguments, resolution.names) if provider.arguments is not None else None
    method = provider.method.upper()
    if isinstance(provider.timeout, list) and len(provider.timeout) == 2:
        connect, read = provider.timeout
        timeout = httpx.Timeout(read, connect=connect)
    else:
        timeout = httpx.Timeout(provider.time_limit)
    request: dict[str, Any] = {"headers": headers, "timeout": timeout}
    if method == "GET":
        request["params"] = arguments
    elif headers and headers.get("Content-Type") == "application/json":
        request["json"] = arguments
    else:
        request["data"] = arguments
    own = client is None
    http = client or httpx.AsyncClient(verify=provider.verify_tls)
    try:
        async with http.stream(method, url, **request) as answer:
            kept = bytearray()
            async for chunk in answer.aiter_bytes():
                kept += chunk[: READ_BYTES - len(kept)]
                if len(kept) >= READ_BYTES:
                    break  # the rest is not read: the connection is closed with the stream
            text = bytes(kept).decode(answer.encoding or "utf-8", errors="replace")
    except httpx.TimeoutException as exc:
        raise ActivityFailed("activity took too long to complete") from exc
    except httpx.HTTPError as exc:
        raise ActivityFailed(resolution.scrub(f"failed to connect to {url}: {exc}")) from exc
    finally:
        if own:
            await http.aclose()
    if provider.expected_status is not None:
        expected = (
            provider.expected_status if isinstance(provider.expected_status, list) else [provider.expected_status]
        )
        if answer.status_code not in expected:
            raise ActivityFailed(f"status {answer.status_code}, expected {expected}")
    body: Any = text
    if answer.headers.get("Content-Type") == "application/json":
        try:
            body = json.loads(text)
        except ValueError:
            body = text
    return {"status": answer.status_code, "headers": dict(answer.headers), "body": body}


async def _python(activity: Activity, resolution: Resolution) -> Any:
    provider = activity.provider
    try:
        module = importlib.import_module(str(provider.module))
        func: Callable[..., Any] = getattr(module, str(provider.func))
    except (ImportError, AttributeError) as exc:
        raise ActivityFailed(f"cannot load {provider.module}.{provider.func} on this worker: {exc}") from exc
    arguments = dict(substitute(provider.arguments or {}, resolution.names))
    parameters = inspect.signature(func).parameters
    if provider.secrets and "secrets" in parameters:
        arguments["secrets"] = {
            k: v for group in provider.secrets for k, v in resolution.secrets.get(group, {}).items()
        }
    if "configuration" in parameters:
        arguments["configuration"] = {k: v for k, v in resolution.names.items() if k not in _secret_names(resolution)}
    try:
        async with asyncio.timeout(provider.time_limit):
            if inspect.iscoroutinefunction(func):
                return await func(**arguments)
            return await _in_own_thread(func, arguments)
    except TimeoutError as exc:
        raise ActivityFailed("activity took too long to complete") from exc
    except Exception as exc:  # chaoslib: any exception of the function fails the activity, its message kept
        raise ActivityFailed(f"{type(exc).__name__}: {exc}") from exc


async def _in_own_thread(func: Callable[..., Any], arguments: dict[str, Any]) -> Any:
    """``func(**arguments)`` in a daemon thread of its own, not the loop's shared executor: a function that never
    returns (it cannot be stopped) then holds only its own thread, never one the worker's stores and ledger need."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[Any] = loop.create_future()

    def settle(outcome: Any, error: BaseException | None) -> None:
        if done.done():  # timed out meanwhile: nobody waits for it
            return
        if error is not None:
            done.set_exception(error)
        else:
            done.set_result(outcome)

    def call() -> None:
        outcome, error = None, None
        try:
            outcome = func(**arguments)
        except BaseException as exc:  # handed to the awaiting coroutine, which judges it
            error = exc
        with contextlib.suppress(RuntimeError):  # the loop is gone (the worker stopped): nobody to tell
            loop.call_soon_threadsafe(settle, outcome, error)

    threading.Thread(target=call, name=f"ctk-python-{getattr(func, '__name__', 'func')}", daemon=True).start()
    return await done


def _secret_names(resolution: Resolution) -> set[str]:
    return {name for group in resolution.secrets.values() for name in group}
