"""uvicorn's httptools protocol with a deadline for receiving each request.

A connection costs the event loop nothing while it waits, so slow and idle clients cannot starve
the server the way they starve a thread per connection. They still hold a socket each, so every
request must arrive in full, headers and body, within REQUEST_TIMEOUT seconds of its first byte
(or of the connection, for the first request). Past that, a request that had begun is answered
408 and its connection closed; a connection that never sent a byte is just closed. Between
requests on a kept-alive connection, uvicorn's own keep-alive timeout applies.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Optional

import httptools  # noqa: F401 - the parser under this protocol (uvicorn's optional extra): a missing pin fails here, at start
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("model_server")


def _timeout_response(seconds: float) -> bytes:
    body = b'{"error":"the request did not arrive within %d s (REQUEST_TIMEOUT)"}' % round(seconds)
    return (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(body), body))


def deadline_protocol(request_timeout: float) -> type:
    """The protocol class for one worker, with its REQUEST_TIMEOUT."""
    response = _timeout_response(request_timeout)

    class DeadlineHttpToolsProtocol(HttpToolsProtocol):
        _deadline: Optional[asyncio.TimerHandle] = None
        _receiving = False

        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._receiving = True
            if self._deadline is None:
                self._arm()

        def on_message_complete(self) -> None:
            self._receiving = False
            self._disarm()
            super().on_message_complete()

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

        def _arm(self) -> None:
            self._deadline = self.loop.call_later(request_timeout, self._expired)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _expired(self) -> None:
            self._deadline = None
            if self.transport.is_closing():
                return
            cycle = self.cycle
            # An answer already under way (a 413 draining the rest of its body) is just cut off.
            answering = cycle is not None and cycle.response_started and not cycle.response_complete
            if self._receiving:
                if not answering:
                    self.transport.write(response)
                log.warning("closing the connection from %s: its request did not arrive within %.0f s",
                            self.client[0] if self.client else "?", request_timeout)
            self.transport.close()

    return DeadlineHttpToolsProtocol
