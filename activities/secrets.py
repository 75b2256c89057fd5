"""Secrets by reference: a header value written ``${env:NAME}`` in a drill file is read from the worker's
environment when the request is sent, so the drill, its workflow input and history, the fault ledger in SQL and
the reports carry only the reference, never the token.

A worker gives out only the variables it is told it may: ``GAMEDAY_DRILL_SECRETS=FLAGS_TOKEN,API_KEY`` (names,
or prefixes written ``DRILL_*``). Without that setting nothing resolves. gameday's own settings (``GAMEDAY_*``,
``TEMPORAL_*``, database URLs and passwords, Slack tokens, webhook URLs) are never given out, even if listed: a
drill could otherwise send them to any URL it names.

Whatever a resolved value reaches (an answer that echoes the request's headers, an error), the caller scrubs it
with :meth:`Resolved.scrub` before the text leaves the activity for history, SQL, reports or the worker log.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from urllib.parse import quote

ALLOWLIST_SETTING = "GAMEDAY_DRILL_SECRETS"
"""The worker setting that lists the environment variables drills may reference."""
MASK = "[secret]"
"""What a scrubbed value is replaced with."""

_NAME = r"[A-Za-z_][A-Za-z0-9_]*"
_MARK = "${env:"
_REFERENCE = re.compile(r"\$\{env:(" + _NAME + r")\}")
_ENTRY = re.compile(r"^(" + _NAME + r")(\*?)$")
_NEVER = re.compile(r"^(GAMEDAY_|TEMPORAL_)|DATABASE_URL|SLACK|WEBHOOK|^PGPASSWORD$", re.IGNORECASE)
"""gameday's own settings and their kin: never given to a drill, whatever the allowlist says."""


class SecretMissing(LookupError):
    """A referenced variable is not given to drills by this worker (the message names it, never a value)."""


class SecretRefused(SecretMissing):
    """A referenced variable that this worker may not give out: not in its allowlist, or one of its own settings."""


@dataclass(frozen=True)
class Allowlist:
    """The variables a worker may give to drills (``GAMEDAY_DRILL_SECRETS``).

    Attributes:
        names: exact variable names.
        prefixes: ``DRILL_*`` entries, without the ``*``.
        invalid: entries that are neither (reported, never matched).
    """

    names: frozenset[str] = frozenset()
    prefixes: tuple[str, ...] = ()
    invalid: tuple[str, ...] = ()

    @classmethod
    def parse(cls, setting: str) -> Allowlist:
        """``FLAGS_TOKEN, API_KEY, DRILL_*`` as an allowlist; blanks between commas are ignored."""
        names: set[str] = set()
        prefixes: list[str] = []
        invalid: list[str] = []
        for entry in (part.strip() for part in setting.split(",")):
            if not entry:
                continue
            match = _ENTRY.match(entry)
            if match is None:
                invalid.append(entry)
            elif match.group(2):
                prefixes.append(match.group(1))
            else:
                names.add(match.group(1))
        return cls(frozenset(names), tuple(prefixes), tuple(invalid))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Allowlist:
        env = os.environ if env is None else env
        return cls.parse(env.get(ALLOWLIST_SETTING, ""))

    @property
    def empty(self) -> bool:
        return not self.names and not self.prefixes

    def describe(self) -> str:
        """``FLAGS_TOKEN, DRILL_*`` for the worker's start line, ``none`` when empty."""
        return ", ".join([*sorted(self.names), *(f"{p}*" for p in self.prefixes)]) or "none"

    def refusal(self, name: str) -> str | None:
        """Why ``name`` may not be given to a drill, or ``None`` when it may."""
        if _NEVER.search(name):
            return (
                f"environment variable {name} is one of gameday's own settings (or a database, Slack or webhook "
                "secret): a drill may never send it, even if listed"
            )
        if self.invalid:
            return (
                f"{ALLOWLIST_SETTING} has entries that are not variable names or NAME_* prefixes "
                f"({', '.join(map(repr, self.invalid))}): fix it on the worker"
            )
        if self.empty:
            return (
                f"environment variable {name} is not given to drills: this worker sets no {ALLOWLIST_SETTING} "
                f"(set {ALLOWLIST_SETTING}={name} on the worker to allow it)"
            )
        if name in self.names or any(name.startswith(prefix) for prefix in self.prefixes):
            return None
        return (
            f"environment variable {name} is not in this worker's {ALLOWLIST_SETTING} ({self.describe()}); "
            f"add {name} to it on the worker to allow it"
        )


