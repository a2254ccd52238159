"""`python -m model_server`: serve the model in $MODEL_DIR on $PORT."""

from __future__ import annotations

import logging
import sys

from .loaders import model_suffixes
from .model_files import ModelNotFoundError, find_model_file
from .runner import configure_logging, run
from .settings import Settings, SettingsError
from .start_failure import report_start_failure

log = logging.getLogger("model_server")


def main() -> int:
    try:
        settings = Settings.from_env()
    except SettingsError as err:
        configure_logging("info")
        log.error("cannot start: %s", err)
        report_start_failure(f"cannot start: {err}")
        return 2
    configure_logging(settings.log_level)
    try:
        model_path = find_model_file(settings.model_dir, model_suffixes(), settings.model_file)
    except ModelNotFoundError as err:
        log.error("cannot start: %s", err)
        report_start_failure(f"cannot start: {err}")
        return 2
    log.info(
        "serving %s (version %s) on %s:%d%s with %d worker(s)%s",
        model_path, settings.model_version, settings.host, settings.port, settings.route("/predict"), settings.workers,
        f", {settings.gpu_count} GPU(s)" if settings.gpu_count else "",
    )
    run(settings, model_path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
