"""Secrets by reference: a header value written ``${env:NAME}`` in a drill file is read from the worker's
environment when the request is sent, so the drill, its workflow input and history, the fault ledger in SQL and
the reports carry only the reference, never the token.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

_REFERENCE = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}")


class SecretMissing(LookupError):
    """A referenced environment variable is not set on this worker (the message names it, never a value)."""


def resolve(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` with every ``${env:NAME}`` replaced by the worker's ``NAME``.

    Raises:
        SecretMissing: a referenced variable is not set.
    """
    return {name: _REFERENCE.sub(_lookup, value) for name, value in headers.items()}


def _lookup(match: re.Match[str]) -> str:
    name = match.group(1)
    value = os.environ.get(name)
    if value is None:
        raise SecretMissing(f"environment variable {name} (referenced as ${{env:{name}}}) is not set on this worker")
    return value