@dataclass(frozen=True)
class Resolved:
    """Headers with their references replaced, and the values put into them (to scrub them from any text).

    Attributes:
        headers: what to send.
        values: the secret values the references resolved to.
    """

    headers: dict[str, str]
    values: tuple[str, ...] = ()

    def scrub(self, text: str) -> str:
        """``text`` with every resolved value (as written, JSON-escaped, %-encoded or repr-escaped) masked."""
        return scrub(text, self.values)


def references(value: str) -> list[str]:
    """The variable names ``value`` references as ``${env:NAME}``, in order."""
    return _REFERENCE.findall(value)


def resolve(headers: Mapping[str, str], env: Mapping[str, str] | None = None) -> Resolved:
    """``headers`` with every ``${env:NAME}`` replaced by the worker's ``NAME``, if the worker gives it out.

    Raises:
        SecretRefused: a referenced variable is not in the worker's allowlist, or is one of its own settings.
        SecretMissing: a referenced variable is allowed but not set.
    """
    if not any(_MARK in value for value in headers.values()):
        return Resolved(dict(headers))  # the common case, once per probe sample: no parsing at all
    env = os.environ if env is None else env
    allowlist = Allowlist.from_env(env)
    values: list[str] = []

    def lookup(match: re.Match[str]) -> str:
        name = match.group(1)
        if (why := allowlist.refusal(name)) is not None:
            raise SecretRefused(f"${{env:{name}}}: {why}")
        value = env.get(name)
        if value is None:
            raise SecretMissing(
                f"environment variable {name} (referenced as ${{env:{name}}}) is not set on this worker"
            )
        if value:
            values.append(value)
        return value

    resolved = {name: _REFERENCE.sub(lookup, value) for name, value in headers.items()}
    return Resolved(resolved, tuple(dict.fromkeys(values)))


def scrub(text: str, values: tuple[str, ...] | list[str]) -> str:
    """``text`` with each of ``values`` masked, in the forms an echoing server or an error message may use."""
    if not text or not values:
        return text
    for form in sorted(set(_forms(values)), key=len, reverse=True):
        text = text.replace(form, MASK)
    return text


def _forms(values: tuple[str, ...] | list[str]) -> Iterator[str]:
    for value in values:
        if not value:
            continue
        yield value
        yield json.dumps(value)[1:-1]
        yield quote(value, safe="")
        yield repr(value)[1:-1]


_COMMAND_BASE = re.compile(
    r"^(PATH|HOME|USER|LOGNAME|SHELL|LANG|LANGUAGE|LC_[A-Z]+|TZ|TMPDIR|TERM|PWD|HOSTNAME|VIRTUAL_ENV|PYTHONPATH)$"
)
"""What a drill's shell command sees of the worker's environment without being given anything: where programs
are, who and where it runs, its locale. Nothing that can carry a credential."""


def command_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a drill's shell commands (a ``command`` fault, its revert, a ``restart``, a ``command``
    probe) run with: the worker's harmless basics plus what the worker gives to drills (``GAMEDAY_DRILL_SECRETS``).

    A command could otherwise read any worker secret (``env | curl …``): the database URL, the Slack token, a
    cloud key. gameday's own settings are never passed, even if listed.
    """
    env = os.environ if env is None else env
    allowlist = Allowlist.from_env(env)
    return {
        name: value
        for name, value in env.items()
        if _COMMAND_BASE.match(name) or (not allowlist.empty and allowlist.refusal(name) is None)
    }
