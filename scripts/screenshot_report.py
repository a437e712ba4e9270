"""Screenshot a rendered report with headless Chromium (e.g. for the README).

Usage::

    python scripts/screenshot_report.py REPORT_DIR/index.html OUT.png [--width 1280] [--height 2400]

Needs Debian's ``chromium`` on PATH. The page is opened from the file system; nothing is
fetched from the network.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--virtual-time-budget=10000",
)


def screenshot(index: Path, out: Path, *, width: int, height: int) -> Path:
    """Write a PNG of the top ``width`` x ``height`` pixels of the page."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise SystemExit("chromium not found (Debian: apt-get install chromium)")
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [
                browser,
                *FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={width},{height}",
                f"--screenshot={out.resolve()}",
                index.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    if done.returncode != 0 or not out.is_file():
        raise SystemExit(f"chromium failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("index", type=Path, help="the report's index.html")
    parser.add_argument("out", type=Path, help="PNG to write")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=2400)
    args = parser.parse_args(argv)
    print(screenshot(args.index, args.out, width=args.width, height=args.height))
    return 0


if __name__ == "__main__":
    sys.exit(main())
