"""uvicorn's httptools protocol with a deadline for receiving each request.

A connection costs the event loop nothing while it waits, so slow and idle clients cannot starve
the server the way they starve a thread per connection. They still hold a socket each, so every
request must arrive in full, headers and body, within REQUEST_TIMEOUT seconds of its first byte
(or of the connection, for the first request). Past that, a request that had begun is answered
408 and its connection closed; a connection that never sent a byte is just closed. Between
requests on a kept-alive connection, uvicorn's own keep-alive timeout applies, and any byte (a bare
CRLF, which starts no request) arms the deadline again, so no trickle keeps a connection open.

Two bounds the parser does not keep: a request's head (its request line and headers) may hold
MAX_HEAD_BYTES and MAX_HEADERS, else it is answered 431 and the connection closed before the rest
arrives; and a client may pipeline at most MAX_PIPELINED requests ahead of the answers it reads,
else its connection is closed, so unread answers cannot pile up in a worker's memory.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Optional

import httptools  # noqa: F401 - the parser under this protocol (uvicorn's optional extra): a missing pin fails here, at start
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

log = logging.getLogger("model_server")


#: The largest request line and headers together; a proxy's limits are of this order (ALB: 64 KiB).
MAX_HEAD_BYTES = 64 * 1024
MAX_HEADERS = 100
#: Requests a connection may send ahead of the answers it has read.
MAX_PIPELINED = 32


def _closing_response(status: bytes, error: bytes) -> bytes:
    body = b'{"error":"%s"}' % error
    return (b"HTTP/1.1 " + status + b"\r\ncontent-type: application/json\r\nconnection: close\r\n"
            b"content-length: %d\r\n\r\n%s" % (len(body), body))


def _timeout_response(seconds: float) -> bytes:
    return _closing_response(b"408 Request Timeout", b"the request did not arrive within %d s (REQUEST_TIMEOUT)" % round(seconds))


_HEAD_TOO_LARGE = _closing_response(
    b"431 Request Header Fields Too Large",
    b"the request line and headers may hold %d bytes and %d headers" % (MAX_HEAD_BYTES, MAX_HEADERS))


def deadline_protocol(request_timeout: float) -> type:
    """The protocol class for one worker, with its REQUEST_TIMEOUT."""
    response = _timeout_response(request_timeout)

    class DeadlineHttpToolsProtocol(HttpToolsProtocol):
        _deadline: Optional[asyncio.TimerHandle] = None
        _receiving = False
        #: Bytes received since the last request's head was complete, and headers of this one.
        _head_bytes = 0
        _head_lines = 0
        _head_done = False
        _headers = 0
        _refused = False
        _tail = b""

        def connection_made(self, transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            if self._deadline is None:
                self._arm()
            if not self._head_done and self._head_over_bounds(data):
                # Judged before the parser sees the bytes: it would buffer a header of any size.
                why = f"its request line and headers exceed {MAX_HEAD_BYTES} bytes or {MAX_HEADERS} headers"
                self._refuse(_HEAD_TOO_LARGE, why)
                return
            super().data_received(data)
            if len(self.pipeline) > MAX_PIPELINED:
                self._refuse(None, "it pipelined more than %d requests ahead of the answers it read" % MAX_PIPELINED)

        def _head_over_bounds(self, data: bytes) -> bool:
            """Counts the bytes and lines of the head in `data` (up to the blank line that ends it)."""
            joined = self._tail + data
            end = joined.find(b"\r\n\r\n")
            head = joined[len(self._tail):] if end < 0 else joined[len(self._tail):max(len(self._tail), end + 4)]
            self._tail = joined[-3:]
            self._head_bytes += len(head)
            self._head_lines += head.count(b"\r\n")
            return self._head_bytes > MAX_HEAD_BYTES or self._head_lines > MAX_HEADERS + 2

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._receiving = True
            self._headers = 0
            if self._deadline is None:
                self._arm()

        def on_header(self, name: bytes, value: bytes) -> None:
            self._headers += 1
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            if self._headers > MAX_HEADERS:
                self._refused = True  # answered 431 once this chunk is parsed; no request starts
                return
            self._head_done = True
            super().on_headers_complete()

        def on_body(self, body: bytes) -> None:
            if not self._refused:
                super().on_body(body)

        def on_message_complete(self) -> None:
            if self._refused:
                return
            self._receiving = False
            self._head_done = False
            self._head_bytes = self._head_lines = 0
            self._tail = b""
            self._disarm()
            super().on_message_complete()
            # Requests queued behind this one wait for their answers to be read: that too must
            # happen within the deadline, or a client that never reads holds the connection.
            if self.pipeline:
                self._arm()

        def _refuse(self, answer: Optional[bytes], why: str) -> None:
            self._refused = True
            self._disarm()
            if answer is not None and not self.transport.is_closing():
                self.transport.write(answer)
            log.warning("closing the connection from %s: %s", self.client[0] if self.client else "?", why)
            if answer is None:
                self.transport.abort()  # a client that does not read its answers would never let them flush
            else:
                self.transport.close()

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
            elif self.pipeline:
                # Answers queued for a client that does not read them: nothing to flush, drop it.
                log.warning("closing the connection from %s: it did not read its answers within %.0f s",
                            self.client[0] if self.client else "?", request_timeout)
                self.transport.abort()
            else:
                self.transport.close()

    return DeadlineHttpToolsProtocol
