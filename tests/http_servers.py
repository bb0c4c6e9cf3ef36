"""Real HTTP servers for tests: run one in a thread for the length of a ``with`` block.

Shared by the integration and reliability tests (``tests/`` is on the import path: pytest puts
the folder of the root conftest there).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import HTTPServer
from typing import TypeVar

S = TypeVar("S", bound=HTTPServer)


@contextmanager
def running(server: S) -> Iterator[S]:
    """Serve ``server`` from a daemon thread; shut it down and close its socket afterwards."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
