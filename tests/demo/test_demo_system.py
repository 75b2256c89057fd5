"""The bundled demo system with real processes on loopback: breaker and cache, clean stop, drill, restart."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
import yaml

from gameday.demo.system import DemoError, DemoSystem, free_port, get_json, is_running
from gameday.model.drill import Drill
from tests.conftest import require

pytestmark = pytest.mark.integration

T = TypeVar("T")
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
JSON = {"Content-Type": "application/json"}


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


def summary(health: dict[str, object]) -> tuple[object, ...]:
    """What /health says about the service's state: status, degraded, level, breaker state, source."""
    breaker = health["breaker"]
    assert isinstance(breaker, dict)
    return health["status"], health["degraded"], health["level"], breaker["state"], health["source"]


def test_started_system_is_healthy_and_serves_live_products(system: DemoSystem) -> None:
    health = system.health()
    assert summary(health) == ("ok", False, "optimal", "CLOSED", "live")
    assert health["breaker"] == {
        "state": "CLOSED",
        "failures": 0,
        "failures_to_open": 2,
        "cooldown_s": 1.0,
        "successes_to_close": 2,
        "half_open_successes": 0,
    }
    assert health["dependency"] == {"name": "inventory", "up": True, "error": ""}
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
        assert summary(health)[:3] == ("degraded", True, "degraded")
        assert summary(health)[3:] in (("OPEN", "cache"), ("HALF_OPEN", "cache"))
        assert health["dependency"]["up"] is False  # type: ignore[index]
    finally:
        os.kill(inventory_pid, signal.SIGCONT)

    # No /products traffic here: the health check's own half-open trials close the breaker.
    wait_for(lambda: system.health()["status"] == "ok", what="/health to return to ok")
    assert summary(system.health()) == ("ok", False, "optimal", "CLOSED", "live")
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


def collapsed(values: list[str]) -> list[str]:
    return [v for i, v in enumerate(values) if i == 0 or values[i - 1] != v]


def test_the_breaker_goes_closed_open_half_open_closed_around_a_stall(system: DemoSystem) -> None:
    inventory_pid = system.inventory_pid()
    assert inventory_pid is not None
    states: list[str] = []

    def state() -> str:
        get_json(f"{system.api_url}/checkout")  # traffic: each answer is live or from the cache, never an error
        states.append(str(system.health()["breaker"]["state"]))  # type: ignore[index]
        return states[-1]

    os.kill(inventory_pid, signal.SIGSTOP)
    try:
        wait_for(lambda: state() == "OPEN", what="the breaker to open")
    finally:
        os.kill(inventory_pid, signal.SIGCONT)
    wait_for(lambda: state() == "CLOSED", what="the breaker to close again")

    # HALF_OPEN lasts at least one trial interval (0.5 s) after the stall: a poller sees it.
    seen = collapsed(states)
    assert seen[0] in ("CLOSED", "OPEN") and seen[-2:] == ["HALF_OPEN", "CLOSED"], seen
    assert "OPEN" in seen[: seen.index("HALF_OPEN")], seen


def test_an_order_written_during_a_stall_waits_for_the_inventory_and_is_stored_once(system: DemoSystem) -> None:
    inventory_pid = system.inventory_pid()
    assert inventory_pid is not None
    answers: list[int] = []

    def put(order_id: str) -> None:
        request = urllib.request.Request(
            f"{system.api_url}/orders/{order_id}", data=b'{"qty": 1}', method="PUT", headers=JSON
        )
        with OPENER.open(request, timeout=30) as response:
            answers.append(response.status)

    assert get_json(f"{system.api_url}/orders/o-1")[0] == 404
    os.kill(inventory_pid, signal.SIGSTOP)
    try:
        writer = threading.Thread(target=put, args=("o-1",))
        writer.start()
        wait_for(lambda: system.health()["dependency"]["up"] is False, what="the stall to be seen")  # type: ignore[index]
        assert answers == [] and writer.is_alive(), "a write is not acknowledged while its dependency stalls"
    finally:
        os.kill(inventory_pid, signal.SIGCONT)
    writer.join(timeout=30)
    assert answers == [201]
    status, order = get_json(f"{system.api_url}/orders/o-1")
    assert (status, order["id"], order["copies"], order["order"]) == (200, "o-1", 1, {"qty": 1})
    put("o-1")  # a second write of the same id is stored again, visibly
    assert answers == [201, 200]
    assert get_json(f"{system.api_url}/orders/o-1")[1]["copies"] == 2

    # Durable: a new shop API on the same directory reads the committed orders from the SQLite file.
    system.stop()
    with DemoSystem(system.workdir) as again:
        assert get_json(f"{again.api_url}/orders/o-1")[1]["copies"] == 2


