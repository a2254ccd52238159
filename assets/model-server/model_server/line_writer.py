"""Whole lines to stdout from several threads: the access log (event loop), EMF (its own thread)."""

from __future__ import annotations

import sys
import threading
from typing import Optional, TextIO


class LineWriter:
    def __init__(self, stream: Optional[TextIO] = None):
        self._stream = stream
        self._lock = threading.Lock()

    def write(self, line: str) -> None:
        """Writes `line` and a newline as one unit; never raises (logging must not fail a request)."""
        stream = self._stream or sys.stdout
        try:
            with self._lock:
                stream.write(line + "\n")
        except Exception:  # logging must never fail a request
            pass
