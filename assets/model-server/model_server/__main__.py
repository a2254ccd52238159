"""`python -m model_server`: serve the model in $MODEL_DIR on $PORT under gunicorn."""

from __future__ import annotations

import logging
import sys

from .model_loader import ModelNotFoundError, find_model_file
from .runner import configure_logging, run
from .settings import Settings, SettingsError

log = logging.getLogger("model_server")


def main() -> int:
    configure_logging()
    try:
        settings = Settings.from_env()
        model_path = find_model_file(settings.model_dir, settings.model_file)
    except (SettingsError, ModelNotFoundError) as err:
        log.error("cannot start: %s", err)
        return 2
    log.info(
        "serving %s on %s:%d with %d worker(s) x %d thread(s)",
        model_path, settings.host, settings.port, settings.workers, settings.threads,
    )
    run(settings, model_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
