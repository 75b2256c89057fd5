"""The bundled demo system with real processes on loopback: breaker and cache, clean stop, drill, restart."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
import yaml

from gameday.demo.system import DemoError, DemoSystem, free_port, get_json, is_running
from gameday.model.drill import Drill

pytestmark = pytest.mark.integration

T = TypeVar("T")


def wait_for(condition: Callable[[], T | None], *, what: str, timeout_s: float = 8.0) -> T:
    """Poll ``condition`` until it returns something truthy, and return that; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout_s:g}s waiting for {what}")
        time.sleep(0.05)


def inventory_answers(system: DemoSystem) -> bool:
    try:
        return get_json(f"{system.inventory_url}/health", timeout_s=0.5)[0] == 200
    except OSError:
        return False


@pytest.fixture
def system(tmp_path: Path) -> Iterator[DemoSystem]:
    with DemoSystem(tmp_path / "demo") as system:
        yield system


def test_started_system_is_healthy_and_serves_live_products(system: DemoSystem) -> None:
    assert system.health() == {"status": "ok", "level": 0, "breaker": "closed", "source": "live"}
    status, body = get_json(f"{system.api_url}/products")
    assert status == 200
    assert body["source"] == "live"
    assert isinstance(body["products"], list) and body["products"]
    assert system.inventory_pid() is not None
    assert inventory_answers(system)


def test_paused_inventory_is_bridged_by_cache_and_health_recovers_after_continue(system: DemoSystem) -> None:
    inventory_pid = system.inventory_pid()
    assert inventory_pid is not None
    requests = 0

    def degraded_after_cached_answer() -> dict[str, object] | None:
        nonlocal requests
        requests += 1
        status, body = get_json(f"{system.api_url}/products")
        assert status == 200, body  # every answer succeeds, even those that waited out the timeout
        assert body["source"] == "cache"
        health = system.health()
        return health if health["status"] == "degraded" else None

    os.kill(inventory_pid, signal.SIGSTOP)
    try:
        health = wait_for(degraded_after_cached_answer, what="/health to report degraded")
        assert requests <= 5, "the breaker should open after a few failed calls"
        assert health == {"status": "degraded", "level": 1, "breaker": "open", "source": "cache"}
    finally:
        os.kill(inventory_pid, signal.SIGCONT)

    # No /products traffic here: the health check's own half-open trial closes the breaker.
    wait_for(lambda: system.health()["status"] == "ok", what="/health to return to ok")
    assert system.health() == {"status": "ok", "level": 0, "breaker": "closed", "source": "live"}
    assert get_json(f"{system.api_url}/products")[1]["source"] == "live"


def test_stop_leaves_no_process_behind_even_with_inventory_paused(system: DemoSystem) -> None:
    inventory_pid, api_pid = system.inventory_pid(), system.api_pid
    assert inventory_pid is not None and api_pid is not None
    os.kill(inventory_pid, signal.SIGSTOP)

    system.stop()

    assert not is_running(inventory_pid)
    assert not is_running(api_pid)
    # The pidfiles are removed by the processes' own SIGTERM handling: the paused one was continued first.
    assert not system.inventory_pidfile.exists()
    assert not system.api_pidfile.exists()
    system.stop()  # idempotent


def test_restart_command_brings_a_killed_inventory_back(system: DemoSystem) -> None:
    old_pid = system.inventory_pid()
    assert old_pid is not None
    os.kill(old_pid, signal.SIGKILL)
    wait_for(lambda: not inventory_answers(system), what="the killed inventory to stop answering")

    subprocess.run(system.restart_inventory_command(), shell=True, check=True, timeout=10)

    wait_for(lambda: inventory_answers(system), what="the restarted inventory to answer")
    new_pid = wait_for(lambda: (pid := system.inventory_pid()) != old_pid and pid, what="a new pid in the pidfile")
    assert is_running(new_pid)
    wait_for(lambda: get_json(f"{system.api_url}/products")[1]["source"] == "live", what="live products again")

    system.stop()  # also stops the restarted inventory, which is not a child of ours
    assert not is_running(new_pid)


def test_rendered_drill_is_a_valid_drill_for_this_system(tmp_path: Path) -> None:
    system = DemoSystem(tmp_path / 'a dir with "quotes", a \\ and $dollar')
    text = system.render_drill()
    assert "${" not in text

    drill = Drill.model_validate(yaml.safe_load(text))

    assert drill.name == "demo-inventory-stall"
    assert drill.team == "demo"
    process = drill.targets["inventory"].process
    assert process is not None
    assert process.pidfile == str(system.inventory_pidfile)
    assert process.restart == system.restart_inventory_command()
    probe = drill.hypothesis[0]
    assert probe.http is not None and probe.http.url == f"{system.api_url}/products"
    assert [(f.target, f.action) for f in drill.faults] == [("inventory", "pause")]


def test_start_fails_with_a_clear_error_when_the_inventory_cannot_bind(tmp_path: Path) -> None:
    system = DemoSystem(tmp_path / "demo")
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", system.inventory_port))
        squatter.listen()
        with pytest.raises(DemoError, match=rf"port {system.inventory_port} \(the demo inventory\) is in use"):
            system.start()
    assert not system.inventory_pidfile.exists()


def test_a_port_someone_else_serves_is_refused_before_anything_starts(tmp_path: Path) -> None:
    # Another server answering /health on the port must not pass for the demo: the drill would freeze a stranger.
    api_port = free_port()
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("127.0.0.1", api_port))
        squatter.listen()
        system = DemoSystem(tmp_path / "demo", api_port=api_port)
        with pytest.raises(DemoError, match=rf"port {api_port} \(the demo shop API\) is in use"):
            system.start()
    assert system.api_url == f"http://127.0.0.1:{api_port}"
    assert list((tmp_path / "demo").glob("*.pid")) == []


def test_a_pidfile_directory_other_users_may_write_is_refused(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o777)
    with pytest.raises(DemoError, match="writable by every user"):
        DemoSystem(shared).start()


def test_a_new_pidfile_directory_is_created_private(tmp_path: Path) -> None:
    with DemoSystem(tmp_path / "new" / "demo") as system:
        assert system.workdir.stat().st_mode & 0o777 == 0o700


def test_the_services_stop_by_themselves_when_the_process_that_started_them_is_killed(tmp_path: Path) -> None:
    # A `gameday dev --demo` killed with SIGKILL must not leave the demo holding its ports.
    script = (
        "import sys, time; from gameday.demo.system import DemoSystem; s = DemoSystem(sys.argv[1]).start(); "
        "print(s.api_pidfile.read_text().strip(), s.inventory_pid(), flush=True); time.sleep(600)"
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path / "demo")], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL
    )
    try:
        assert parent.stdout is not None
        pids = [int(pid) for pid in parent.stdout.readline().split()]
        assert len(pids) == 2 and all(is_running(pid) for pid in pids)
    finally:
        parent.kill()
        parent.wait()
    wait_for(lambda: not any(is_running(pid) for pid in pids), what="the demo services to exit with their parent")
    assert list((tmp_path / "demo").glob("*.pid")) == []
