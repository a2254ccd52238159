"""Container health check: exits 0 when GET /health on this container answers 200."""

from __future__ import annotations

import os
import sys
import urllib.request


def main() -> int:
    url = f"http://127.0.0.1:{os.environ.get('PORT', '8080')}/health"
    try:
        with urllib.request.urlopen(url, timeout=float(os.environ.get("HEALTHCHECK_TIMEOUT", "3"))) as response:
            return 0 if response.status == 200 else 1
    except Exception as err:  # noqa: BLE001 - any failure means unhealthy
        print(f"healthcheck: {url}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
