"""Block Kit messages for a drill's events: what each Slack message says.

One function per event kind; :func:`render` picks. Every message has a plain ``text`` too: Slack shows it in
notifications and where blocks cannot be shown, and the generic webhook sends only that. The blocks are
slack_sdk's typed models, validated by ``to_dict()`` (lengths, counts) before they leave the worker.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from gameday.model.notify_records import DrillFinished, DrillStarted, DrillStopped, NotifyEvent, PhaseDone

STOP_ACTION = "gameday_stop"
"""``action_id`` of the parent's **Stop drill** button; its ``value`` is the run id (``gameday slack``)."""
APPROVE_ACTION = "gameday_approve"
"""``action_id`` of the parent's **Approve** button, on a drill with a go/no-go gate; ``value`` is the run id."""
CONTROLS_BLOCK = "gameday_controls"
"""``block_id`` of the buttons: the verdict's rewrite of the parent has no such block (the buttons are gone)."""

HEADER_MAX = 150
SECTION_MAX = 3000
LIST_MAX = 10
"""Targets or faults listed before "and N more": the parent message stays readable."""

VERDICT_EMOJI = {
    "RESILIENT": ":large_green_circle:",
    "DEVIATED": ":large_yellow_circle:",
    "NOT_RECOVERED": ":red_circle:",
    "NOT_STEADY": ":white_circle:",
    "ABORTED": ":octagonal_sign:",
    "ERROR": ":x:",
    "INCONCLUSIVE": ":large_blue_circle:",
}
STATUS_EMOJI = {
    "ok": ":white_check_mark:",
    "failed": ":x:",
    "skipped": ":fast_forward:",
    "interrupted": ":pause_button:",
}


@dataclass(frozen=True)
class Message:
    """A message ready to post: the fallback ``text`` and the Block Kit ``blocks`` (as JSON objects)."""

    text: str
    blocks: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Links:
    """Where people can look further: the run in the Temporal Web UI, the report."""

    web_ui: str = ""
    report: str = ""

    def line(self) -> str:
        parts = [f"<{url}|{label}>" for label, url in (("Web UI", self.web_ui), ("report", self.report)) if url]
        return " · ".join(parts)


def escape(text: str) -> str:
    """Slack mrkdwn treats ``&``, ``<`` and ``>`` as control characters: a probe URL must not become a link."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render(event: NotifyEvent, links: Links, *, buttons: bool = False) -> Message:
    """The message for one event (a thread reply, or a top-level message where there is no thread).

    ``buttons``: the start message (the thread's parent) carries **Stop drill**, and **Approve** at a gate.
    """
    match event.what:
        case DrillStarted():
            return started(event, event.what, links, buttons=buttons)
        case PhaseDone():
            return phase_done(event, event.what)
        case DrillStopped():
            return stopped(event, event.what)
        case DrillFinished():
            return finished(event, event.what, links)


def started(event: NotifyEvent, what: DrillStarted, links: Links, *, buttons: bool = False) -> Message:
    title = f":test_tube: Drill started: {event.drill_name}"
    fields = [f"*Run*\n`{escape(event.run_id)}`", f"*Started by*\n{escape(what.started_by or 'unknown')}"]
    if event.team:
        fields.append(f"*Team*\n{escape(event.team)}")
    blocks: list[Block] = [HeaderBlock(text=_clip(title, HEADER_MAX))]
    if what.description:
        blocks.append(_section(escape(what.description)))
    blocks.append(SectionBlock(fields=fields))
    if what.targets:
        blocks.append(_section("*Targets*\n" + _bullets(what.targets)))
    if what.faults:
        blocks.append(_section("*Faults*\n" + _bullets(what.faults)))
    if links.line():
        blocks.append(_context(links.line()))
    if buttons:
        blocks.append(_controls(event.run_id, approve=what.approval))
    text = f"Drill {event.drill_name} started by {what.started_by or 'unknown'} (run {event.run_id})"
    return _message(text, blocks)


def phase_done(event: NotifyEvent, what: PhaseDone) -> Message:
    took = f" in {_seconds(what.seconds)}" if what.seconds is not None else ""
    line = f"{STATUS_EMOJI.get(what.status, ':grey_question:')} *{escape(what.phase)}* {escape(what.status)}{took}"
    if what.detail:
        line += f": {escape(what.detail)}"
    text = f"{event.drill_name}: {what.phase} {what.status}{took}" + (f": {what.detail}" if what.detail else "")
    return _message(text, [_section(line)])


def stopped(event: NotifyEvent, what: DrillStopped) -> Message:
    if what.by == "guardrail":
        line = f":rotating_light: *Guardrail tripped*: {escape(what.reason)}. Rolling back."
        text = f"{event.drill_name}: guardrail tripped: {what.reason}"
    else:
        line = f":octagonal_sign: *Stopped* by {escape(what.by)}: {escape(what.reason)}. Rolling back."
        text = f"{event.drill_name}: stopped by {what.by}: {what.reason}"
    return _message(text, [_section(line)])


def finished(event: NotifyEvent, what: DrillFinished, links: Links) -> Message:
    """The verdict with its key figures: the last reply, and what the parent message becomes."""
    emoji = VERDICT_EMOJI.get(what.verdict, ":grey_question:")
    fields = [
        f"*Verdict*\n{escape(what.verdict)}",
        f"*Faults reverted*\n{what.faults_reverted}/{what.faults_total}",
        f"*Time to recovery*\n{_seconds(what.time_to_recovery)}",
        f"*Time to safe*\n{_seconds(what.time_to_safe)}",
    ]
    if what.coverage:
        fields.append(f"*Evidence under fault*\n{escape(what.coverage)}")
    blocks: list[Block] = [HeaderBlock(text=_clip(f"{emoji} {what.verdict}: {event.drill_name}", HEADER_MAX))]
    if what.summary:
        blocks.append(_section(escape(what.summary)))
    blocks.append(SectionBlock(fields=fields))
    context = " · ".join(p for p in (f"run `{escape(event.run_id)}`", links.line()) if p)
    blocks.append(_context(context))
    text = f"Drill {event.drill_name}: {what.verdict}" + (f": {what.summary}" if what.summary else "")
    return _message(text, blocks)


def _controls(run_id: str, *, approve: bool) -> ActionsBlock:
    stop = ButtonElement(
        text="Stop drill",
        action_id=STOP_ACTION,
        value=run_id,
        style="danger",
        confirm=ConfirmObject(
            title="Stop this drill?",
            text="Every fault it applied is reverted now and the run ends ABORTED.",
            confirm="Stop drill",
            deny="Cancel",
        ),
    )
    elements = [stop]
    if approve:
        elements.append(ButtonElement(text="Approve", action_id=APPROVE_ACTION, value=run_id, style="primary"))
    return ActionsBlock(block_id=CONTROLS_BLOCK, elements=elements)


def _message(text: str, blocks: list[Block]) -> Message:
    return Message(text=_clip(text, SECTION_MAX), blocks=[block.to_dict() for block in blocks])


def _section(mrkdwn: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=_clip(mrkdwn, SECTION_MAX)))


def _context(mrkdwn: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=_clip(mrkdwn, SECTION_MAX))])


def _bullets(items: list[str]) -> str:
    shown = [f"• {escape(item)}" for item in items[:LIST_MAX]]
    if len(items) > LIST_MAX:
        shown.append(f"… and {len(items) - LIST_MAX} more")
    return "\n".join(shown)


def _seconds(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
