"""``gameday slack``: the drill thread's buttons and the ``/gameday`` slash command, over Socket Mode.

slack_sdk's ``SocketModeClient`` opens a websocket to Slack with the app-level token (``apps.connections.open``),
so no public endpoint of ours is needed. Slack sends each click (``block_actions``) and slash command as an
envelope; every envelope is acked at once with its ``envelope_id`` (Slack retries an envelope not acked within
3 s). Then the user is checked against the allowlist (:class:`~gameday.config.slack_app.SlackAppConfig`), and the
drill is signalled as ``gameday stop`` / ``gameday approve`` / ``gameday freeze`` do, with ``by`` =
``"<name> via Slack"``: the drill's own notifications then say in its thread who stopped it, and its record and
history say it too. Someone not on the allowlist gets an ephemeral refusal and nothing is signalled.

slack_sdk runs the request listeners one after the other: a click's work runs in a task of its own, so a slow
``users.info`` never delays the next envelope's ack. The tokens stay in this process's memory: nothing here
logs a request, and :data:`SDK_LOG` keeps slack_sdk's own debug lines off.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime
from typing import Any

from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.async_client import AsyncBaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.web.async_client import AsyncWebClient
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from gameday.activities.freeze import read_freezes
from gameday.activities.notify.messages import APPROVE_ACTION, CONTROLS_BLOCK, STOP_ACTION, escape
from gameday.activities.notify.slack import REQUEST_TIMEOUT, SDK_LOG
from gameday.config.app import GamedayConfig
from gameday.config.slack_app import SlackAppConfig

LOG = logging.getLogger("gameday.slack_listener")
RUN_TYPES = frozenset({"DrillWorkflow", "GameDayWorkflow"})
"""What a Slack stop or approve may signal: never the freeze workflow or anything else in the namespace."""
GROUP_TTL = 60.0
"""Seconds the user group's members are reused before ``usergroups.users.list`` is asked again."""
COMMAND_BUDGET = 2.5
"""Seconds a slash command's work may take before its ack (Slack wants one within 3 s); then it goes on."""
USAGE = "usage: /gameday stop RUN_ID [reason] | /gameday freeze [reason] | /gameday unfreeze | /gameday status"


