"""The worker policy: what this worker does for a drill, set by whoever runs the worker, never by the drill.

A drill file runs code on every worker that picks it up: command faults and probes, a process target's
``restart``, docker ``exec`` run as the worker's user; HTTP calls, probes and traffic go wherever the drill says.
Who may start drills on a namespace may therefore run code on its workers. A worker narrows that with a policy
file named by ``GAMEDAY_POLICY`` (YAML, every key optional; a key left out restricts nothing)::

    target_kinds: [http, docker, proxy]   # the target kinds it accepts
    actions: [call, pause, stop, latency]  # the fault actions it accepts
    commands: false                        # no shell commands from drills at all
    paths: [/run/shop]                     # pidfiles and command cwd must be under one of these
    hosts: [127.0.0.1, "*.staging.example.com", 10.20.0.0/16]   # where HTTP, TCP, traffic and proxies may go

Without ``GAMEDAY_POLICY`` a worker accepts every drill, as before, and says so once at start.

Where it is enforced: ``check_policy`` in preflight refuses the whole drill before any lock, proxy, probe or
fault (``PolicyRefused``, the rule and the drill field named); ``apply_fault``, every probe sample, the traffic
and the proxy check their own part again, so a drill that never ran this preflight (started before the policy was
set, or checked by a worker with a looser one) is still refused. Reverts are never refused: they undo what some
worker applied, and a fault must not stay.

The file is read when a check runs (cached until it changes): an edited policy applies to the next check. A file
that cannot be read or is invalid refuses everything, naming the file.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from pydantic import ValidationError, field_validator
from temporalio import activity
from temporalio.exceptions import ApplicationError

from gameday.activities import secrets
from gameday.model.base import Strict
from gameday.model.ctk_format import Activity as CtkActivity
from gameday.model.drill import ACTIONS_BY_KIND, Drill, ExecFault, Fault, Probe, Target, TargetKind
from gameday.model.errors import GamedayError
from gameday.model.kinds import registry
from gameday.model.kinds.chaostoolkit import MethodFault
from gameday.model.kinds.host import ConnectionsFault, DiskFillFault, IoFault
from gameday.model.kinds.probe_chaostoolkit import ChaosToolkitProbe
from gameday.model.records import DrillInput, FaultRecord, FaultState
from gameday.model.traffic import Traffic

POLICY_SETTING = "GAMEDAY_POLICY"
"""The worker setting naming its policy file."""
REFUSED = "PolicyRefused"
"""``ApplicationError`` type of a refusal: never retried."""
REFUSED_PREFIX = "refused by this worker's policy"
ALL_ACTIONS = frozenset().union(*ACTIONS_BY_KIND.values())


class PolicyError(GamedayError):
    """The worker's policy (or its secrets allowlist) cannot be used; the message is one line naming the setting."""


class PolicyRules(Strict):
    """The policy file's keys; ``None`` (left out) restricts nothing.

    Attributes:
        target_kinds: target kinds a drill may declare.
        actions: fault actions a drill may use.
        commands: whether a drill may run shell commands here (command targets and probes, ``stop_when``
            commands, a process target's ``restart``, docker ``exec``).
        paths: directories a pidfile and a command target's ``cwd`` must be under (symlinks resolved).
        hosts: where a drill's network traffic may go (HTTP targets, http/tcp/prometheus probes, ``stop_when``
            http, traffic, proxy upstreams): a host name or IP as written in the drill, ``*.example.com`` for its
            subdomains, or a network such as ``10.0.0.0/8`` for IP addresses. Names are matched as written, never
            resolved: list every spelling the drills use (``localhost`` is not ``127.0.0.1``).
    """

    target_kinds: list[TargetKind] | None = None
    actions: list[str] | None = None
    commands: bool = True
    paths: list[str] | None = None
    hosts: list[str] | None = None

    @field_validator("actions")
    @classmethod
    def _known_actions(cls, value: list[str] | None) -> list[str] | None:
        unknown = sorted(set(value or ()) - ALL_ACTIONS)
        if unknown:
            raise ValueError(f"unknown action(s) {', '.join(unknown)}; known: {', '.join(sorted(ALL_ACTIONS))}")
        return value

    @field_validator("paths")
    @classmethod
    def _absolute(cls, value: list[str] | None) -> list[str] | None:
        relative = [p for p in value or () if not os.path.isabs(p)]
        if relative:
            raise ValueError(f"paths must be absolute: {', '.join(relative)}")
        return value

    @field_validator("hosts")
    @classmethod
    def _host_rules(cls, value: list[str] | None) -> list[str] | None:
        for rule in value or ():
            if "/" in rule:
                try:
                    ipaddress.ip_network(rule, strict=False)
                except ValueError as err:
                    raise ValueError(f"{rule!r} is not a network: {err}") from None
            elif not rule.strip() or rule.strip("*.") == "":
                raise ValueError(f"{rule!r} is not a host")
        return value


