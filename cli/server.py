"""Run the API under gunicorn from Python, so `assay api` needs no separate config file."""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication


class _Gunicorn(BaseApplication):  # type: ignore[misc]
    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from api import create_app

        return create_app({"auto_migrate": False})


def _child_exit(_server: Any, worker: Any) -> None:
    from cli.observability import forget_process

    forget_process(worker.pid)


def serve(host: str, port: int, workers: int, threads: int) -> None:
    from services import logs
    from services.settings import load_settings

    settings = load_settings()
    _Gunicorn(
        {
            "bind": f"{host}:{port}",
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread",
            # SSE streams are long responses; a stream emits a keep-alive well within this.
            "timeout": 300,
            "graceful_timeout": 10,
            "accesslog": None,  # api.request_log writes the access log, with request ids
            "logconfig_dict": logs.dict_config("api", settings.log_format, settings.log_level),
            "child_exit": _child_exit,
        }
    ).run()
