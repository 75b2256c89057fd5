"""Each probe kind against real parts: a loopback HTTP server, TCP sockets, and /bin/sh."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest

from gameday.activities.probes import command, http, tcp
from gameday.model.drill import CommandProbe, HttpProbe, TcpProbe

Eventually = Callable[[Callable[[], bool]], Awaitable[None]]

# --- http ------------------------------------------------------------------------------------------------


async def test_http_probe_passes_on_expected_status_and_body(server: str, http_client: httpx.AsyncClient) -> None:
    spec = HttpProbe.model_validate({"url": f"{server}/text/all-good", "body_contains": "good"})

    sample = await http.take_sample(spec, http_client)

    assert sample.ok
    assert sample.problem is None
    assert sample.latency > 0


async def test_http_probe_reports_an_unexpected_status(server: str, http_client: httpx.AsyncClient) -> None:
    spec = HttpProbe.model_validate({"url": f"{server}/status/503"})

    sample = await http.take_sample(spec, http_client)

    assert not sample.ok
    assert sample.problem == "status 503 (expected 200)"


async def test_http_probe_accepts_any_listed_status(server: str, http_client: httpx.AsyncClient) -> None:
    spec = HttpProbe.model_validate({"url": f"{server}/status/503", "status": [200, 503]})

    assert (await http.take_sample(spec, http_client)).ok


async def test_http_probe_reports_missing_body_text(server: str, http_client: httpx.AsyncClient) -> None:
    spec = HttpProbe.model_validate({"url": f"{server}/text/all-good", "body_contains": "ok"})

    sample = await http.take_sample(spec, http_client)

    assert not sample.ok
    assert sample.problem == "body does not contain 'ok'"


async def test_http_probe_reports_a_timeout_in_the_drill_units(server: str, http_client: httpx.AsyncClient) -> None:
    spec = HttpProbe.model_validate({"url": f"{server}/slow/2000", "timeout": "200ms"})

    sample = await http.take_sample(spec, http_client)

    assert not sample.ok
    assert sample.problem == "timed out after 200ms"
    assert 0.1 < sample.latency < 1.5  # the sample took the timeout, not the server's 2 s


async def test_http_probe_reports_a_refused_connection(closed_port: int, http_client: httpx.AsyncClient) -> None:
    spec = HttpProbe.model_validate({"url": f"http://127.0.0.1:{closed_port}/"})

    sample = await http.take_sample(spec, http_client)

    assert not sample.ok
    assert sample.problem == "connection refused"


async def test_http_probe_does_not_follow_redirects(server: str, http_client: httpx.AsyncClient) -> None:
    spec = HttpProbe.model_validate({"url": f"{server}/redirect"})

    sample = await http.take_sample(spec, http_client)

    assert sample.problem == "status 302 (expected 200)"


# --- tcp -------------------------------------------------------------------------------------------------


async def test_tcp_probe_connects_to_a_listener(listening_port: int) -> None:
    sample = await tcp.take_sample(TcpProbe(port=listening_port))

    assert sample.ok
    assert sample.problem is None


async def test_tcp_probe_reports_a_refused_connection(closed_port: int) -> None:
    sample = await tcp.take_sample(TcpProbe(port=closed_port))

    assert not sample.ok
    assert sample.problem == "connection refused"


# --- command ---------------------------------------------------------------------------------------------


async def test_command_probe_passes_on_exit_code_and_stdout() -> None:
    spec = CommandProbe(run="echo ready; exit 0", stdout_contains="ready")

    sample = await command.take_sample(spec)

    assert sample.ok
    assert sample.problem is None


async def test_command_probe_accepts_the_expected_nonzero_exit_code() -> None:
    assert (await command.take_sample(CommandProbe(run="exit 3", exit_code=3))).ok


async def test_command_probe_reports_an_unexpected_exit_code_with_what_it_said() -> None:
    sample = await command.take_sample(CommandProbe(run="echo 'db is down' >&2; exit 3"))

    assert not sample.ok
    assert sample.problem == "exit code 3 (expected 0): db is down"


async def test_command_probe_reports_missing_stdout_text() -> None:
    sample = await command.take_sample(CommandProbe(run="echo starting", stdout_contains="ready"))

    assert not sample.ok
    assert sample.problem == "stdout does not contain 'ready'"


async def test_command_probe_times_out_and_kills_its_process_group(tmp_path: Path, eventually: Eventually) -> None:
    pidfile = tmp_path / "child.pid"
    spec = CommandProbe.model_validate({"run": f"sleep 30 & echo $! > {pidfile}; wait", "timeout": "300ms"})

    sample = await command.take_sample(spec)

    assert not sample.ok
    assert sample.problem == "timed out after 300ms"
    child = int(pidfile.read_text())
    await eventually(lambda: not _running(child))


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting for its reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


async def test_a_command_probe_cannot_read_the_worker_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GAMEDAY_SLACK_TOKEN", "xoxb-not-for-drills")
    monkeypatch.delenv("GAMEDAY_DRILL_SECRETS", raising=False)

    sample = await command.take_sample(CommandProbe(run='test -z "$GAMEDAY_SLACK_TOKEN" && test -n "$PATH"'))

    assert sample.ok, sample.problem
