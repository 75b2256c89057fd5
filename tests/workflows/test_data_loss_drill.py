"""No data loss, end to end on a real dev server: the traffic's writes (``{{id}}``) against a loopback order store
written here, read back after recovery. Every acknowledged write found holds ``data_loss: 0``; writes the store
acknowledged without keeping are lost, exactly as many; writes it kept twice are duplicated (``copies``)."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from temporalio.client import Client

from gameday.activities.store import Store
from gameday.model.records import StopRequest, Verdict
from gameday.report.junit import drill_cases
from gameday.report.run import render_json
from tests.harness import eventually, finish, running_worker, start_drill

pytestmark = pytest.mark.integration


class OrderStore(ThreadingHTTPServer):
    """PUT /orders/<id> stores (201), GET /orders/<id> answers 200 ``{"copies": n}`` or 404; POST
    /control/drop/<n> acknowledges the next n writes without keeping them, /control/twice/<n> keeps them twice,
    /control/ok ends both."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.orders: dict[str, int] = {}
        self.drop = self.twice = self.dropped = self.doubled = 0
        self.lock = threading.Lock()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: OrderStore
    protocol_version = "HTTP/1.1"

    def do_PUT(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        ident = self.path.rsplit("/", 1)[1]
        store = self.server
        with store.lock:
            if store.drop:
                store.drop, store.dropped = store.drop - 1, store.dropped + 1
            else:
                copies = 2 if store.twice else 1
                if store.twice:
                    store.twice, store.doubled = store.twice - 1, store.doubled + 1
                store.orders[ident] = store.orders.get(ident, 0) + copies
        self._answer(201, b"{}")

    def do_GET(self) -> None:
        ident = self.path.rsplit("/", 1)[1]
        if self.path.startswith("/slow/"):  # a read-back that takes its time: the orders, 5 s each
            time.sleep(5)
            self.path = f"/orders/{ident}"
        copies = self.server.orders.get(ident) if self.path.startswith("/orders/") else 1
        self._answer(404, b"{}") if copies is None else self._answer(200, json.dumps({"copies": copies}).encode())

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        store = self.server
        with store.lock:
            if match := re.fullmatch(r"/control/(drop|twice)/(\d+)", self.path):
                setattr(store, match.group(1), int(match.group(2)))
            else:
                store.drop = store.twice = 0
        self._answer(200, b"{}")

    def _answer(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def orders() -> Iterator[OrderStore]:
    server = OrderStore()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def _drill(name: str, orders: OrderStore, during: str) -> str:
    return f"""
name: {name}
targets:
  shop: {{http: {{base_url: "{orders.url}"}}}}
hypothesis:
  - {{name: up, mode: edge, http: {{url: "{orders.url}/health", timeout: 500ms}}}}
faults:
  - {{name: writes, target: shop, action: call, request: {{path: "{during}"}}, revert: {{path: /control/ok}}}}
observe:
  duration: 1s
  traffic:
    rate: 50/s
    baseline: 500ms
    endpoints:
      - {{url: "{orders.url}/health"}}
      - {{url: "{orders.url}/orders/{{{{id}}}}", method: PUT, json: {{qty: 1}}}}
    read_back: {{url: "{orders.url}/orders/{{{{id}}}}", status: 200, copies: copies, concurrency: 8}}
  expect:
    data_loss: 0
recovery: {{within: 10s, interval: 100ms}}
"""


async def test_every_acknowledged_write_read_back_holds_data_loss_zero(
    client: Client, orders: OrderStore, tmp_path: Path
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    async with running_worker(client, store) as queue:
        record = await finish(
            await start_drill(client, queue, _drill("orders-kept", orders, "/control/ok")), "data_loss"
        )

    assert record.verdict == Verdict.RESILIENT, record.summary
    loss = record.data_loss
    assert loss is not None
    assert loss.acknowledged == len(orders.orders) > 50  # every write stored, every one acknowledged
    assert (loss.checked, loss.lost, loss.duplicated, loss.sampled) == (loss.acknowledged, 0, 0, False)
    [judged] = [e for e in record.expectations if e.name == "data_loss"]
    assert judged.held is True
    assert record.traffic is not None and record.traffic.ids is None  # the ranges were the read-back's input only
    stored = store.get(record.run_id)
    assert stored is not None and stored.data_loss == loss
    assert stored.expectations == record.expectations  # so `report -f junit` from SQL has the data_loss line
    assert [c.outcome for c in drill_cases(stored) if c.name == "expect: data loss"] == ["passed"]
    shown = json.loads(render_json(record))["data_loss"]
    assert {"acknowledged", "lost", "duplicated"} <= set(shown)


async def test_planted_losses_are_counted_exactly_and_deviate_and_duplicates_are_counted(
    client: Client, orders: OrderStore, tmp_path: Path
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    orders.twice = 3  # before the drill: the first three writes are kept twice
    async with running_worker(client, store) as queue:
        drill = _drill("orders-dropped", orders, "/control/drop/7")
        record = await finish(await start_drill(client, queue, drill), "data_loss_deviated")

    assert record.verdict == Verdict.DEVIATED, record.summary
    assert "data loss" in record.summary
    loss = record.data_loss
    assert loss is not None
    assert orders.dropped == 7 and orders.doubled == 3
    assert (loss.lost, loss.duplicated) == (7, 3)
    assert loss.acknowledged == len(orders.orders) + 7
    assert len(loss.lost_ids) == 7 and all(str(i) not in orders.orders for i in loss.lost_ids)
    [judged] = [e for e in record.expectations if e.name == "data_loss"]
    assert judged.held is False and "lost 7" in judged.actual and "duplicated 3" in judged.actual


async def test_a_stop_during_the_read_back_ends_it_and_the_line_says_not_read_back(
    client: Client, orders: OrderStore, tmp_path: Path
) -> None:
    # A read-back of many ids may take hours within its budget: the faults are reverted by then, but a person's
    # stop must still end the run, and data_loss must not claim a check that did not finish.
    store = Store(f"sqlite:///{tmp_path / 'results.db'}")
    drill = _drill("orders-stopped", orders, "/control/ok").replace('/orders/{{id}}", status', '/slow/{{id}}", status')
    drill = drill.replace("concurrency: 8}", "concurrency: 1, timeout: 10s}")
    async with running_worker(client, store) as queue:
        handle = await start_drill(client, queue, drill)

        async def reading_back() -> bool:
            pending = (await handle.describe()).raw_description.pending_activities
            return any(a.activity_type.name == "read_back" for a in pending)

        await eventually(reading_back, what="the read-back started", within=30)
        await handle.signal("emergency_stop", StopRequest(reason="enough", by="pytest"))
        record = await finish(handle, "data_loss_stopped", within=30)

    [judged] = [e for e in record.expectations if e.name == "data_loss"]
    assert judged.held is None and "stopped during the read-back" in judged.actual, judged
    assert record.data_loss is None
