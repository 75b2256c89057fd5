"""Stop from a Slack button (issue 18): click → the SIGSTOPped target running again, beside ``gameday stop``.

What runs: the embedded dev server (free ports, a temporary database file), one ``gameday worker`` subprocess,
one ``gameday slack`` subprocess (the Socket Mode listener, as deployed), the fake Slack of the tests
(``tests/fakes/slack.py``: Web API and Socket Mode on loopback) in this process, and a loopback HTTP service in
its own process. Each drill pauses the service (``process`` target, action ``pause``: SIGSTOP) and observes it
for up to 2 minutes. Once it is stopped and the drill observes, after a random 0.2-1.2 s, the drill is stopped,
alternating between:

* (a) a **Stop drill** click by an allowed user: the fake Slack sends the ``block_actions`` envelope over the
  listener's websocket (clock starts before the send); the listener acks it, checks the allowlist, looks the
  user up (``users.info``, cached after the first click), describes the run and signals ``emergency_stop``;
* (b) ``gameday stop RUN_ID --reason ...`` launched as a subprocess (Python start-up and imports included).

Measured: the time until the service is seen running again (``/proc`` state read every 1 ms, in a thread so the
fake Slack keeps answering). Target (issue 18): p95 < 250 ms for (a). Each drill must end ``ABORTED``.

    .venv/bin/python bench/slack_stop_latency.py [--runs 30]   # --runs: of each
"""

from __future__ import annotations

import asyncio
import random
import subprocess
import sys
import time
from pathlib import Path

from _drills import (
    SCRIPTS,
    Lab,
    Service,
    pause_drill,
    stop_bench_main,
    wait_observing,
    wait_running_again,
)

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gameday.activities.notify.messages import STOP_ACTION  # noqa: E402
from gameday.model.records import Verdict  # noqa: E402
from tests.fakes.slack import FakeSlack, Posted  # noqa: E402

TARGET = 0.250
TOKEN = "xoxb-bench-bot-token"
USER = "U0BENCH"


def launch(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """``gameday ARGS`` in a process of its own, output appended to ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen([str(SCRIPTS / "gameday"), *args], env=env, stdout=out, stderr=out)


async def measure(workdir: Path, runs: int) -> tuple[list[float], list[float], dict[str, int]]:
    service = Service.start(workdir, "target")
    lab = Lab(workdir)
    fake = await FakeSlack(token=TOKEN, users={USER: "Bench"}).start()
    listener: subprocess.Popen[bytes] | None = None
    clicks: list[float] = []
    commands: list[float] = []
    verdicts: dict[str, int] = {}
    try:
        await lab.start()
        queue, database, log = "bench-slack-stop", workdir / "results.db", workdir / "worker.log"
        worker = lab.start_worker(queue, database, log)
        await lab.wait_polling(log, worker)
        env = {
            **lab.env(queue, database),
            "GAMEDAY_SLACK_APP_TOKEN": fake.app_token,
            "GAMEDAY_SLACK_TOKEN": TOKEN,
            "GAMEDAY_SLACK_API_URL": fake.api_url,
            "GAMEDAY_SLACK_ALLOWED_USERS": USER,
        }
        listener = launch(["slack"], env, workdir / "slack.log")
        await fake.connected(within=60)
        drill = pause_drill("bench-slack-stop", service)
        for n in range(2 * runs + 1):  # drill 0 warms the worker and the listener up and is not counted
            handle = await lab.start_drill(queue, drill, "bench-slack-stop")
            await wait_observing(handle, service.pid)
            await asyncio.sleep(random.uniform(0.2, 1.2))
            by_click = n % 2 == 0
            started = time.monotonic()
            if by_click:
                parent = Posted(channel="C0GAMEDAY", ts="1700000000.000001", text=handle.id, blocks=[])
                envelope = await fake.click(USER, STOP_ACTION, handle.id, parent)
            else:
                stop = ["stop", handle.id, "--reason", "bench: stop latency"]
                cli = launch(stop, lab.env(queue, database), workdir / "stop.log")
            running = await wait_running_again(handle.id, service.pid)
            if by_click:
                await fake.ack(envelope)
            else:
                await asyncio.to_thread(cli.wait, 60)
            record = await asyncio.wait_for(handle.result(), 120)
            verdict = record.verdict.value if record.verdict else "none"
            if n == 0:
                continue
            verdicts[verdict] = verdicts.get(verdict, 0) + 1
            if record.verdict != Verdict.ABORTED or record.stop is None:
                print(f"  {handle.id}: verdict {verdict}: {record.summary}", file=sys.stderr)
            (clicks if by_click else commands).append(running - started)
            print(f"  drill {n:>2} {'click  ' if by_click else 'command'}: {(running - started) * 1000:7.1f} ms")
    finally:
        if listener is not None and listener.poll() is None:
            listener.terminate()
            listener.wait(timeout=10)
        lab.close()
        await fake.stop()
        service.stop()
    return clicks, commands, verdicts


def main() -> int:
    return stop_bench_main(
        "slack_stop_latency",
        __doc__,
        measure,
        "stop from Slack: stop",
        "gameday, embedded dev server, worker and `gameday slack` subprocesses, fake Slack",
        ("(a) Stop drill click (block_actions envelope sent)", "(b) `gameday stop RUN_ID --reason` launched"),
        TARGET,
    )


if __name__ == "__main__":
    sys.exit(main())
