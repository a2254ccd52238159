"""gunicorn's threaded worker, with a deadline for receiving each request.

The gthread worker hands a connection to a thread once its first bytes arrive, and the thread
then reads the rest with blocking reads. A client that trickles its request a byte at a time
would hold that thread for as long as it likes; enough of them would leave no thread to serve
anyone else. Here each request must arrive in full within REQUEST_TIMEOUT seconds (headers and
body together), or its connection is closed and the thread is free again.
"""

from __future__ import annotations

import logging
import os
import socket
import time

from gunicorn.http.errors import NoMoreData
from gunicorn.workers.gthread import ThreadWorker

log = logging.getLogger("model_server")


class DeadlineSocket:
    """Wraps a client socket so every recv() counts against one deadline per request."""

    def __init__(self, sock: socket.socket, client):
        self._sock = sock
        self._client = client
        self._deadline = float("inf")
        self._limit = 0.0

    def start_request(self, seconds: float) -> None:
        self._limit = seconds
        self._deadline = time.monotonic() + seconds

    def recv(self, size: int) -> bytes:
        remaining = self._deadline - time.monotonic()
        if remaining <= 0:
            self._too_slow()
        self._sock.settimeout(remaining)
        try:
            return self._sock.recv(size)
        except socket.timeout:
            self._too_slow()
        finally:
            self._sock.settimeout(None)

    def _too_slow(self):
        log.warning("closing the connection from %s: its request did not arrive within %.0f s", self._client, self._limit)
        self._deadline = float("inf")
        raise NoMoreData(b"")

    def __getattr__(self, name):
        return getattr(self._sock, name)


class DeadlineThreadWorker(ThreadWorker):
    request_timeout = float(os.environ.get("REQUEST_TIMEOUT", "10"))

    def handle(self, conn):
        unreader = conn.parser.unreader
        if not isinstance(unreader.sock, DeadlineSocket):
            unreader.sock = DeadlineSocket(unreader.sock, conn.client)
        unreader.sock.start_request(self.request_timeout)
        return super().handle(conn)
