"""A fake Slack on loopback: the Web API's ``chat.postMessage`` and ``chat.update``, and webhook endpoints.

A real aiohttp server in the test's event loop, so slack_sdk talks HTTP to it exactly as to Slack (pointed at it
with ``base_url``). It checks the bearer token the way Slack does (HTTP 200, ``ok: false``, ``invalid_auth``),
keeps the messages it accepted (so a test sees the channel as people would: parents, threads, updates), records
every call, and can be told to answer the next calls with HTTP 429 and a ``Retry-After`` or with an error.

``/hooks/<key>`` answers like a Slack incoming webhook (``ok``); ``/webhook`` accepts any JSON POST.

Socket Mode, as ``gameday slack`` uses it: ``apps.connections.open`` (with the app-level token) answers a
``ws://127.0.0.1:PORT/link`` URL, served by aiohttp's own websocket server; the fake says ``hello``, then a test
sends envelopes (:meth:`FakeSlack.click`, :meth:`FakeSlack.slash`) and waits for their acks by ``envelope_id``
(:meth:`FakeSlack.ack`). ``users.info``, ``usergroups.users.list`` and ``chat.postEphemeral`` answer from
:attr:`FakeSlack.users` and :attr:`FakeSlack.groups`.
"""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

CHANNEL_IDS = {"#gameday": "C0GAMEDAY", "#other": "C0OTHER"}
"""Channels that exist: name → id. Posting by id works too; anything else is ``channel_not_found``."""


@dataclass
class Call:
    """One request the fake received, after it decided its answer."""

    path: str
    authorization: str
    body: dict[str, Any]
    status: int
    answer: dict[str, Any] | str


@dataclass
class Posted:
    """A message in the fake's channels."""

    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    thread_ts: str | None = None
    updates: int = 0


@dataclass
class Ephemeral:
    """A message only one user sees (``chat.postEphemeral``)."""

    channel: str
    user: str
    text: str