@dataclass(frozen=True)
class Refusal:
    """One thing a drill asks that the policy refuses.

    Attributes:
        field: where in the drill file (``targets.api.process.pidfile``).
        message: what is refused, in words.
        rule: the policy rule that refuses it (``commands: false``).
    """

    field: str
    message: str
    rule: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message} (policy {self.rule})"


@dataclass(frozen=True)
class WorkerPolicy:
    """A worker's policy and where it came from.

    Attributes:
        rules: the rules (all unrestricted by default).
        source: the policy file; ``""`` when the worker has none (it then runs unrestricted).
        broken: why the file could not be used; when set, everything is refused.
    """

    rules: PolicyRules = field(default_factory=PolicyRules)
    source: str = ""
    broken: str = ""

    @property
    def unrestricted(self) -> bool:
        return not self.source

    def describe(self) -> str:
        """The worker's start line: what it accepts from drills, in one line."""
        allowlist = f"drills may send {secrets.ALLOWLIST_SETTING}: {secrets.Allowlist.from_env().describe()}"
        if self.unrestricted:
            return (
                f"worker runs unrestricted: no {POLICY_SETTING} is set, so every drill may run shell commands, "
                f"signal processes and reach any host with this worker's rights; {allowlist}"
            )
        r = self.rules

        def listed(values: list[str] | None) -> str:
            return "any" if values is None else ", ".join(values) or "none"

        kinds = None if r.target_kinds is None else [k.value for k in r.target_kinds]
        return (
            f"worker policy {self.source}: target kinds {listed(kinds)}; actions {listed(r.actions)}; "
            f"commands {'allowed' if r.commands else 'refused'}; paths {listed(r.paths)}; "
            f"hosts {listed(r.hosts)}; {allowlist}"
        )

    # --- what a drill asks, part by part --------------------------------------------------------------

    def drill_refusals(self, drill: Drill) -> list[Refusal]:
        """Everything in ``drill`` this worker refuses (empty: the drill may run here)."""
        found: list[Refusal] = []
        for name, target in drill.targets.items():
            found += self.target_refusals(name, target)
        for index, fault in enumerate(drill.faults):
            found += self.fault_refusals(index, fault)
        for index, probe in enumerate(drill.hypothesis):
            found += self.probe_refusals(f"hypothesis[{index}]", probe)
        for index, guard in enumerate(drill.observe.guardrails):
            if guard.stop_when is not None:
                stop = Probe(name=guard.name, http=guard.stop_when.http, command=guard.stop_when.command)
                found += self.probe_refusals(f"observe.guardrails[{index}].stop_when", stop)
        for index, probe in enumerate(drill.observe.watch):
            found += self.probe_refusals(f"observe.watch[{index}]", probe)
        alerts = drill.observe.expect.alerts if drill.observe.expect is not None else None
        if alerts is not None and self is not UNRESTRICTED:
            found += self._url_refusals("observe.expect.alerts.from", alerts.from_.url)
        if drill.observe.traffic is not None:
            found += self.traffic_refusals(drill.observe.traffic)
        found += _secret_refusals(drill)
        return self._or_broken(found)

    def target_refusals(self, name: str, target: Target) -> list[Refusal]:
        r, at = self.rules, f"targets.{name}"
        found: list[Refusal] = []
        if r.target_kinds is not None and target.kind not in r.target_kinds:
            found.append(Refusal(at, f"{target.kind.value} targets are not accepted", self._kinds_rule()))
        if target.command is not None:
            if not r.commands:
                found.append(Refusal(f"{at}.command", "a command target runs shell commands", "commands: false"))
            found += self._path_refusals(f"{at}.command.cwd", target.command.cwd or os.getcwd(), "cwd")
        if target.process is not None:
            if target.process.pidfile is not None:
                found += self._path_refusals(f"{at}.process.pidfile", target.process.pidfile, "pidfile")
            if target.process.restart and not r.commands:
                found.append(Refusal(f"{at}.process.restart", "restart runs a shell command", "commands: false"))
        if target.http is not None:
            found += self._url_refusals(f"{at}.http.base_url", target.http.base_url)
        if target.proxy is not None:
            found += self._host_refusals(f"{at}.proxy.upstream", _host_of(target.proxy.upstream))
        kind = registry.target_kind(target.kind.value)
        for key, path in [] if kind is None else kind.policy_paths(target.spec):
            found += self._path_refusals(f"{at}.{target.kind.value}.{key}", path, key)
        return self._or_broken(found)

    def fault_refusals(self, index: int, fault: Fault) -> list[Refusal]:
        r, at = self.rules, f"faults[{index}]"
        found: list[Refusal] = []
        if r.actions is not None and fault.action_name not in r.actions:
            rule = f"actions: [{', '.join(r.actions)}]"
            found.append(Refusal(f"{at}.action", f"action {fault.action_name!r} is not accepted", rule))
        if isinstance(fault, ExecFault) and not r.commands:
            found.append(Refusal(f"{at}.action", "exec runs shell commands in a container", "commands: false"))
        if isinstance(fault, ConnectionsFault):
            found += self._host_refusals(f"{at}.address", _host_of(fault.address))
        if isinstance(fault, DiskFillFault | IoFault):
            found += self._path_refusals(f"{at}.path", fault.path, "path")
        if isinstance(fault, MethodFault) and not r.commands and _runs_code([*fault.method, *fault.rollbacks]):
            found.append(Refusal(f"{at}.method", "a process or python provider runs code here", "commands: false"))
        if isinstance(fault, MethodFault):
            found += self._ctk_url_refusals(f"{at}.method", [*fault.method, *fault.rollbacks])
        return self._or_broken(found)

    def probe_refusals(self, at: str, probe: Probe) -> list[Refusal]:
        """What this worker refuses in one probe (``at`` names it in the drill)."""
        if self is UNRESTRICTED:
            return []  # every probe sample asks: answer at once when there is no policy
        found: list[Refusal] = []
        if probe.command is not None and not self.rules.commands:
            found.append(Refusal(f"{at}.command", "a command probe runs a shell command", "commands: false"))
        spec = probe.spec
        if isinstance(spec, ChaosToolkitProbe) and not self.rules.commands and _runs_code(spec.probes):
            refusal = Refusal(f"{at}.chaostoolkit", "a process or python provider runs code here", "commands: false")
            found.append(refusal)
        if isinstance(spec, ChaosToolkitProbe):
            found += self._ctk_url_refusals(f"{at}.chaostoolkit", spec.probes)
        if probe.http is not None:
            found += self._url_refusals(f"{at}.http.url", probe.http.url)
        if probe.tcp is not None:
            found += self._host_refusals(f"{at}.tcp.host", probe.tcp.host)
        if probe.prometheus is not None:
            found += self._url_refusals(f"{at}.prometheus.url", probe.prometheus.url)
        return self._or_broken(found)

    def traffic_refusals(self, traffic: Traffic) -> list[Refusal]:
        found: list[Refusal] = []
        if traffic.url is not None:
            found += self._url_refusals("observe.traffic.url", traffic.url)
        for index, endpoint in enumerate(traffic.endpoints):
            found += self._url_refusals(f"observe.traffic.endpoints[{index}].url", endpoint.url)
        if traffic.read_back is not None:
            found += self._url_refusals("observe.traffic.read_back.url", traffic.read_back.url)
        return self._or_broken(found)

    def url_refusals(self, at: str, url: str) -> list[Refusal]:
        """A request to ``url`` (the drill's field ``at``): refused when its host is not allowed."""
        return self._or_broken(self._url_refusals(at, url))

    # --- the rules ------------------------------------------------------------------------------------

    def _or_broken(self, found: list[Refusal]) -> list[Refusal]:
        if self.broken:
            return [Refusal("(the whole drill)", "this worker's policy cannot be used: " + self.broken, "file")]
        return found

    def _kinds_rule(self) -> str:
        return f"target_kinds: [{', '.join(k.value for k in self.rules.target_kinds or ())}]"

    def _path_refusals(self, at: str, path: str, what: str) -> list[Refusal]:
        roots = self.rules.paths
        if roots is None:
            return []
        real = os.path.realpath(path)
        if any(_under(real, os.path.realpath(root)) for root in roots):
            return []
        shown = path if real == path else f"{path} (resolves to {real})"
        return [Refusal(at, f"{what} {shown} is not under an allowed path", f"paths: [{', '.join(roots)}]")]

    def _ctk_url_refusals(self, at: str, activities: list[CtkActivity]) -> list[Refusal]:
        """The written URLs of Chaos Toolkit http providers (one with ``${...}`` is checked by the worker once
        substituted, each call): the first refused one."""
        for ctk in activities:
            url = ctk.provider.url
            written = ctk.provider.type == "http" and url is not None and "${" not in url
            if written and (found := self._url_refusals(at, str(url))):
                return found
        return []

    def _url_refusals(self, at: str, url: str) -> list[Refusal]:
        if self.rules.hosts is None:
            return []  # a probe sample checks this every time: skip parsing when nothing is restricted
        return self._host_refusals(at, urlsplit(url).hostname or "")

    def _host_refusals(self, at: str, host: str) -> list[Refusal]:
        allowed = self.rules.hosts
        if allowed is None or host_allowed(host, allowed):
            return []
        return [Refusal(at, f"host {host or '(none)'!r} is not allowed", f"hosts: [{', '.join(allowed)}]")]


