"""The dry-run plan describes every action of every target kind, with its revert, and the guardrails."""

from __future__ import annotations

from gameday.model.drill import ACTIONS_BY_KIND
from gameday.model.plan import plan_lines
from tests.harness import drill_from_yaml

EVERY_ACTION = """
name: every-action
targets:
  proc: {process: {pidfile: /run/p.pid, restart: "start-p"}}
  sh: {command: {}}
  api: {http: {base_url: "http://127.0.0.1:9"}}
  box: {docker: {container: shop-db}}
  fleet: {docker: {labels: {app: shop}, count: 2, seed: 7}}
  link: {proxy: {listen: "127.0.0.1:15432", upstream: "127.0.0.1:5432"}}
  conf: {file: {path: /srv/app.conf}}
  node: {host: {}}
  exp: {chaostoolkit: {experiment: flag flip}}
hypothesis:
  - {name: up, tcp: {port: 9}}
faults:
  - {target: proc, action: pause}
  - {target: proc, action: kill, signal: SIGTERM}
  - {target: sh, action: run, run: "touch f", revert: "rm -f f"}
  - target: api
    action: call
    request: {method: PUT, path: /flags/x}
    revert: {method: DELETE, path: /flags/x}
  - {target: box, action: pause}
  - {target: box, action: kill}
  - {target: box, action: stop, timeout: 5s}
  - {target: fleet, action: restart}
  - {target: fleet, action: disconnect, network: backend}
  - {target: fleet, action: limit_cpu, cpus: 0.5}
  - {target: fleet, action: limit_memory, memory: 64m}
  - {target: box, action: exec, run: "touch /tmp/x", revert: "rm -f /tmp/x"}
  - {target: link, action: latency, latency: 200ms, jitter: 20ms}
  - {target: link, action: bandwidth, rate: 100, stream: upstream}
  - {target: link, action: reset}
  - {target: link, action: blackhole}
  - {target: link, action: slice, average_size: 10}
  - {target: link, action: close_after, bytes: 1000, toxicity: 50%}
  - {target: conf, action: remove}
  - {target: conf, action: corrupt, offset: 4, bytes: 2}
  - {target: conf, action: fill, size: 1m}
  - {target: node, action: cpu, cores: 1.5, load: 50%}
  - {target: node, action: memory, size: 25%}
  - {target: node, action: disk_fill, path: /var/tmp, leave_free: 1GiB}
  - {target: node, action: connections, address: "127.0.0.1:5432", count: 20, postgres_user: app}
  - {target: node, action: io, path: /var/tmp, rate: 50MiB/s}
  - target: exp
    action: method
    method: [{type: action, name: flip, provider: {type: process, path: "true"}}]
    rollbacks: [{type: action, name: flip-back, provider: {type: process, path: "true"}}]
observe:
  duration: 10s
  guardrails:
    - {name: down, probe: up, failing: 3, error_rate: 50%}
    - {name: button, stop_when: {command: {run: "test -e /tmp/stop"}}}
"""


def test_the_plan_has_a_line_and_a_revert_for_every_action_of_every_kind() -> None:
    drill = drill_from_yaml(EVERY_ACTION)
    covered = {(drill.targets[f.target].kind, f.action) for f in drill.faults}
    assert covered == {(kind, action) for kind, actions in ACTIONS_BY_KIND.items() for action in actions}
    text = "\n".join(plan_lines(drill))
    assert text.count("     revert: ") == len(drill.faults)
    for expected in (
        "docker pause the container(s)",
        "docker: 2 of the running containers labelled app=shop (and gameday.target=true)",
        "limit memory to 64 MiB",
        "add toxic latency (latency 200ms, jitter 20ms) downstream",
        "add toxic close_after (bytes 1000) downstream, 50% of connections",
        "guardrail down: probe up: 3 failures in a row or error rate > 50% (window 10)",
        "guardrail button: stop when its own probe succeeds",
        "proxies are held by one worker from preflight until after verify",
        "conf: file /srv/app.conf",
        "invert 2 byte(s) from offset 4",
        "append 1048576 zero byte(s)",
        "burn 1.5 core(s) at 50% in a load process group",
        "allocate and touch 25% of memory",
        "write one file in /var/tmp (until 1GiB is free; refused outside the worker's GAMEDAY_HOST_FILL_ROOTS)",
        "open and hold 20 TCP connection(s) to 127.0.0.1:5432 sending a PostgreSQL startup packet",
        "write 50MiB/s (synced) to one 64MiB file in /var/tmp",
        "remove exactly that file (named by run and fault)",
        "play the method: action 'flip'",
        "run the rollbacks: 'flip-back'",
    ):
        assert expected in text, expected
