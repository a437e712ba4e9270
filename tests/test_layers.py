"""The layers of DESIGN.md: a stage imports only from stages above it.

Foundation modules (errors, the geometry type, nuclide/decay tables and the SUV derivation
record) are plain data and helpers that every stage may use. ``synthetic`` is a producer of
inputs: it may use the foundation, io and suv, and nothing but the CLI imports it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "immunopet"

FOUNDATION = {
    "immunopet",
    "immunopet.errors",
    "immunopet.image",
    "immunopet.suv.nuclides",
    "immunopet.suv.decay",
    "immunopet.suv.record",
}
ORDER = [
    "io",
    "suv",
    "voi",
    "metrics",
    "study",
    "stats",
    "analysis",
    "report",
    "exports",
    "cli",
]


def stage_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name.split(".")[0] == "immunopet"}


def module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def allowed(importer: str, imported: str) -> bool:
    if importer in FOUNDATION or importer.split(".")[-1] == "__init__":
        return True
    if any(
        imported == base or imported.startswith(base + ".") for base in FOUNDATION - {"immunopet"}
    ):
        return True
    if imported == "immunopet" or imported in {"immunopet.__version__"}:
        return True
    source, target = stage_of(importer), stage_of(imported)
    if source == target or target in {"errors", "image"}:
        return True
    if target == "synthetic":
        return source == "cli"
    if source == "synthetic":
        return target in {"io", "suv"}
    if source not in ORDER or target not in ORDER:
        return False
    if source == "exports" and target == "report":
        return False  # exports write what study/analysis produced, not the report's layout
    return ORDER.index(target) < ORDER.index(source)


def test_no_module_imports_a_lower_stage():
    violations = []
    for path in sorted(SRC.rglob("*.py")):
        importer = module_name(path)
        for imported in imports_of(path):
            if imported in FOUNDATION:
                continue
            # `from immunopet.io import dicom` names immunopet.io.dicom: judge by the stage
            if not allowed(importer, imported):
                violations.append(f"{importer} imports {imported}")
    assert not violations, "\n".join(violations)


@pytest.mark.parametrize(
    ("importer", "imported", "ok"),
    [
        ("immunopet.metrics", "immunopet.voi.spheres", True),
        ("immunopet.voi.spheres", "immunopet.metrics", False),
        ("immunopet.io.dicom", "immunopet.suv.factors", False),
        ("immunopet.io.bids", "immunopet.suv.record", True),
        ("immunopet.study.pipeline", "immunopet.synthetic.trial", False),
        ("immunopet.cli.synth", "immunopet.synthetic.trial", True),
        ("immunopet.exports.dicom_export", "immunopet.study.store", True),
        ("immunopet.exports.dicom_sr", "immunopet.io.dicom", True),
        ("immunopet.report.html", "immunopet.exports.dicom_sr", False),
        ("immunopet.exports.dicom_sr", "immunopet.report.html", False),
        ("immunopet.exports.dicom_sr", "immunopet.analysis.lesions", True),
        ("immunopet.study.pipeline", "immunopet.exports.dicom_seg", False),
        ("immunopet.cli.export_dicom", "immunopet.exports.dicom_export", True),
    ],
)
def test_rule_itself(importer: str, imported: str, ok: bool) -> None:
    assert allowed(importer, imported) is ok


# ``report`` arranges the analysis and computes nothing: no statistics libraries, no
# pandas aggregation (group means, SDs, medians) and no survival estimates of its own.
_REPORT_FORBIDDEN_IMPORTS = ("scipy", "lifelines", "statsmodels", "immunopet.stats")
# drawing helpers and result types (no estimation): lifelines' at-risk table, stats' results
_REPORT_ALLOWED_IMPORTS = ("lifelines.plotting", "immunopet.stats.results")
_REPORT_FORBIDDEN_CALLS = (
    "groupby",
    "agg",
    "aggregate",
    "pivot_table",
    "median",
    "nanmedian",
    "nanmean",
    "std",
    "var",
    "quantile",
    "kaplan_meier",
    "gmean",
)


def test_report_does_no_computation():
    problems = []
    for path in sorted((SRC / "report").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            for name in names:
                if name in _REPORT_ALLOWED_IMPORTS:
                    continue
                if any(name == f or name.startswith(f + ".") for f in _REPORT_FORBIDDEN_IMPORTS):
                    problems.append(f"{path.name}:{node.lineno} imports {name}")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in _REPORT_FORBIDDEN_CALLS
            ):
                problems.append(f"{path.name}:{node.lineno} calls .{node.func.attr}()")
    assert not problems, "\n".join(problems)
