"""Stop from the console (issue 18): a click on its Stop button → the SIGSTOPped target running again, beside
``gameday stop`` from the CLI in the same run (target for the button: p95 < 250 ms).

What runs: the embedded dev server (free ports), one ``gameday worker`` subprocess, a loopback HTTP service in
its own process (the target, as in ``bench/stop_latency.py``), and ``gameday console`` as a subprocess with
stop enabled for one user. Debian's headless Chromium (``/usr/bin/chromium``, driven by Playwright) is signed in
once. Each drill pauses the service (``process`` target, ``pause``: SIGSTOP) and observes it; once it is stopped
and the drill reports ``observe``, after a random 0.2-1.2 s, it is stopped, alternating between:

* (a) the console: the browser is on the run's stop page with its reason typed; the clock starts at the click on
  "Stop now" (the form's POST, the console's signal, the worker's revert);
* (b) ``gameday stop RUN_ID --reason ...`` launched as a subprocess (Python start-up and imports included).

Measured: the time until the service is seen running again (``/proc`` state polled every 1 ms). Each drill must
end ``ABORTED`` and its record say "bench via console" for (a).

    .venv/bin/python bench/console_stop.py [--runs 30]     # --runs: of each of (a) and (b)
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
from _drills import Lab, Service, pause_drill, stop_bench_main, wait_observing, wait_running_again
from stop_latency import launch_stop

from gameday.model.records import Verdict
from gameday.worker.devserver import free_port

TARGET = 0.250


def serve_console(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """``gameday console`` on a free port, once it answers; its base URL."""
    port = free_port()
    console = subprocess.Popen(
        [str(Path(sys.executable).parent / "gameday"), "console", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(f"{base}/static/console.css", timeout=1)
            return console, base
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                console.kill()
                raise
            time.sleep(0.1)


async def measure(workdir: Path, runs: int) -> tuple[list[float], list[float], dict[str, int]]:
    from playwright.async_api import async_playwright

    chromium = shutil.which("chromium")
    if chromium is None:
        raise RuntimeError("Debian's chromium is needed (apt-get install chromium)")
    service = Service.start(workdir, "target")
    lab = Lab(workdir)
    console: subprocess.Popen[bytes] | None = None
    button: list[float] = []
    command: list[float] = []
    verdicts: dict[str, int] = {}
    try:
        await lab.start()
        queue, database, log = "bench-console", workdir / "results.db", workdir / "worker.log"
        worker = lab.start_worker(queue, database, log)
        await lab.wait_polling(log, worker)
        env = {**lab.env(queue, database), "GAMEDAY_CONSOLE_USERS": "bench:bench", "GAMEDAY_CONSOLE_ACTIONS": "stop"}
        console, base = await asyncio.to_thread(serve_console, env)
        drill = pause_drill("bench-stop", service)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
            page = await browser.new_page()
            await page.goto(f"{base}/login")
            await page.fill("#user", "bench")
            await page.fill("#password", "bench")
            await page.click("#sign-in")
            for n in range(2 * runs + 1):  # drill 0 warms everything up and is not counted
                handle = await lab.start_drill(queue, drill, "bench-console")
                by_console = n % 2 == 1
                if by_console:
                    await page.goto(f"{base}/runs/{handle.id}/stop")
                    await page.fill("#reason", "bench: console stop latency")
                await wait_observing(handle, service.pid)
                await asyncio.sleep(random.uniform(0.2, 1.2))
                started = time.monotonic()
                if by_console:
                    await page.click("#confirm-stop", no_wait_after=True)
                else:
                    cli = launch_stop(handle.id, lab.env(queue, database))
                running = await wait_running_again(handle.id, service.pid)
                if not by_console:
                    _, err = await asyncio.to_thread(cli.communicate, timeout=60)
                    if cli.returncode != 0:
                        raise RuntimeError(f"gameday stop exited {cli.returncode}: {err.decode()}")
                record = await asyncio.wait_for(handle.result(), 120)
                if by_console and (record.stop is None or record.stop.by != "bench via console"):
                    raise RuntimeError(f"{handle.id}: stopped by {record.stop and record.stop.by!r}")
                if n == 0:
                    continue
                verdict = record.verdict.value if record.verdict else "none"
                verdicts[verdict] = verdicts.get(verdict, 0) + 1
                if record.verdict != Verdict.ABORTED:
                    print(f"  {handle.id}: verdict {verdict}: {record.summary}", file=sys.stderr)
                (button if by_console else command).append(running - started)
                label = "console" if by_console else "command"
                print(f"  drill {n:>2} {label}: {(running - started) * 1000:7.1f} ms")
            await browser.close()
    finally:
        if console is not None:
            console.terminate()
            console.wait(timeout=10)
        lab.close()
        service.stop()
    return button, command, verdicts


def main() -> int:
    return stop_bench_main(
        "console_stop",
        __doc__,
        measure,
        "stop from the console: click",
        "gameday, embedded dev server, one worker, console",
        ("(a) console Stop button clicked (Chromium)", "(b) `gameday stop RUN_ID --reason` launched"),
        TARGET,
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
