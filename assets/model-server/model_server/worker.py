"""The gunicorn worker: one uvicorn server on uvloop per worker process.

gunicorn stays the process manager (one worker per vCPU or GPU, restarts, graceful SIGTERM,
the hooks that give each worker its slot); each worker serves the ASGI app on an event loop.
This plays the part of uvicorn's own UvicornWorker, which current uvicorn deprecates.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import uvicorn
import uvloop
from gunicorn.arbiter import Arbiter
from gunicorn.workers.base import Worker

from .deadline_protocol import deadline_protocol
from .worker_slots import visible_device


class ModelServerWorker(Worker):
    def init_process(self) -> None:
        # Before the app (and with it PyTorch) is loaded: this worker sees its one GPU only.
        slot = getattr(self, "slot", 0)
        device = visible_device(slot, self.app.settings.gpu_count)
        if device is not None:
            os.environ["CUDA_VISIBLE_DEVICES"] = device
        self.app.worker_info = {"slot": slot, "pid": os.getpid(), "cuda_visible_devices": device}
        super().init_process()

    def init_signals(self) -> None:
        # uvicorn installs its own SIGTERM/SIGINT handlers while it serves, and current uvicorn
        # raises the signal it caught again once it has shut down. Dying of that signal would skip
        # the exit hooks (the last interval's EMF line among them): exit cleanly instead, then and
        # for a signal that arrives before serving starts.
        for s in self.SIGNALS:
            signal.signal(s, signal.SIG_DFL)
        for s in (signal.SIGTERM, signal.SIGINT, signal.SIGQUIT):
            signal.signal(s, _exit_cleanly)

    def run(self) -> None:
        loop = uvloop.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(self._serve())
        finally:
            loop.close()

    async def _serve(self) -> None:
        settings = self.app.settings
        config = uvicorn.Config(
            app=self.wsgi,
            http=deadline_protocol(settings.request_timeout),
            loop="none",  # the worker made the uvloop loop itself
            lifespan="off",
            # No websocket routes: an upgrade request is an ordinary HTTP request, answered 4xx,
            # whatever websocket library happens to be importable.
            ws="none",
            log_config=None,
            access_log=False,  # the app writes its own JSON access log
            proxy_headers=False,
            server_header=False,
            timeout_keep_alive=self.cfg.keepalive,
            timeout_notify=self.timeout,
            callback_notify=self._notify,
        )
        server = uvicorn.Server(config)
        await server.serve(sockets=self.sockets)
        if not server.started:
            sys.exit(Arbiter.WORKER_BOOT_ERROR)

    async def _notify(self) -> None:
        self.notify()


def _exit_cleanly(signum: int, frame: object) -> None:
    sys.exit(0)
