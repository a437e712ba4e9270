"""Imported only by the worker fork server (first in its preload list): it ends at once.

When the run's process ends, the ``forkserver`` process sees its pipe close and exits through
the interpreter's normal shutdown, which tears down every module it preloaded (pandas,
matplotlib, scipy ...): about half a second of CPU after the run has returned, with the run's
stdout and stderr still open (a ``| tee`` or a caller capturing the output waits for it). The
server holds no buffered output and no file of its own, so nothing is lost by skipping that.
Never import this module elsewhere: it would end that process the same way.
"""

from __future__ import annotations

import atexit
import os

atexit.register(os._exit, 0)  # registered first in the server, so it runs after its others