UNRESTRICTED = WorkerPolicy()
"""The policy of a worker without ``GAMEDAY_POLICY``: every drill is accepted."""


def _runs_code(activities: list[CtkActivity]) -> bool:
    """Whether a Chaos Toolkit activity among these runs code on the worker (issue 16)."""
    return any(activity.provider.type in ("process", "python") for activity in activities)


def host_allowed(host: str, rules: list[str]) -> bool:
    """Whether ``host`` (a name or an IP, as written) matches one of the ``hosts`` rules."""
    host = host.strip("[]").rstrip(".").lower()
    if not host:
        return False
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        ip = None
    for rule in (r.strip().rstrip(".").lower() for r in rules):
        if "/" in rule:
            if ip is not None and ip in ipaddress.ip_network(rule, strict=False):
                return True
        elif rule.startswith("*."):
            if ip is None and host.endswith(rule[1:]):
                return True
        elif ip is not None:
            try:
                if ip == ipaddress.ip_address(rule.strip("[]")):
                    return True
            except ValueError:
                continue
        elif host == rule:
            return True
    return False


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _host_of(host_port: str) -> str:
    return host_port.rpartition(":")[0].strip("[]")


def _secret_refusals(drill: Drill) -> list[Refusal]:
    """Every ``${env:NAME}`` the drill references that this worker may not give out."""
    allowlist = secrets.Allowlist.from_env()
    found: list[Refusal] = []
    for at, text in _strings(drill.model_dump(mode="json", by_alias=True)):
        for name in secrets.references(text):
            if (why := allowlist.refusal(name)) is not None:
                found.append(Refusal(at, why, secrets.ALLOWLIST_SETTING))
    return found


