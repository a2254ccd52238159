"""Every error the server answers, and its HTTP status: one table. Each answer is a JSON body
{"error": "<what is wrong>"}; anything not in the table is a 500 that names only the error's type
(the traceback goes to the log, never to the client)."""

from __future__ import annotations

from typing import Tuple

from .prediction import ModelInputError


class ClientError(Exception):
    """A request the client must fix."""

    status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class NotFound(ClientError):
    status = 404


class MethodNotAllowed(ClientError):
    status = 405

    def __init__(self, message: str, allow: str):
        super().__init__(message)
        self.allow = allow


class BodyTooLarge(ClientError):
    status = 413


class UnsupportedMediaType(ClientError):
    status = 415


class NotReady(Exception):
    """The worker's model is not loaded yet."""


class Overloaded(Exception):
    """The worker is at its share of MAX_CONCURRENT_REQUESTS: refused at once, never queued."""

    #: Seconds a client should wait before it retries (the Retry-After header).
    retry_after = 1


#: Errors raised by other modules, and the status each is answered with.
_STATUS = (
    (ModelInputError, 400),
    (NotReady, 503),
    (Overloaded, 503),
)


def status_and_message(err: BaseException) -> Tuple[int, str]:
    if isinstance(err, ClientError):
        return err.status, err.message
    for cls, status in _STATUS:
        if isinstance(err, cls):
            return status, str(err)
    return 500, f"internal error: {type(err).__name__}"
