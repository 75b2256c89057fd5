"""A fake Slack on loopback: the Web API's ``chat.postMessage`` and ``chat.update``, and webhook endpoints.

A real aiohttp server in the test's event loop, so slack_sdk talks HTTP to it exactly as to Slack (pointed at it
with ``base_url``). It checks the bearer token the way Slack does (HTTP 200, ``ok: false``, ``invalid_auth``),
keeps the messages it accepted (so a test sees the channel as people would: parents, threads, updates), records
every call, and can be told to answer the next calls with HTTP 429 and a ``Retry-After`` or with an error.

``/hooks/<key>`` answers like a Slack incoming webhook (``ok``); ``/webhook`` accepts any JSON POST.
"""

from __future__ import annotations

import json
import socket
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
    _runner: web.AppRunner | None = None
    _port: int = 0

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
        app.router.add_post("/api/{method}", self._api)
        app.router.add_post("/hooks/{key:.*}", self._hook)
        app.router.add_post("/webhook", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self._port))  # the same port again after stop(): a restarted Slack
        self._port = sock.getsockname()[1]
        await web.SockSite(self._runner, sock).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        body = await request.json()
        auth = request.headers.get("Authorization", "")
        if (early := self._early_answer(request.path)) is not None:
            return self._record(request.path, auth, body, *early)
        if auth != f"Bearer {self.token}":
            return self._record(request.path, auth, body, 200, {"ok": False, "error": "invalid_auth"})
        channel = CHANNEL_IDS.get(body.get("channel", ""), body.get("channel", ""))
        if channel not in CHANNEL_IDS.values():
            return self._record(request.path, auth, body, 200, {"ok": False, "error": "channel_not_found"})
        if method == "chat.postMessage":
            return self._record(request.path, auth, body, 200, self._post(channel, body))
        if method == "chat.update":
            return self._record(request.path, auth, body, 200, self._update(channel, body))
        return self._record(request.path, auth, body, 200, {"ok": False, "error": "unknown_method"})

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.json()
        if (early := self._early_answer(request.path)) is not None:
            return self._record(request.path, "", body, *early)
        return self._record(request.path, "", body, 200, "ok")

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