def test_a_write_whose_dependency_never_answers_is_refused_and_not_stored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GAMEDAY_DEMO_ORDER_WAIT", "0.3")  # the services read their figures from the environment
    monkeypatch.setenv("GAMEDAY_DEMO_BREAKER_FAILURES", "5")
    with DemoSystem(tmp_path / "demo") as system:
        assert system.health()["breaker"]["failures_to_open"] == 5  # type: ignore[index]
        inventory_pid = system.inventory_pid()
        assert inventory_pid is not None
        os.kill(inventory_pid, signal.SIGSTOP)
        try:
            request = urllib.request.Request(f"{system.api_url}/orders/lost", data=b"{}", method="PUT", headers=JSON)
            with pytest.raises(urllib.error.HTTPError) as refused:
                OPENER.open(request, timeout=30)
        finally:
            os.kill(inventory_pid, signal.SIGCONT)
        assert refused.value.code == 503
        assert get_json(f"{system.api_url}/orders/lost")[0] == 404


def test_metrics_are_valid_prometheus_exposition_and_follow_the_dependency(system: DemoSystem) -> None:
    require(shutil.which("promtool"), "promtool (Debian prometheus)")
    get_json(f"{system.api_url}/checkout")
    get_json(f"{system.api_url}/nowhere")

    def metrics() -> str:
        with OPENER.open(f"{system.api_url}/metrics", timeout=5) as response:
            assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            return str(response.read().decode())

    text = metrics()
    checked = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), capture_output=True, timeout=30)
    assert checked.returncode == 0, checked.stdout.decode() + checked.stderr.decode()
    assert 'shop_http_requests_total{method="GET",path="/checkout",status="200"} 1' in text
    assert 'shop_http_requests_total{method="GET",path="other",status="404"} 1' in text
    assert 'shop_http_request_duration_seconds_bucket{path="/checkout",le="+Inf"} 1' in text
    assert "shop_dependency_up 1\n" in text and "shop_breaker_state 0\n" in text

    inventory_pid = system.inventory_pid()
    assert inventory_pid is not None
    os.kill(inventory_pid, signal.SIGSTOP)
    try:
        wait_for(lambda: get_json(f"{system.api_url}/checkout") and "shop_breaker_state 1\n" in metrics(), what="open")
        assert "shop_dependency_up 0\n" in metrics()
    finally:
        os.kill(inventory_pid, signal.SIGCONT)
    wait_for(lambda: "shop_dependency_up 1\n" in metrics(), what="the dependency up again")


def test_an_order_that_is_not_a_json_object_or_too_large_is_refused_and_not_stored(system: DemoSystem) -> None:
    for body, code in ((b"[1, 2]", 400), (b"not json", 400), (b"{" + b" " * 70_000 + b"}", 413)):
        request = urllib.request.Request(f"{system.api_url}/orders/bad", data=body, method="PUT", headers=JSON)
        with pytest.raises(urllib.error.HTTPError) as refused:
            OPENER.open(request, timeout=10)
        assert refused.value.code == code
    assert get_json(f"{system.api_url}/orders/bad")[0] == 404


def test_a_write_the_database_cannot_take_is_answered_503_and_not_acknowledged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Another process holds the orders file's write lock ("database is locked"): the write must be refused with
    # an answer a client counts as not stored, not a dropped connection nor a 2xx.
    monkeypatch.setenv("GAMEDAY_DEMO_ORDER_WAIT", "0.3")
    with DemoSystem(tmp_path / "demo") as system:
        get_json(f"{system.api_url}/orders/none")  # the file exists
        holder = sqlite3.connect(str(system.orders_db), isolation_level=None)
        try:
            holder.execute("BEGIN EXCLUSIVE")
            request = urllib.request.Request(f"{system.api_url}/orders/held", data=b"{}", method="PUT", headers=JSON)
            with pytest.raises(urllib.error.HTTPError) as refused:
                OPENER.open(request, timeout=30)
            assert refused.value.code == 503
        finally:
            holder.close()
        assert get_json(f"{system.api_url}/orders/held")[0] == 404
