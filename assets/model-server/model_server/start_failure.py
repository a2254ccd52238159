"""The structured line with which the server reports that it cannot start serving: beside the
human-readable log line, a JSON line whose field and value come from contract.json, which the
start-failure alarm's metric filter matches. A client can put any words into the access log, but
never this field: the access log's fields are the server's own."""

from __future__ import annotations

import json
import sys

from .settings import CONTRACT


def report_start_failure(reason: str) -> None:
    marker = CONTRACT["startFailure"]
    record = {marker["field"]: marker["value"], "container": "server", "reason": reason}
    sys.stdout.write(json.dumps(record, separators=(",", ":")) + "\n")
    sys.stdout.flush()
