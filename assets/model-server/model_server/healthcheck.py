"""Container health check: exits 0 when this container's health route answers 200."""

from __future__ import annotations

import sys
import urllib.request

from .settings import Settings

#: Within the Dockerfile's and the task definition's --timeout.
_TIMEOUT_SECONDS = 3


def main() -> int:
    settings = Settings.from_env()
    url = f"http://127.0.0.1:{settings.port}{settings.route(settings.health_path)}"
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT_SECONDS) as response:
            return 0 if response.status == 200 else 1
    except Exception as err:  # any failure means unhealthy
        print(f"healthcheck: {url}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
