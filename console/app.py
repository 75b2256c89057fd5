"""The console's Starlette app: pages rendered on the server from Jinja2 templates, actions as plain HTML forms.

Every asset is served from ``console/static``; no page loads anything from elsewhere. Actions (POST) answer 403
unless ``GAMEDAY_CONSOLE_ACTIONS`` enables them and a person is signed in (``console/auth.py``); each one sends
its signal with ``by`` = "USER via console" and is logged with the client's address.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates
from temporalio.client import Client

from gameday.config.app import GamedayConfig
from gameday.console import live
from gameday.console.auth import COOKIE, ConsoleAuth
from gameday.console.trend import trend_svg

HERE = Path(__file__).parent
log = logging.getLogger("gameday.console")
MAX_REASON = 500
CSP = "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'"
"""Nothing loads from elsewhere, whatever a run's text holds (the report's own styles are inline)."""
VERDICT_NAMES = ("RESILIENT", "DEVIATED", "NOT_STEADY", "ABORTED", "NOT_RECOVERED", "ERROR", "INCONCLUSIVE")


class Forbidden(Exception):
    pass


class Console:
    """The app's state: configuration, who may do what, one Temporal client made on first use."""

    def __init__(self, config: GamedayConfig, auth: ConsoleAuth) -> None:
        self.config = config
        self.auth = auth
        self._client: Client | None = None
        self._lock = asyncio.Lock()
        self.templates = Jinja2Templates(directory=str(HERE / "templates"))
        self._store: Any = None

    async def client(self) -> Client:
        async with self._lock:
            if self._client is None:
                from gameday.worker.client import connect

                self._client = await connect(self.config)
            return self._client

    @property
    def store(self) -> Any:
        if self._store is None:
            from gameday.activities.store import Store

            self._store = Store(self.config.resolved_database_url)
        return self._store

    async def trend(self, drill: str, team: str | None) -> str:
        from gameday.activities.history import load_history

        found = await asyncio.to_thread(load_history, self.store, drill, team=team, limit=50)
        return trend_svg(found)

    # --- requests -----------------------------------------------------------------------------------------------

    def user(self, request: Request) -> str | None:
        return self.auth.who(request.headers.get("authorization"), request.cookies.get(COOKIE))

    def page(self, request: Request, name: str, **context: Any) -> Response:
        user = self.user(request)
        context.update(
            request=request,
            user=user,
            may={a: self.auth.may(user, a) for a in ("stop", "approve", "freeze", "schedules")},
            auth_required=self.auth.required,
            flash=request.query_params.get("said", ""),
            ui_url=self.config.ui_url,
        )
        context.setdefault("workflow_url", self.config.workflow_url)
        return self.templates.TemplateResponse(request, name, context)

    async def form(self, request: Request) -> dict[str, str]:
        body = (await request.body())[:16384].decode(errors="replace")
        return {k: v[0] for k, v in parse_qs(body).items()}

    def actor(self, request: Request, action: str) -> str:
        """The ``by`` of an action: "alice via console"; raises :class:`Forbidden` when it is not allowed."""
        user = self.user(request)
        if not self.auth.may(user, action):
            where = request.client.host if request.client else "?"
            log.warning("refused %s from %s (user %s): not enabled for this console", action, where, user or "-")
            raise Forbidden(action)
        return f"{user} via console"

    def record(self, request: Request, by: str, what: str) -> None:
        where = request.client.host if request.client else "?"
        log.warning("%s from %s: %s", by, where, what)


def _reason(form: dict[str, str]) -> str:
    return form.get("reason", "").strip()[:MAX_REASON]


def _back(path: str, said: str) -> RedirectResponse:
    return RedirectResponse(f"{path}?said={quote(said)}", status_code=303)


