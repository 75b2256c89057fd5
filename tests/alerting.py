"""A real Prometheus and Alertmanager on free loopback ports, for tests of ``observe.expect.alerts`` (issue 15).

``alerting(workdir, scrape=[...], rules=...)`` starts Alertmanager (Debian ``prometheus-alertmanager``: one
receiver that sends nowhere, ``group_wait: 0s``) and Prometheus (Debian ``prometheus``: scraping the given
``host:port`` targets and evaluating ``rules``, a rule file's YAML, every ``interval``; alerting to that
Alertmanager), waits until both answer and Prometheus has scraped every target once, and stops both at the end.
Reusable with any service exposing ``/metrics`` (the demo system's too). Without the binaries a test using it fails
in CI and skips elsewhere (``tests.conftest.require``).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.conftest import require

START_WITHIN = 30.0
"""Seconds each server may take to answer (and Prometheus to scrape every target once)."""


@dataclass(frozen=True)
class Alerting:
    prometheus: str
    """``http://127.0.0.1:PORT`` of Prometheus."""
    alertmanager: str
    """``http://127.0.0.1:PORT`` of Alertmanager."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def binaries() -> tuple[str, str]:
    """``(prometheus, alertmanager)``; fails in CI, skips elsewhere, when one is missing."""
    prometheus = shutil.which("prometheus")
    alertmanager = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    require(prometheus, "the 'prometheus' binary (apt-get install prometheus)")
    require(alertmanager, "the 'prometheus-alertmanager' binary (apt-get install prometheus-alertmanager)")
    assert prometheus is not None and alertmanager is not None
    return prometheus, alertmanager


@contextmanager
def alerting(workdir: Path, *, scrape: list[str], rules: str, interval: str = "200ms") -> Iterator[Alerting]:
    """Alertmanager and Prometheus, running until the block ends (see the module's docstring)."""
    prometheus, alertmanager = binaries()
    am_port, prom_port = free_port(), free_port()
    am_config = workdir / "alertmanager.yml"
    am_config.write_text(
        "route: {receiver: nowhere, group_wait: 0s, group_interval: 1s, repeat_interval: 1h}\n"
        "receivers: [{name: nowhere}]\n"
    )
    (workdir / "rules.yml").write_text(rules)
    prom_config = workdir / "prometheus.yml"
    targets = ", ".join(f"'{target}'" for target in scrape)
    prom_config.write_text(
        f"global: {{scrape_interval: {interval}, evaluation_interval: {interval}}}\n"
        f"rule_files: ['{workdir / 'rules.yml'}']\n"
        f"alerting: {{alertmanagers: [{{static_configs: [{{targets: ['127.0.0.1:{am_port}']}}]}}]}}\n"
        f"scrape_configs: [{{job_name: service, static_configs: [{{targets: [{targets}]}}]}}]\n"
    )
    am_url, prom_url = f"http://127.0.0.1:{am_port}", f"http://127.0.0.1:{prom_port}"
    with ExitStack() as stack:
        am = stack.enter_context(
            _process(
                [
                    alertmanager,
                    f"--config.file={am_config}",
                    f"--storage.path={workdir / 'am-data'}",
                    f"--web.listen-address=127.0.0.1:{am_port}",
                    "--cluster.listen-address=",  # no gossip port: one instance, loopback only
                ],
                workdir / "alertmanager.log",
            )
        )
        prom = stack.enter_context(
            _process(
                [
                    prometheus,
                    f"--config.file={prom_config}",
                    f"--storage.tsdb.path={workdir / 'prom-data'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                    "--rules.alert.resend-delay=1s",  # firing alerts re-sent every second, not every minute
                ],
                workdir / "prometheus.log",
            )
        )
        _wait(lambda: httpx.get(f"{am_url}/-/ready", timeout=1).status_code == 200, am, "alertmanager ready")
        _wait(lambda: _scraped(prom_url, len(scrape)), prom, "prometheus scraping every target")
        _wait(lambda: _notifying(prom_url), prom, "prometheus sending alerts to alertmanager")
        yield Alerting(prometheus=prom_url, alertmanager=am_url)


def _scraped(url: str, count: int) -> bool:
    answer = httpx.get(f"{url}/api/v1/query", params={"query": "up == 1"}, timeout=1)
    return answer.status_code == 200 and len(answer.json()["data"]["result"]) >= count


def _notifying(url: str) -> bool:
    answer = httpx.get(f"{url}/api/v1/alertmanagers", timeout=1)
    return answer.status_code == 200 and bool(answer.json()["data"]["activeAlertmanagers"])


@contextmanager
def _process(argv: list[str], log_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    with log_path.open("w") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
        try:
            yield process, log_path
        finally:
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait(ready: object, started: tuple[subprocess.Popen[bytes], Path], what: str) -> None:
    process, log = started
    deadline = time.monotonic() + START_WITHIN
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"{what}: the process exited: {log.read_text()[-2000:]}")
        try:
            if callable(ready) and ready():
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {START_WITHIN:g}s: {log.read_text()[-2000:]}")
