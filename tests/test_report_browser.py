"""The hand-built report opened in a real browser (headless Debian Chromium).

A *test copy* of the report folder gets a small script (the product has none) that records
every error event (a resource that fails to load, an uncaught exception) and every
``console.error``/``console.warn``, and after the ``load`` event checks that every image
decoded (``complete`` and ``naturalWidth > 0``), that every ``<section>`` has text besides
its heading and that the stylesheet applied; it writes the result into the DOM, which
``--dump-dom`` prints. Chromium's own log (``--enable-logging=stderr``) must show no console
message at all: the product page runs no script, so any message is a problem.

Skipped when Chromium is missing, unless ``IMMUNOPET_REQUIRE_TOOLS=1`` (then it fails).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import matplotlib.image
import numpy as np
import pytest

from immunopet.report.html import SECTION_IDS, render_report
from test_report_html import hand_built_analysis, hand_built_figures

CHROMIUM = next(
    (found for name in ("chromium", "chromium-browser") if (found := shutil.which(name))), None
)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
    "--virtual-time-budget=10000",
)

CHECK_SCRIPT = """<script>
(function () {
  var errors = [];
  window.addEventListener("error", function (event) {
    var target = event.target || {};
    errors.push(target.src || target.href ? "failed to load " + (target.src || target.href)
                                          : "error: " + event.message);
  }, true);
  ["error", "warn"].forEach(function (level) {
    var original = console[level];
    console[level] = function () {
      errors.push("console." + level + ": " + Array.prototype.join.call(arguments, " "));
      original.apply(console, arguments);
    };
  });
  window.addEventListener("load", function () {
    var problems = errors.slice();
    var images = Array.prototype.slice.call(document.images);
    images.forEach(function (img) {
      if (!(img.complete && img.naturalWidth > 0)) {
        problems.push("broken image: " + img.getAttribute("src"));
      }
    });
    var sections = Array.prototype.slice.call(document.querySelectorAll("section"));
    sections.forEach(function (section) {
      var heading = section.querySelector("h2");
      var text = section.innerText.replace(heading ? heading.innerText : "", "").trim();
      if (!heading || !heading.innerText.trim()) { problems.push("no heading: " + section.id); }
      if (!text) { problems.push("empty section: " + section.id); }
    });
    var toc = document.querySelector("nav.toc");
    if (!toc || getComputedStyle(toc).position !== "sticky") {
      problems.push("stylesheet not applied");
    }
    var out = document.createElement("pre");
    out.id = "immunopet-check";
    out.textContent = JSON.stringify({
      images: images.length,
      sections: sections.map(function (s) { return s.id; }),
      problems: problems
    });
    document.body.appendChild(out);
  });
})();
</script>"""


def _need_chromium() -> str:
    if CHROMIUM is None:
        if os.environ.get("IMMUNOPET_REQUIRE_TOOLS") == "1":
            pytest.fail("chromium not found on PATH and IMMUNOPET_REQUIRE_TOOLS=1")
        pytest.skip("chromium not installed (Debian: apt-get install chromium)")
    return CHROMIUM


def run_chromium(args: list[str], profile: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [_need_chromium(), *FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def console_lines(log: str) -> list[str]:
    return [line for line in log.splitlines() if ":CONSOLE" in line or "Uncaught" in line]


def check_in_browser(
    report_dir: Path, work: Path, edit: Any = None
) -> tuple[dict[str, Any], list[str]]:
    """Open a test copy of the report, return the page check and the console lines."""
    copy = work / "checked"
    shutil.copytree(report_dir, copy)
    index = copy / "index.html"
    text = index.read_text(encoding="utf-8").replace("<head>", "<head>\n" + CHECK_SCRIPT, 1)
    if edit is not None:
        text = edit(text, copy)
    index.write_text(text, encoding="utf-8")
    done = run_chromium(
        ["--window-size=1280,4000", "--dump-dom", index.as_uri()], work / "profile-check"
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = re.search(r'<pre id="immunopet-check">(.*?)</pre>', done.stdout, flags=re.DOTALL)
    assert found, "the check script did not run: " + done.stdout[-500:]
    return json.loads(html.unescape(found.group(1))), console_lines(done.stderr)


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _need_chromium()
    root = tmp_path_factory.mktemp("browser")
    figures = hand_built_figures(root / "drawn")
    return render_report(hand_built_analysis(), root / "report", figures=figures).parent


def test_report_loads_without_broken_image_console_error_or_empty_section(
    report_dir: Path, tmp_path: Path
) -> None:
    result, console = check_in_browser(report_dir, tmp_path)
    assert result["problems"] == []
    assert console == []
    assert result["images"] == 6  # 3 section figures, 2 QC thumbnails, 1 extra
    sections = list(SECTION_IDS)
    sections.insert(sections.index("qc"), "more-figures")
    assert result["sections"] == sections


def test_checks_catch_a_broken_image_an_empty_section_and_a_script_error(
    report_dir: Path, tmp_path: Path
) -> None:
    def break_page(text: str, copy: Path) -> str:
        (copy / "figures" / "survival_pfs.png").unlink()
        text = re.sub(
            r'(<section id="safety"[^>]*>\s*<h2>[^<]*</h2>).*?(</section>)',
            r"\1\2",
            text,
            count=1,
            flags=re.DOTALL,
        )
        return text.replace("</body>", "<script>undefinedFunction();</script></body>")

    result, console = check_in_browser(report_dir, tmp_path, break_page)
    problems = result["problems"]
    assert "broken image: figures/survival_pfs.png" in problems
    assert any(p.startswith("failed to load") and p.endswith("survival_pfs.png") for p in problems)
    assert "empty section: safety" in problems
    assert any("undefinedFunction" in p for p in problems)
    assert any("Uncaught" in line for line in console)


def test_screenshot_shows_the_styled_report(report_dir: Path, tmp_path: Path) -> None:
    shot = tmp_path / "report.png"
    done = run_chromium(
        [f"--screenshot={shot}", "--window-size=1280,4000", (report_dir / "index.html").as_uri()],
        tmp_path / "profile-shot",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert console_lines(done.stderr) == []
    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (4000, 1280)
    # the page header is the accent colour #1e5a8c = (30, 90, 140) of report.css
    np.testing.assert_allclose(pixels[10, 640] * 255, (30, 90, 140), atol=3)
    # below it the page is not blank: text and tables make many distinct grey levels
    body = pixels[200:3000].mean(axis=2)
    assert np.unique(np.round(body * 255)).size > 50
