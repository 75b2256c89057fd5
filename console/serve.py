"""Serving the console: alone (``gameday console``) or beside a worker in one event loop (``gameday dev``)."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator

import uvicorn

from gameday.config.app import GamedayConfig
from gameday.console.app import build_app
from gameday.console.auth import ConsoleAuth


class _Beside(uvicorn.Server):
    """A uvicorn server that leaves SIGINT/SIGTERM to its host (the worker of ``gameday dev`` handles them)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def bound(host: str, port: int) -> socket.socket:
    """The listening socket, bound now, so a port already taken is one line and not uvicorn's exit.

    Raises:
        OSError: the port cannot be bound.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    sock.listen(128)
    return sock


def beside(config: GamedayConfig, auth: ConsoleAuth) -> uvicorn.Server:
    """A console server for a loop someone else runs: start it with ``serve(sockets=[bound(...)])``, end it by
    setting ``should_exit``."""
    settings = uvicorn.Config(build_app(config, auth), log_level="warning", lifespan="off")
    return _Beside(settings)
