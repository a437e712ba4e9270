"""`immunopet demo OUTDIR --preset atezolizumab`: the second study from its manifest alone."""

from __future__ import annotations

import contextlib
import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from immunopet.cli.main import main
from immunopet.study.manifest import load_manifest
from test_stats_roc_concordance import _delong_loops

BIOMARKER_COLUMNS = [
    "candidate",
    "endpoint",
    "tumour_type",
    "n",
    "auc_or_c",
    "ci_lower",
    "ci_upper",
    "p_vs_pet",
]


@pytest.fixture(scope="module")
def atezolizumab(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    outdir = tmp_path_factory.mktemp("atezolizumab") / "out"
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(["demo", str(outdir), "--preset", "atezolizumab", "--quiet", "--no-qc"])
    return outdir, code


@pytest.mark.slow
def test_manifest_states_the_plan(atezolizumab: tuple[Path, int]) -> None:
    outdir, code = atezolizumab
    assert code == 0
    study = load_manifest(outdir / "study.toml")
    assert study.plan.uptake_metric == "suv_max"
    assert study.plan.patient_aggregate == "geometric_mean"
    assert "rnaseq_score" in study.plan.biomarkers
    assert study.settings.analysis_hours == 168.0
    assert len(study.patients) == 22
    assert {i.series for p in study.patients for i in p.injections} == {"tracer-only"}
    for name in ("heterogeneity.csv", "patients.csv", "lesions.csv"):
        assert (outdir / "truth" / name).is_file()


@pytest.mark.slow
def test_biomarkers_csv(atezolizumab: tuple[Path, int]) -> None:
    outdir, _ = atezolizumab
    table = pd.read_csv(outdir / "results" / "analysis" / "biomarkers.csv")
    assert list(table.columns[:4]) == BIOMARKER_COLUMNS[:4]
    assert set(BIOMARKER_COLUMNS) <= set(table.columns)
    assert set(table.tumour_type) == {"all", "bladder", "NSCLC", "TNBC"}
    assert set(table.endpoint) == {"response", "pfs", "os"}
    pet = table.candidate.str.contains("SUVmax")
    assert table.loc[pet, "p_vs_pet"].isna().all()
    ok = table.auc_or_c.notna()
    assert (table.ci_lower[ok] <= table.auc_or_c[ok] + 1e-12).all()
    assert (table.auc_or_c[ok] <= table.ci_upper[ok] + 1e-12).all()
    # never a silent "1.00 (1.00-1.00)": a perfect group says so and has a real interval
    perfect = ok & table.auc_or_c.isin([0.0, 1.0]) & (table.endpoint == "response")
    assert (table.loc[perfect, "separation"].isin(["perfect", "inverted"])).all()
    assert (table.loc[perfect, "ci_upper"] - table.loc[perfect, "ci_lower"] > 0.2).all()

    # overall PET AUC and DeLong p vs TPS, recomputed from the per-patient table and the sheet
    uptake = pd.read_csv(outdir / "results" / "analysis" / "patient_uptake.csv")
    clinical = pd.read_csv(outdir / "clinical.csv")
    data = clinical.merge(uptake[["patient", "uptake"]], on="patient")
    responder = data.bor.isin(["CR", "PR"]).to_numpy()
    u = stats.mannwhitneyu(data.uptake[responder], data.uptake[~responder]).statistic
    row = table[pet & (table.tumour_type == "all") & (table.endpoint == "response")].iloc[0]
    assert row.auc_or_c == pytest.approx(u / (responder.sum() * (~responder).sum()))
    a1, a2, _, var = _delong_loops(
        data.uptake.to_numpy(), data.tps_percent.to_numpy(), responder.astype(int)
    )
    tps = table[
        (table.candidate == "PD-L1 TPS")
        & (table.tumour_type == "all")
        & (table.endpoint == "response")
    ].iloc[0]
    assert tps.auc_or_c == pytest.approx(a2)
    assert tps.p_vs_pet == pytest.approx(2 * stats.norm.sf(abs(a1 - a2) / math.sqrt(var)))


@pytest.mark.slow
def test_heterogeneity_csv_and_report(atezolizumab: tuple[Path, int]) -> None:
    outdir, _ = atezolizumab
    table = pd.read_csv(outdir / "results" / "analysis" / "heterogeneity.csv")
    assert list(table.columns) == ["level", "variance", "share", "icc", "n"]
    assert list(table.level) == ["tumour_type", "patient", "lesion", "total"]
    assert list(table.n[:2]) == [3, 22]
    assert np.isclose(table.share[:3].sum(), 1.0)
    assert (table.variance >= 0).all()
    page = (outdir / "report" / "index.html").read_text(encoding="utf-8")
    assert "Heterogeneity of tumour uptake" in page
    assert "P vs PET (AUC)" in page
    assert (outdir / "report" / "figures" / "heterogeneity.png").is_file() or any(
        p.name == "heterogeneity.png" for p in (outdir / "report").rglob("*.png")
    )
