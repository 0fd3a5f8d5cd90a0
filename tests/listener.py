"""A TCP listener on a free loopback port that records every connection, and can answer HTTP.

Stands in for what a forged model URL could reach (Redis, PostgreSQL, the API, any local service):
a test points an LLM config at it and asserts it was never contacted.
"""

from __future__ import annotations

import socket
import threading
from types import TracebackType


class Listener:
    """`with Listener(reply=b"...") as target:`; `target.contacted` says whether anyone connected."""

    def __init__(self, reply: bytes = b"") -> None:
        self.reply = reply
        self.connections = 0
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    @property
    def port(self) -> int:
        return self._sock.getsockname()[1]

    @property
    def contacted(self) -> bool:
        return self.connections > 0

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            self.connections += 1
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(65536)
                    conn.sendall(self.reply)
                except OSError:
                    pass

    def __enter__(self) -> Listener:
        self._thread.start()
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self._stop.set()
        self._thread.join()
        self._sock.close()