def _strings(value: Any, at: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield at, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(item, f"{at}.{key}" if at else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{at}[{index}]")


# --- loading --------------------------------------------------------------------------------------------


def load(path: str) -> WorkerPolicy:
    """The policy in the YAML file at ``path``; ``path == ""`` is no policy (unrestricted).

    Raises:
        PolicyError: the file cannot be read, is not YAML, or has an unknown key or a bad value.
    """
    if not path:
        return UNRESTRICTED
    try:
        stat = os.stat(path)
    except OSError as err:
        raise PolicyError(f"policy file {path} ({POLICY_SETTING}): {err.strerror or err}") from None
    return _load(path, stat.st_mtime_ns, stat.st_size)


@lru_cache(maxsize=8)
def _load(path: str, mtime_ns: int, size: int) -> WorkerPolicy:
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as err:
        reason = err.strerror if isinstance(err, OSError) else str(err).splitlines()[0]
        raise PolicyError(f"policy file {path} ({POLICY_SETTING}): {reason}") from None
    if not isinstance(data, dict):
        raise PolicyError(f"policy file {path} ({POLICY_SETTING}): expected a mapping of rules")
    try:
        rules = PolicyRules.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        where = ".".join(map(str, first["loc"])) or "(top)"
        what = first["msg"]
        if first["type"] == "extra_forbidden" and first["loc"]:
            from gameday.model.loader_messages import unknown_key

            what = unknown_key(first["loc"][-1], PolicyRules.model_fields)
        raise PolicyError(f"policy file {path} ({POLICY_SETTING}): {where}: {what}") from None
    return WorkerPolicy(rules=rules, source=path)


def at_start(path: str) -> WorkerPolicy:
    """The policy a worker starts with, its secrets allowlist checked too.

    Raises:
        PolicyError: the policy file is unusable, or ``GAMEDAY_DRILL_SECRETS`` has entries that are not names.
    """
    policy = load(path)
    invalid = secrets.Allowlist.from_env().invalid
    if invalid:
        raise PolicyError(
            f"{secrets.ALLOWLIST_SETTING}: {', '.join(map(repr, invalid))} is not a variable name or a NAME_* prefix"
        )
    return policy


def current() -> WorkerPolicy:
    """This worker's policy now, from ``GAMEDAY_POLICY``; a broken file gives a policy that refuses everything."""
    path = os.environ.get(POLICY_SETTING, "").strip()
    try:
        return load(path)
    except PolicyError as err:
        return WorkerPolicy(source=path, broken=str(err))


def refused(refusals: list[Refusal], policy: WorkerPolicy) -> ApplicationError:
    """The non-retryable ``PolicyRefused`` error naming every refusal, for an activity to raise."""
    where = policy.source or "(none)"
    return ApplicationError(
        f"{REFUSED_PREFIX} ({POLICY_SETTING}={where}): " + "; ".join(map(str, refusals)),
        type=REFUSED,
        non_retryable=True,
    )


def refused_before_apply(record: FaultRecord) -> bool:
    """Whether a fault's apply was refused by a worker policy, so that nothing was applied.

    The workflow keeps the apply's error text on the record; a policy refusal is raised before the provider (and
    the ledger) are touched, so such a fault has nothing to revert.
    """
    label = f"{record.label}: "
    error = record.error[len(label) :] if record.error.startswith(label) else record.error
    return record.state == FaultState.FAILED and record.applied_at is None and error.startswith(REFUSED_PREFIX)


@activity.defn(name="check_policy")
async def check_policy(inp: DrillInput) -> str:
    """Preflight: may this worker run the whole drill? Returns a line for the preflight step.

    Raises:
        ApplicationError: ``PolicyRefused`` (non-retryable) naming each refused field and the rule.
    """
    policy = current()
    found = policy.drill_refusals(inp.drill)
    if found:
        raise refused(found, policy)
    return "no worker policy (unrestricted)" if policy.unrestricted else f"allowed by worker policy {policy.source}"
