"""``${name}`` substitution in an activity's provider, as chaoslib does it, from configuration and secrets.

A string that is exactly ``${name}`` becomes the value itself (a number stays a number); a longer string gets each
known ``${name}`` replaced by its text; unknown names are left as written. Secrets are looked up after the
configuration, so a secret shadows a configuration value of the same name.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

_WHOLE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_.-]*)\}$")
_PART = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.-]*)\}")


def substitute(value: Any, names: Mapping[str, Any]) -> Any:
    """``value`` (any JSON value) with every ``${name}`` of ``names`` substituted, recursively."""
    if isinstance(value, str):
        whole = _WHOLE.match(value)
        if whole and whole.group(1) in names:
            return names[whole.group(1)]
        return _PART.sub(lambda m: str(names[m.group(1)]) if m.group(1) in names else m.group(0), value)
    if isinstance(value, list):
        return [substitute(item, names) for item in value]
    if isinstance(value, dict):
        return {key: substitute(item, names) for key, item in value.items()}
    return value
