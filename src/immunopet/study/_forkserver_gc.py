"""Preloaded by the worker fork server: the garbage collector leaves what the server preloads alone.

The fork server imports the workers' modules (scipy, pandas, matplotlib ...: some 250 000
objects the collector tracks) and every worker it forks inherits them. Each full collection in
a worker walked all of them again, and wrote to the pages holding them, which the worker then
copied from the server: on the 57-scan study, 3.4 s of CPU in the four workers' collections
(1.2 s in each drawing worker), about 0.2 s in the server's own import.

So, as Python's documentation of :func:`gc.freeze` advises for a process that forks without
exec: the server imports with the collector off, and before each fork it freezes what it holds
(moved to the permanent generation, never collected); the worker starts with the collector on,
for its own objects. What the server's imports left as garbage stays in the server (shared,
untouched, by the workers).

Like :mod:`immunopet.study._forkserver_exit`, this acts only when imported by the fork
server's preload loop; imported anywhere else it does nothing.
"""

from __future__ import annotations

import gc
import os
from typing import Final

from immunopet.study._forkserver_exit import imported_by_fork_server

#: Whether this process is the fork server and freezes its objects before each fork.
FREEZES: Final = imported_by_fork_server()
if FREEZES:
    gc.disable()
    os.register_at_fork(before=gc.freeze, after_in_child=gc.enable)
