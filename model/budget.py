"""The payload budget: the limits that keep every workflow payload far below what Temporal accepts.

Temporal refuses a payload over 2 MB and a batch of history events over ~4 MB; a workflow task that produces
one fails, and keeps failing on every retry, so a drill whose record outgrew that would hold its faults with
no way to stop it. gameday keeps every payload bounded by design, in two places:

* the loader refuses a drill over the limits below (``gameday validate`` says which, where): whatever the
  drill holds (its input, the specs each fault activity receives) is bounded by the file;
* what activities hand back (outputs, answers, errors, probe problems) is cut at the activity boundary with
  :func:`clip`, and the texts people send in signals (stop reasons, approval notes) are cut on arrival.

docs/ARCHITECTURE.md ("Payload budget") adds these up for the worst drill the limits allow; docs/DRILL_FORMAT.md
("Limits") lists them for drill authors. All sizes are bytes of UTF-8.
"""

from __future__ import annotations

import json
from datetime import timedelta

KIB = 1024

# --- drill files (refused by the loader) ------------------------------------------------------------------

MAX_FILE_BYTES = 256 * KIB
"""A drill or game-day file as written."""
MAX_EXPANDED_BYTES = 512 * KIB
"""The file's text once YAML aliases are expanded (``*anchor`` copies what ``&anchor`` names)."""
MAX_DEPTH = 32
"""Levels of nested mappings and lists in a file (a ``json:`` body counts from the top of the file)."""
MAX_FAULTS = 32
MAX_PROBES = 32
"""Hypothesis probes."""
MAX_TARGETS = 32
MAX_GUARDRAILS = 16
MAX_ENDPOINTS = 32
"""Endpoints of ``observe.traffic``."""
MAX_NAME_CHARS = 128
"""Names that become labels (target keys, fault, probe and guardrail names): they are repeated in summaries."""
MAX_COMMAND_BYTES = 8 * KIB
"""A shell command: ``run``, ``revert`` (of a command or exec fault) and ``restart``."""
MAX_TEXT_BYTES = 4 * KIB
"""Any other single text: URLs, paths, header values, descriptions, a ``body_contains``…"""
MAX_MAPPING_KEYS = 32
"""Entries of a ``headers`` or ``labels`` mapping."""
MAX_JSON_BYTES = 8 * KIB
"""A ``json:`` request body, as sent."""
MAX_JSON_DEPTH = 16
"""Nesting of a ``json:`` request body."""
MAX_FAULT_BYTES = 32 * KIB
"""One fault with its target, as each apply and revert receives it (the sum of its texts)."""
MAX_GAMEDAY_DRILLS = 32
"""Steps of a game day."""
MAX_GAMEDAY_BYTES = 1024 * KIB
"""A game day's drills together, as the game-day workflow receives them."""
MAX_CONTAINERS = 64
"""Running opted-in containers a docker ``labels`` selection may match (refused at apply, nothing changed): each
one is named in its fault's record, and each pick's changes too. Also the most ``count`` may ask for."""
MAX_DRILL_BYTES = 768 * KIB
"""The whole validated drill as the workflow receives it (JSON, defaults included): a safety net behind the
limits above, which keep a real drill far below it."""
MAX_DURATION = timedelta(hours=24)
"""``max_duration``: what runs for the whole drill (its traffic, its hold on targets) runs at most this long."""

# --- what activities and signals hand to the workflow (cut, never refused) ---------------------------------

MAX_OUTPUT_BYTES = 4 * KIB
"""A fault's output or error (command output, an HTTP answer, an error message), in its record."""
MAX_PROBLEM_BYTES = 512
"""One reason a probe failed; a result keeps at most five."""
MAX_REASON_BYTES = 1 * KIB
"""A stop reason or an approval/pause note sent by a person."""
MAX_BY_BYTES = 128
"""Who sent a signal."""

# --- what the traffic measured (bounded by design, whatever the run's length or the target's answers) ------

MAX_TIMELINE_POINTS = 1200
"""Points of a traffic timeline: one a second up to 20 minutes; past that, neighbouring points are merged
(the step doubles), so a 24-hour run is ~675 points of 128 s."""
MAX_HISTOGRAM_BYTES = 4 * KIB
"""A window's encoded HDR histogram: 3 significant figures while it fits, else 2, else 1 (~3.5 KiB whatever
the counts); in the impossible case it still does not fit, the window keeps its percentiles, not its histogram."""
MAX_OPEN_SECONDS = 16
"""Timeline points still in flight that a traffic snapshot carries with their histograms (to resume exactly);
older ones, waiting for slow requests, travel as points with what they measured so far."""

_MARK = "…[truncated {} bytes]…"


def payload_bytes(text: str) -> int:
    """Bytes ``text`` takes in a JSON payload (quotes excluded): escapes of control characters included."""
    return len(json.dumps(text, ensure_ascii=False).encode("utf-8", "replace")) - 2


def clip(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` payload bytes; else its head and tail around ``…[truncated N bytes]…``.

    Both ends are kept: a command's first line says what it is, its last lines why it failed.
    """
    if len(text) * 6 <= limit or payload_bytes(text) <= limit:  # the first test avoids encoding short texts
        return text
    room = max(limit - payload_bytes(_MARK.format(10**9)), 2)
    head = _fit(text, room // 2)
    tail = _fit(text[len(head) :][::-1], room - room // 2)[::-1]
    cut = text[len(head) : len(text) - len(tail)]
    return head + _MARK.format(len(cut.encode("utf-8", "replace"))) + tail


def clipper(limit: int) -> _Clipper:
    """A validator that clips a text field to ``limit`` bytes (``Annotated[str, AfterValidator(clipper(n))]``)."""
    return _Clipper(limit)


class _Clipper:
    def __init__(self, limit: int) -> None:
        self.limit = limit

    def __call__(self, text: str) -> str:
        return clip(text, self.limit)


def _fit(text: str, room: int) -> str:
    """The longest prefix of ``text`` whose payload bytes fit in ``room``."""
    used = 0
    for end, char in enumerate(text):
        used += _char_bytes(char)
        if used > room:
            return text[:end]
    return text


def _char_bytes(char: str) -> int:
    if " " <= char < "\x7f":
        return 2 if char in '"\\' else 1
    if char in "\n\r\t\b\f":
        return 2
    if char < " ":
        return 6
    return len(char.encode("utf-8", "replace"))
