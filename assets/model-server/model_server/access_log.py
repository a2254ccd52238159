"""One structured (JSON) access-log line per request, readable as fields in CloudWatch Logs Insights."""

from __future__ import annotations

import json
import time
from typing import Optional

from .line_writer import LineWriter


class AccessLog:
    def __init__(self, model_version: str, writer: Optional[LineWriter] = None):
        self._version = model_version
        self._writer = writer or LineWriter()

    def write(self, client: Optional[tuple], method: str, path: str, status: int, size: int,
              seconds: float, user_agent: Optional[bytes], forwarded_for: Optional[bytes], shed: bool = False) -> None:
        record = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "remote": client[0] if client else None,
            "forwarded_for": forwarded_for.decode("latin-1") if forwarded_for else None,
            "method": method,
            "path": path,
            "status": status,
            "bytes": size,
            "duration_ms": round(seconds * 1000, 3),
            "user_agent": user_agent.decode("latin-1") if user_agent else None,
            "model_version": self._version,
        }
        if shed:
            record["shed"] = True  # refused at MAX_CONCURRENT_REQUESTS
        self._writer.write(json.dumps(record, separators=(",", ":")))
