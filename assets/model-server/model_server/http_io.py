"""ASGI request and response primitives for the routes: JSON answers, and request bodies read
under a size limit."""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable, Iterable, List, Optional, Tuple

from .errors import BodyTooLarge

Scope = dict
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]
Headers = List[Tuple[bytes, bytes]]

_JSON = (b"content-type", b"application/json")
_CLOSE = (b"connection", b"close")


def header(scope: Scope, name: bytes) -> Optional[bytes]:
    """A request header's value (names arrive lower-cased), or None."""
    for key, value in scope["headers"]:
        if key == name:
            return value
    return None


def json_bytes(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


async def send_bytes(send: Send, status: int, body: bytes, content_type: bytes = b"application/json",
                     extra: Iterable[Tuple[bytes, bytes]] = ()) -> int:
    """A whole response in one write; returns the body's size for the access log."""
    headers = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
    return len(body)


class ClientGone(Exception):
    """The client closed the connection before its request arrived in full."""


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """The request body, at most `limit` bytes; a larger one raises BodyTooLarge, whether it
    declares its length or is chunked. The read deadline (REQUEST_TIMEOUT) is the connection's:
    see DeadlineHttpToolsProtocol."""
    declared = header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge(f"request body is larger than the {limit}-byte limit")
    message = await receive()
    if message["type"] == "http.disconnect":
        raise ClientGone()
    body = message.get("body", b"")
    if not message.get("more_body", False):
        if len(body) > limit:
            raise BodyTooLarge(f"request body is larger than the {limit}-byte limit")
        return body  # the usual case: the whole body arrived with the headers
    chunks = [body]
    size = len(body)
    while message.get("more_body", False):
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"request body is larger than the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


async def send_too_large(scope: Scope, receive: Receive, send: Send, message: str, drain_limit: int) -> int:
    """Answers 413 so that every client can read it, then closes the connection.

    A client that writes its whole body before it reads (Python's http.client, urllib and
    requests do) would meet a reset instead of the answer if the server closed the connection
    while the body was still arriving. So the whole answer is sent at once (its Content-Length
    says it is complete, so a client reading early has it), the rest of the body is read and
    discarded up to `drain_limit` bytes (and within the connection's read deadline), and only
    then is the connection closed. A client that keeps sending past that is cut off.
    """
    body = json_bytes({"error": message})
    headers = [_JSON, (b"content-length", str(len(body)).encode()), _CLOSE]
    await send({"type": "http.response.start", "status": 413, "headers": headers})
    expects_continue = (header(scope, b"expect") or b"").lower() == b"100-continue"
    if expects_continue:
        # The client waits for "100 Continue" before sending the body: it never gets it, and
        # reading now would send it.
        await send({"type": "http.response.body", "body": body})
        return len(body)
    await send({"type": "http.response.body", "body": body, "more_body": True})
    drained = 0
    while drained <= drain_limit:
        event = await receive()
        if event["type"] != "http.request":
            break
        drained += len(event.get("body", b""))
        if not event.get("more_body", False):
            break
    await send({"type": "http.response.body", "body": b""})
    return len(body)