class SlackListener:
    """Answers block_actions and slash commands from Slack by signalling runs on Temporal.

    Args:
        config: the tokens and the allowlist (see :meth:`SlackAppConfig.problem`).
        client: a Temporal client of the runs' namespace.
        task_queue: the task queue whose freeze ``/gameday freeze`` records.
    """

    def __init__(self, config: SlackAppConfig, client: Client, task_queue: str) -> None:
        self._config = config
        self._client = client
        self._queue = task_queue
        self._web = AsyncWebClient(
            token=config.bot_token, base_url=config.api_url, timeout=REQUEST_TIMEOUT, logger=SDK_LOG
        )
        self._socket = SocketModeClient(app_token=config.app_token, web_client=self._web, logger=SDK_LOG)
        self._socket.socket_mode_request_listeners.append(self._on_request)
        self._names: dict[str, str] = {}
        self._group: tuple[float, frozenset[str]] | None = None
        self._tasks: set[asyncio.Future[Any]] = set()

    async def start(self) -> None:
        """Open the Socket Mode connection; envelopes are answered from now on."""
        await self._socket.connect()  # type: ignore[no-untyped-call]
        LOG.info("Slack listener connected (Socket Mode)")

    async def close(self) -> None:
        await self._socket.close()  # type: ignore[no-untyped-call]
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def serve(self) -> None:
        """Start and answer until cancelled (Ctrl-C); slack_sdk reconnects by itself."""
        await self.start()
        try:
            await asyncio.Event().wait()
        finally:
            await self.close()

    async def _on_request(self, socket: AsyncBaseSocketModeClient, request: SocketModeRequest) -> None:
        payload: dict[str, Any] = request.payload or {}
        if request.type == "slash_commands":
            work = asyncio.ensure_future(self._command(payload))
            try:
                reply = await asyncio.wait_for(asyncio.shield(work), COMMAND_BUDGET)
            except TimeoutError:
                self._keep(work)
                reply = "working on it: the drills' threads will say when they stop"
            await socket.send_socket_mode_response(
                SocketModeResponse(request.envelope_id, payload={"response_type": "ephemeral", "text": reply})
            )
            return
        await socket.send_socket_mode_response(SocketModeResponse(request.envelope_id))
        if request.type == "interactive" and payload.get("type") == "block_actions":
            self._keep(asyncio.ensure_future(self._click(payload)))

    def _keep(self, task: asyncio.Future[Any]) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _click(self, payload: dict[str, Any]) -> None:
        """One button press: Stop drill or Approve, if the user is allowed."""
        actions = payload.get("actions") or [{}]
        action_id, run_id = str(actions[0].get("action_id", "")), str(actions[0].get("value", ""))
        user = payload.get("user") or {}
        user_id = str(user.get("id", ""))
        channel = str((payload.get("channel") or {}).get("id") or (payload.get("container") or {}).get("channel_id"))
        if action_id not in (STOP_ACTION, APPROVE_ACTION):
            return
        try:
            allowed, name = await asyncio.gather(self._allowed(user_id), self._name(user_id, user))
            if not allowed:
                LOG.warning("Slack: %s (%s) is not allowed to %s %s", name, user_id, action_id, run_id)
                await self._ephemeral(channel, user_id, "You are not allowed to stop or approve drills from Slack.")
                return
            by = f"{name} via Slack"
            if action_id == STOP_ACTION:
                answer = await self._stop(run_id, "Stop drill button in Slack", by, checked=False)
            else:
                answer = await self._approve(run_id, by)
                if not answer:
                    await self._mark_approved(payload, by)
            if answer:
                await self._ephemeral(channel, user_id, answer)
        except (SlackApiError, RPCError, OSError, TimeoutError) as err:
            LOG.warning("Slack: %s of %s by %s failed: %s", action_id, run_id, user_id, type(err).__name__)
            await self._ephemeral(channel, user_id, f"That did not go through ({type(err).__name__}): use the CLI.")

    async def _command(self, payload: dict[str, Any]) -> str:
        """``/gameday ...``: the ephemeral reply."""
        words = str(payload.get("text", "")).split()
        verb, rest = (words[0].lower(), words[1:]) if words else ("", [])
        user_id = str(payload.get("user_id", ""))
        if verb == "status":
            return await self._status()
        if verb not in ("stop", "freeze", "unfreeze"):
            return USAGE
        allowed, name = await asyncio.gather(
            self._allowed(user_id), self._name(user_id, {"name": payload.get("user_name", "")})
        )
        if not allowed:
            LOG.warning("Slack: %s (%s) is not allowed to /gameday %s", name, user_id, verb)
            return "You are not allowed to stop, freeze or unfreeze drills from Slack."
        by = f"{name} via Slack"
        if verb == "stop":
            if not rest:
                return USAGE
            reason = " ".join(rest[1:]) or "/gameday stop in Slack"
            return await self._stop(rest[0], reason, by) or f"stop sent to {rest[0]} by {by}"
        if verb == "freeze":
            from gameday.cli.freeze import freeze_runs

            reason = " ".join(rest) or "/gameday freeze in Slack"
            done = await freeze_runs(self._client, self._queue, reason, by)
            lines = [f"frozen by {by}: {reason}; new drills are refused until /gameday unfreeze"]
            lines += [f"stopped {run_id}" for run_id in done.stopped] + done.undelivered
            return "\n".join(lines)
        return await self._unfreeze(by)

    async def _stop(self, run_id: str, reason: str, by: str, *, checked: bool = True) -> str:
        """Signal ``emergency_stop``; an empty answer when it was sent, else why not.

        ``checked=False`` (a button, whose run id is one we posted): no ``describe`` first, one round trip less
        on the stop path; a run that has ended answers the signal NOT_FOUND.
        """
        sent_at = datetime.now(UTC).isoformat()
        handle = self._client.get_workflow_handle(run_id)
        if checked and (problem := await self._not_running(run_id)):
            return problem
        try:
            await handle.signal("emergency_stop", {"reason": reason, "by": by, "sent_at": sent_at})
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            return f"run {run_id} has already finished: nothing to stop"
        LOG.info("Slack: stop of %s sent by %s", run_id, by)
        return ""

    async def _approve(self, run_id: str, by: str) -> str:
        if problem := await self._not_running(run_id):
            return problem
        await self._client.get_workflow_handle(run_id).signal("approve", {"by": by, "note": "Approve in Slack"})
        LOG.info("Slack: approval of %s sent by %s", run_id, by)
        return ""

    async def _not_running(self, run_id: str) -> str:
        try:
            description = await self._client.get_workflow_handle(run_id).describe()
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return f"no run {run_id}"
            raise
        if description.workflow_type not in RUN_TYPES:
            return f"{run_id} is not a drill or game day"
        if description.status != WorkflowExecutionStatus.RUNNING:
            return f"run {run_id} has already finished: nothing to do"
        return ""

    async def _unfreeze(self, by: str) -> str:
        from gameday.model.freeze_names import freeze_workflow_id

        try:
            await self._client.get_workflow_handle(freeze_workflow_id(self._queue)).signal(
                "unfreeze", {"by": by, "team": None}
            )
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            return "nothing is frozen (or the freeze workflow was closed by hand: use gameday unfreeze)"
        return f"unfrozen by {by}: drills may start again"

    async def _status(self) -> str:
        from gameday.cli.freeze import frozen_lines

        query = f'WorkflowType = "DrillWorkflow" AND ExecutionStatus = "Running" AND TaskQueue = "{self._queue}"'
        running = [execution.id async for execution in self._client.list_workflows(query, limit=20)]
        try:
            frozen = frozen_lines(await read_freezes(self._client, self._queue))
        except RPCError:
            frozen = ["freeze state unreadable now (no worker?)"]
        lines = frozen or ["not frozen"]
        lines.append(f"{len(running)} drill(s) running" + "".join(f"\n• {run_id}" for run_id in running))
        return "\n".join(lines)

    async def _allowed(self, user_id: str) -> bool:
        if user_id and user_id in self._config.allowed_users:
            return True
        if not self._config.allowed_group or not user_id:
            return False
        now = time.monotonic()
        if self._group is None or now - self._group[0] > GROUP_TTL:
            answer = await self._web.usergroups_users_list(usergroup=self._config.allowed_group)
            self._group = (now, frozenset(str(u) for u in answer.get("users") or []))
        return user_id in self._group[1]

    async def _name(self, user_id: str, user: dict[str, Any]) -> str:
        """How the run's record names the person: their Slack display name (``users.info``), cached."""
        if user_id in self._names:
            return self._names[user_id]
        fallback = str(user.get("name") or user.get("username") or user_id)
        try:
            answer = await self._web.users_info(user=user_id)
        except SlackApiError:
            return fallback
        info = answer.get("user") or {}
        profile = info.get("profile") or {}
        name = str(profile.get("display_name") or info.get("real_name") or info.get("name") or fallback)
        self._names[user_id] = name
        return name

    async def _ephemeral(self, channel: str, user_id: str, text: str) -> None:
        try:
            await self._web.chat_postEphemeral(channel=channel, user=user_id, text=text)
        except SlackApiError as err:
            LOG.warning("Slack: ephemeral reply not sent: %s", err.response.get("error"))

    async def _mark_approved(self, payload: dict[str, Any], by: str) -> None:
        """The parent without its Approve button, saying who approved (the verdict rewrites it again later)."""
        message = payload.get("message") or {}
        channel = str((payload.get("channel") or {}).get("id") or "")
        if not message.get("ts") or not channel:
            return
        blocks = []
        for block in message.get("blocks") or []:
            if block.get("block_id") == CONTROLS_BLOCK:
                elements = [e for e in block.get("elements", []) if e.get("action_id") != APPROVE_ACTION]
                block = {**block, "elements": elements}
            blocks.append(block)
        note = f":white_check_mark: Approved by {escape(by)}"
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": note}]})
        try:
            await self._web.chat_update(
                channel=channel, ts=str(message["ts"]), text=message.get("text", ""), blocks=blocks
            )
        except SlackApiError as err:
            LOG.warning("Slack: parent not updated after approval: %s", err.response.get("error"))


async def run_slack_listener(config: GamedayConfig, slack: SlackAppConfig, *, wait_ready: float = 0.0) -> None:
    """Connect to Temporal and answer Slack until cancelled."""
    from gameday.worker.client import connect

    client = await connect(config, wait_ready=wait_ready)
    await SlackListener(slack, client, config.task_queue).serve()