def build_app(config: GamedayConfig, auth: ConsoleAuth) -> Starlette:
    console = Console(config, auth)

    async def now(request: Request) -> Response:
        frozen: list[str] = []
        try:
            client = await console.client()
            runs = await live.running(client, config.task_queue)
            frozen = await _frozen(client, config.task_queue)
            problem = ""
        except Exception as err:
            runs, problem = [], f"cannot reach Temporal at {config.temporal_address}: {type(err).__name__}: {err}"
        return console.page(request, "now.html", runs=runs, frozen=frozen, problem=problem, tab="now")

    async def stop_form(request: Request) -> Response:
        return console.page(request, "stop.html", run_id=request.path_params["run_id"], tab="now")

    async def stop(request: Request) -> Response:
        by = console.actor(request, "stop")
        run_id = request.path_params["run_id"]
        reason = _reason(await console.form(request))
        if not reason:
            return _back(f"/runs/{quote(run_id)}/stop", "say why: the reason is stored with the run")
        client = await console.client()
        stop_request = {"reason": reason, "by": by, "sent_at": datetime.now(UTC).isoformat()}
        refused = await _signal(client, run_id, "emergency_stop", stop_request)
        if refused:
            return _back("/", refused)
        console.record(request, by, f"stop {run_id}: {reason}")
        return _back("/", f"stop sent to {run_id}")

    async def stop_all(request: Request) -> Response:
        by = console.actor(request, "stop")
        reason = _reason(await console.form(request))
        if not reason:
            return _back("/", "say why: the reason is stored with every run")
        from gameday.cli.freeze import running_runs

        client = await console.client()
        stop_request = {"reason": reason, "by": by, "sent_at": datetime.now(UTC).isoformat()}
        count = 0
        for kind in ("GameDayWorkflow", "DrillWorkflow"):  # game days first: none starts its next step
            handles = await running_runs(client, config.task_queue, kind, None)
            await asyncio.gather(*(h.signal("emergency_stop", stop_request) for h in handles), return_exceptions=True)
            count += len(handles)
        console.record(request, by, f"stop all ({count}): {reason}")
        return _back("/", f"stop sent to {count} run(s)")

    async def freeze(request: Request) -> Response:
        by = console.actor(request, "freeze")
        form = await console.form(request)
        reason = _reason(form)
        team = form.get("team", "").strip() or None
        if not reason:
            return _back("/", "say why: the reason is stored with the freeze and every run it stops")
        from gameday.model.freeze_names import ALL_TEAMS

        if team == ALL_TEAMS:  # as `gameday freeze --team '*'`: name one team, or leave it empty for all
            return _back("/", f"team {ALL_TEAMS!r}: name one team, or leave it empty for every team")
        from gameday.cli.freeze import freeze_runs

        # As `gameday freeze`: recorded first, then every run in scope stopped, looked for twice.
        stopped = (await freeze_runs(await console.client(), config.task_queue, reason, by, team)).stopped
        console.record(request, by, f"freeze {team or 'every team'}: {reason}; stopped {len(stopped)}")
        return _back("/", f"frozen ({team or 'every team'}): {len(stopped)} run(s) stopping")

    async def unfreeze(request: Request) -> Response:
        by = console.actor(request, "freeze")
        form = await console.form(request)
        team = form.get("team", "").strip() or None
        from gameday.model.freeze_names import freeze_workflow_id

        refused = await _signal(
            await console.client(), freeze_workflow_id(config.task_queue), "unfreeze", {"by": by, "team": team}
        )
        if refused:
            return _back("/", "nothing is frozen on this task queue")
        console.record(request, by, f"unfreeze {team or 'every team'}")
        return _back("/", "freeze lifted")

    async def runs(request: Request) -> Response:
        from gameday.cli.dates import parse_range

        q = request.query_params
        filters = {k: q.get(k, "").strip() for k in ("team", "drill", "verdict", "since", "until")}
        problem = ""
        found: list[Any] = []
        try:
            start, end = parse_range(filters["since"] or None, filters["until"] or None, now=datetime.now(UTC))
            found = await asyncio.to_thread(
                console.store.list_runs,
                team=filters["team"] or None,
                drill=filters["drill"] or None,
                verdict=filters["verdict"].upper() or None,
                since=start,
                until=end,
                limit=min(int(q.get("limit", "100") or 100), 500),
            )
        except ValueError as err:
            problem = str(err)
        trends: list[tuple[str, str]] = []
        if filters["drill"]:
            trends.append((filters["drill"], await console.trend(filters["drill"], filters["team"] or None)))
        return console.page(
            request,
            "runs.html",
            runs=found,
            filters=filters,
            verdicts=VERDICT_NAMES,
            problem=problem,
            trends=trends,
            tab="runs",
        )

    async def run(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        record = await asyncio.to_thread(console.store.get, run_id)
        if record is None:
            return console.page(request, "missing.html", run_id=run_id, tab="runs")
        return console.page(
            request,
            "run.html",
            record=record,
            trend=await console.trend(record.drill_name, None),
            ui_link=config.workflow_url(run_id),
            tab="runs",
        )

    async def run_report(request: Request) -> Response:
        from gameday.report.html import render_html

        run_id = request.path_params["run_id"]
        record = await asyncio.to_thread(console.store.get, run_id)
        if record is None:
            return PlainTextResponse(f"no run {run_id} recorded", status_code=404)
        return HTMLResponse(render_html(record, config.workflow_url(run_id)))

    async def schedules(request: Request) -> Response:
        problem = ""
        rows: list[live.ScheduleRow] = []
        try:
            rows = await live.schedules(await console.client())
        except Exception as err:
            problem = f"cannot list schedules: {type(err).__name__}: {err}"
        return console.page(request, "schedules.html", schedules=rows, problem=problem, tab="schedules")

    async def schedule_action(request: Request) -> Response:
        by = console.actor(request, "schedules")
        schedule_id, verb = request.path_params["schedule_id"], request.path_params["verb"]
        handle = (await console.client()).get_schedule_handle(schedule_id)
        if verb == "pause":
            await handle.pause(note=f"paused by {by}")
        elif verb == "resume":
            await handle.unpause(note=f"resumed by {by}")
        elif verb == "trigger":
            from gameday.activities import schedule_times

            desc = await handle.describe()
            blackout = schedule_times.blackout_now(desc.schedule.spec, list((await desc.memo()).get("blackouts", [])))
            if blackout:
                return _back("/schedules", f"not triggered: now is in blackout {blackout} of {schedule_id}")
            await handle.trigger()
        else:
            return PlainTextResponse("unknown action", status_code=404)
        console.record(request, by, f"schedule {verb} {schedule_id}")
        return _back("/schedules", f"{verb} sent to {schedule_id}")

    async def approvals(request: Request) -> Response:
        problem = ""
        waiting: list[live.LiveRun] = []
        try:
            waiting = [r for r in await live.running(await console.client(), config.task_queue) if r.awaiting_approval]
        except Exception as err:
            problem = f"cannot reach Temporal at {config.temporal_address}: {type(err).__name__}"
        return console.page(request, "approvals.html", waiting=waiting, problem=problem, tab="approvals")

    async def approve(request: Request) -> Response:
        by = console.actor(request, "approve")
        run_id = request.path_params["run_id"]
        note = _reason(await console.form(request))
        refused = await _signal(await console.client(), run_id, "approve", {"by": by, "note": note})
        if refused:
            return _back("/approvals", refused)
        console.record(request, by, f"approve {run_id}: {note}")
        return _back("/approvals", f"approved {run_id}")

    async def reject(request: Request) -> Response:
        # The workflow has no reject signal: a rejection is a stop before anything is injected ("rejected by").
        by = console.actor(request, "approve")
        run_id = request.path_params["run_id"]
        note = _reason(await console.form(request))
        user = by.removesuffix(" via console")
        stop_request = {
            "reason": f"rejected by {user}" + (f": {note}" if note else ""),
            "by": by,
            "sent_at": datetime.now(UTC).isoformat(),
        }
        refused = await _signal(await console.client(), run_id, "emergency_stop", stop_request)
        if refused:
            return _back("/approvals", refused)
        console.record(request, by, f"reject {run_id}: {note}")
        return _back("/approvals", f"rejected {run_id}: it ends ABORTED with nothing injected")

    async def login_form(request: Request) -> Response:
        return console.page(request, "login.html", tab="login", failed=False)

    async def login(request: Request) -> Response:
        form = await console.form(request)
        user, secret = form.get("user", ""), form.get("password", "")
        if not auth.check_password(user, secret):
            response = console.page(request, "login.html", tab="login", failed=True)
            response.status_code = 401
            return response
        response = RedirectResponse("/", status_code=303)
        response.set_cookie(COOKIE, auth.cookie_for(user), httponly=True, samesite="strict")
        return response

    async def logout(request: Request) -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    routes = [
        Route("/", now),
        Route("/runs", runs),
        Route("/runs/{run_id}", run),
        Route("/runs/{run_id}/report", run_report),
        Route("/runs/{run_id}/stop", stop_form, methods=["GET"]),
        Route("/runs/{run_id}/stop", stop, methods=["POST"]),
        Route("/runs/{run_id}/approve", approve, methods=["POST"]),
        Route("/runs/{run_id}/reject", reject, methods=["POST"]),
        Route("/stop-all", stop_all, methods=["POST"]),
        Route("/freeze", freeze, methods=["POST"]),
        Route("/unfreeze", unfreeze, methods=["POST"]),
        Route("/schedules", schedules),
        Route("/schedules/{schedule_id}/{verb}", schedule_action, methods=["POST"]),
        Route("/approvals", approvals),
        Route("/login", login_form, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Mount("/static", StaticFiles(directory=str(HERE / "static")), name="static"),
    ]

    async def forbidden(request: Request, exc: Exception) -> Response:
        return PlainTextResponse(
            f"403: {exc} is not enabled for you on this console (GAMEDAY_CONSOLE_ACTIONS, and sign in)",
            status_code=403,
        )

    async def gate(request: Request, call_next: RequestResponseEndpoint) -> Response:
        started = time.perf_counter()
        if request.method == "POST" and _foreign(request):
            return PlainTextResponse("403: a request from another site's page is refused", status_code=403)
        open_paths = request.url.path in ("/login", "/logout") or request.url.path.startswith("/static/")
        if auth.required and not open_paths and console.user(request) is None:
            if request.method == "GET" and "text/html" in request.headers.get("accept", ""):
                return RedirectResponse("/login", status_code=303)
            return PlainTextResponse(
                "401: sign in (login form, basic auth or bearer token)",
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="gameday console"'},
            )
        response = await call_next(request)
        response.headers["X-Render-Seconds"] = f"{time.perf_counter() - started:.4f}"
        response.headers["Content-Security-Policy"] = CSP
        return response

    app = Starlette(
        routes=routes,
        exception_handlers={Forbidden: forbidden},
        middleware=[Middleware(BaseHTTPMiddleware, dispatch=gate)],
    )
    app.state.console = console
    return app


async def _signal(client: Client, run_id: str, name: str, arg: Mapping[str, str | None]) -> str:
    """Send ``name`` to the run; empty when sent, else why not (a run that ended or never was: nothing sent)."""
    from temporalio.service import RPCError, RPCStatusCode

    try:
        await client.get_workflow_handle(run_id).signal(name, arg)
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return f"{run_id} is not running (finished, or no such run): nothing was sent"
        raise
    return ""


def _foreign(request: Request) -> bool:
    """A POST sent by a page of another site (its Origin is not this console's): a browser holding basic-auth
    credentials would send them along, so such a request is refused whoever it claims to be."""
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin == "null"
    return origin.rstrip("/") != f"{request.url.scheme}://{request.url.netloc}"


async def _frozen(client: Client, task_queue: str) -> list[str]:
    from gameday.cli.freeze import freshest_state, frozen_lines

    try:
        return frozen_lines(await freshest_state(client, task_queue))
    except Exception:
        return []
