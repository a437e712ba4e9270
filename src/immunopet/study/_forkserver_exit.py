"""Preloaded first by the worker fork server: that server then ends at once, without teardown.

When the run's process ends, the ``forkserver`` process sees its pipe close and exits through
the interpreter's normal shutdown, which tears down every module it preloaded (pandas,
matplotlib, scipy ...): about half a second of CPU after the run has returned, with the run's
stdout and stderr still open (a ``| tee`` or a caller capturing the output waits for it). The
server holds no buffered output and no file of its own, so nothing is lost by skipping that.

The exit is registered only when this module is imported by the fork server's preload loop
(:func:`multiprocessing.forkserver.main` on the stack). Imported anywhere else (a doctest
collector, a tool importing every module) it does nothing: registered in pytest, it turned
every test session's exit code into 0, failures included.
"""

from __future__ import annotations

import atexit
import os
import sys
from typing import Final


def imported_by_fork_server() -> bool:
    """Whether the import comes from ``multiprocessing.forkserver.main`` (its preload)."""
    server = sys.modules.get("multiprocessing.forkserver")
    if server is None:
        return False
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_code is server.main.__code__:
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


#: Whether this process is the fork server and ends with ``os._exit(0)``.
ENDS_AT_EXIT: Final = imported_by_fork_server()
if ENDS_AT_EXIT:
    atexit.register(os._exit, 0)  # registered first in the server, so it runs after its others
