"""Run R (``Rscript``) for live reference checks; tests using it skip when R is absent.

The reference numbers in the stats tests are pasted literals with the R call beside them;
this helper lets the same calls be re-run against the installed R ``survival`` package
when it is there (``requires_r``), so a changed R or a typo in a literal is caught.
"""

from __future__ import annotations

import functools
import math
import os
import shutil
import subprocess

import pytest

RSCRIPT = shutil.which("Rscript")


@functools.cache
def _r_has_survival() -> bool:
    if RSCRIPT is None:
        return False
    proc = subprocess.run(
        [RSCRIPT, "-e", "cat(requireNamespace('survival', quietly=TRUE))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return proc.stdout.strip().endswith("TRUE")


# CI (IMMUNOPET_REQUIRE_TOOLS=1) installs R: there a missing R fails the tests instead of
# skipping them
requires_r = pytest.mark.skipif(
    os.environ.get("IMMUNOPET_REQUIRE_TOOLS") != "1" and not _r_has_survival(),
    reason="Rscript with the survival package is not installed",
)


def run_r(code: str) -> list[float]:
    """Run R code that ``cat()``s numbers separated by whitespace; return them (NA -> nan)."""
    if RSCRIPT is None:  # pragma: no cover - guarded by requires_r
        raise RuntimeError("Rscript not found")
    proc = subprocess.run(
        [RSCRIPT, "-e", "suppressMessages(library(survival)); options(digits=15)", "-e", code],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return [math.nan if tok == "NA" else float(tok) for tok in proc.stdout.split()]