@dataclass
class FakeSlack:
    """The fake's state and levers; :meth:`start` serves it, :meth:`stop` takes it down (Slack outage)."""

    token: str
    calls: list[Call] = field(default_factory=list)
    messages: list[Posted] = field(default_factory=list)
    rate_limit_next: int = 0
    """Answer this many next requests with 429."""
    retry_after: int = 1
    fail_next: dict[str, int] = field(default_factory=dict)
    """Path → HTTP status to answer the next request to it with (once)."""
    app_token: str = "xapp-1-fake-app-token"
    users: dict[str, str] = field(default_factory=dict)
    """User id → display name, for ``users.info``."""
    groups: dict[str, list[str]] = field(default_factory=dict)
    """User group id → member ids, for ``usergroups.users.list``."""
    ephemerals: list[Ephemeral] = field(default_factory=list)
    acks: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Envelope id → the ack's JSON, as the listener sent it."""
    _runner: web.AppRunner | None = None
    _port: int = 0
    _sockets: list[web.WebSocketResponse] = field(default_factory=list)
    _connected: asyncio.Event = field(default_factory=asyncio.Event)
    _acked: asyncio.Condition = field(default_factory=asyncio.Condition)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/api/"

    @property
    def incoming_webhook_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/hooks/T0FAKE/B0FAKE/{self.token}-hook"

    @property
    def webhook_url(self) -> str:
        return f"http://127.0.0.1:{self._port}/webhook"

    def thread(self, parent: Posted) -> list[Posted]:
        return [m for m in self.messages if m.thread_ts == parent.ts]

    def parents(self) -> list[Posted]:
        return [m for m in self.messages if m.thread_ts is None]

    async def start(self) -> FakeSlack:
        app = web.Application()
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/hooks/{key:.*}", self._hook)
        app.router.add_post("/webhook", self._hook)
        app.router.add_get("/link", self._link)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))  # the same port again after stop(): a restarted Slack
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def connected(self, within: float = 10.0) -> None:
        """Wait until a Socket Mode client has connected (and been said hello to)."""
        await asyncio.wait_for(self._connected.wait(), within)

    async def click(self, user: str, action_id: str, value: str, message: Posted) -> str:
        """A ``block_actions`` envelope: ``user`` pressed the button ``action_id`` on ``message``; its envelope id."""
        payload = {
            "type": "block_actions",
            "user": {"id": user, "username": user.lower(), "name": user.lower()},
            "channel": {"id": message.channel},
            "container": {"type": "message", "message_ts": message.ts, "channel_id": message.channel},
            "message": {"ts": message.ts, "text": message.text, "blocks": message.blocks},
            "actions": [{"type": "button", "action_id": action_id, "value": value, "block_id": "gameday_controls"}],
        }
        return await self._envelope("interactive", payload, accepts_response_payload=False)

    async def slash(self, user: str, text: str) -> str:
        """A ``slash_commands`` envelope: ``user`` typed ``/gameday text``; its envelope id."""
        payload = {
            "command": "/gameday",
            "text": text,
            "user_id": user,
            "user_name": user.lower(),
            "channel_id": "C0GAMEDAY",
        }
        return await self._envelope("slash_commands", payload, accepts_response_payload=True)

    async def ack(self, envelope_id: str, within: float = 10.0) -> dict[str, Any]:
        """Wait for the listener's ack of ``envelope_id``; its JSON."""
        async with self._acked:
            await asyncio.wait_for(self._acked.wait_for(lambda: envelope_id in self.acks), within)
        return self.acks[envelope_id]

    async def _envelope(self, kind: str, payload: dict[str, Any], *, accepts_response_payload: bool) -> str:
        envelope_id = str(uuid.uuid4())
        envelope = {
            "envelope_id": envelope_id,
            "type": kind,
            "payload": payload,
            "accepts_response_payload": accepts_response_payload,
            "retry_attempt": 0,
            "retry_reason": "",
        }
        await self._sockets[-1].send_str(json.dumps(envelope))
        return envelope_id

    async def _link(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_str(json.dumps({"type": "hello", "num_connections": 1, "connection_info": {"app_id": "A0FAKE"}}))
        self._connected.set()
        async for frame in ws:
            if frame.type != web.WSMsgType.TEXT:
                continue
            answer = json.loads(frame.data)
            if "envelope_id" in answer:
                async with self._acked:
                    self.acks[answer["envelope_id"]] = answer
                    self._acked.notify_all()
        self._sockets.remove(ws)
        return ws

    async def stop(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        body: dict[str, Any] = dict(request.query)  # users.info, usergroups.users.list: GET with parameters
        if request.content_type == "application/json":
            body.update(await request.json())
        elif request.can_read_body:
            body.update(await request.post())
        auth = request.headers.get("Authorization", "")
        if (early := self._early_answer(request.path)) is not None:
            return self._record(request.path, auth, body, *early)
        if method == "apps.connections.open":
            if auth != f"Bearer {self.app_token}":
                return self._record(request.path, auth, body, 200, {"ok": False, "error": "invalid_auth"})
            return self._record(request.path, auth, body, 200, {"ok": True, "url": self._link_url()})
        if auth != f"Bearer {self.token}":
            return self._record(request.path, auth, body, 200, {"ok": False, "error": "invalid_auth"})
        if method in ("users.info", "usergroups.users.list"):
            return self._record(request.path, auth, body, 200, self._directory(method, body))
        channel = CHANNEL_IDS.get(body.get("channel", ""), body.get("channel", ""))
        if channel not in CHANNEL_IDS.values():
            return self._record(request.path, auth, body, 200, {"ok": False, "error": "channel_not_found"})
        if method == "chat.postMessage":
            return self._record(request.path, auth, body, 200, self._post(channel, body))
        if method == "chat.update":
            return self._record(request.path, auth, body, 200, self._update(channel, body))
        if method == "chat.postEphemeral":
            self.ephemerals.append(Ephemeral(channel, body.get("user", ""), body.get("text", "")))
            return self._record(request.path, auth, body, 200, {"ok": True, "message_ts": "1700000000.999999"})
        return self._record(request.path, auth, body, 200, {"ok": False, "error": "unknown_method"})

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.json()
        if (early := self._early_answer(request.path)) is not None:
            return self._record(request.path, "", body, *early)
        return self._record(request.path, "", body, 200, "ok")

    def _link_url(self) -> str:
        return f"ws://127.0.0.1:{self._port}/link?ticket={uuid.uuid4()}"

    def _directory(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        if method == "users.info":
            user = body.get("user", "")
            if user not in self.users:
                return {"ok": False, "error": "user_not_found"}
            name = self.users[user]
            return {
                "ok": True,
                "user": {"id": user, "name": name.lower(), "real_name": name, "profile": {"display_name": name}},
            }
        group = body.get("usergroup", "")
        if group not in self.groups:
            return {"ok": False, "error": "no_such_subteam"}
        return {"ok": True, "users": self.groups[group]}

    def _early_answer(self, path: str) -> tuple[int, dict[str, Any] | str] | None:
        if self.rate_limit_next > 0:
            self.rate_limit_next -= 1
            return 429, {"ok": False, "error": "ratelimited"}
        if (status := self.fail_next.pop(path, None)) is not None:
            return status, {"ok": False, "error": "internal_error"}
        return None

    def _post(self, channel: str, body: dict[str, Any]) -> dict[str, Any]:
        thread_ts = body.get("thread_ts")
        if thread_ts is not None and not any(m.ts == thread_ts and m.channel == channel for m in self.messages):
            return {"ok": False, "error": "thread_not_found"}
        ts = f"1700000000.{len(self.messages) + 1:06d}"
        self.messages.append(Posted(channel, ts, body.get("text", ""), body.get("blocks", []), thread_ts))
        return {"ok": True, "channel": channel, "ts": ts, "message": {"text": body.get("text", "")}}

    def _update(self, channel: str, body: dict[str, Any]) -> dict[str, Any]:
        for message in self.messages:
            if message.channel == channel and message.ts == body.get("ts"):
                message.text, message.blocks = body.get("text", ""), body.get("blocks", [])
                message.updates += 1
                return {"ok": True, "channel": channel, "ts": message.ts, "text": message.text}
        return {"ok": False, "error": "message_not_found"}

    def _record(
        self, path: str, auth: str, body: dict[str, Any], status: int, answer: dict[str, Any] | str
    ) -> web.Response:
        self.calls.append(Call(path, auth, body, status, answer))
        headers = {"Retry-After": str(self.retry_after)} if status == 429 else {}
        if isinstance(answer, str):
            return web.Response(status=status, text=answer, headers=headers)
        return web.Response(status=status, text=json.dumps(answer), content_type="application/json", headers=headers)
