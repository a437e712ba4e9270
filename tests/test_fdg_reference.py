"""FDG reference scans: measured through the SUV entry point, positivity by a stated threshold."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest

from immunopet.analysis.assemble import assemble_analysis
from immunopet.analysis.export import write_analysis_tables
from immunopet.analysis.fdg import FDG_LESION_COLUMNS, FDG_POSITIVE_SUV_MAX, fdg_positivity
from immunopet.io.nifti import read_nifti
from immunopet.study.fdg import measure_fdg_lesions
from immunopet.study.manifest import load_manifest
from immunopet.study.runner import run_study
from immunopet.synthetic.presets import TINY
from immunopet.synthetic.trial import generate_trial

ONE_PATIENT = dataclasses.replace(
    TINY,
    name="fdg-one",
    clinical_rows=(9,),
    tumours_per_patient=(3,),
    large_per_patient=(2,),
    nodes_per_patient=(1,),
    spleen_lesion_patient="P01",
    series=("tracer-only",),
    standard_hours=(120.0,),
)


def test_positivity_threshold_and_reader_flag_by_hand() -> None:
    measured = pd.DataFrame(
        {
            "patient": ["P01", "P01", "P01", "P02", "P02"],
            "lesion": [1, 2, 3, 1, 7],
            "fdg_suv_max": [2.4, 2.5, 2.6, 7.0, 3.0],
        }
    )
    reader = pd.DataFrame(
        {
            "patient": ["P01", "P01", "P01", "P02"],
            "lesion": ["1", "2", "3", "1"],
            "fdg_positive": [False, True, True, False],
            "long_axis_mm": [10.0, 12.0, 30.0, 25.0],
        }
    )
    table = fdg_positivity(measured, reader)
    assert FDG_POSITIVE_SUV_MAX == 2.5
    assert tuple(table.columns) == FDG_LESION_COLUMNS
    # strictly above 2.5 is positive
    assert table["fdg_positive"].tolist() == [False, False, True, True, True]
    assert table["reader_flag"].tolist() == [False, True, True, False, pd.NA]
    assert table["agree"].tolist() == [True, False, True, False, pd.NA]
    without = fdg_positivity(measured)
    assert without["reader_flag"].isna().all()


@pytest.fixture(scope="module")
def trial(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("fdg")
    generate_trial(out, preset=ONE_PATIENT, seed=3)
    return out


def _suv_by_hand(folder: Path, weight_kg: float) -> np.ndarray:
    """SUVbw of an 18F PET (Bq/mL, decay-corrected to START) from its DICOM files."""
    files = [pydicom.dcmread(p) for p in sorted(folder.glob("*.dcm"))]
    files.sort(key=lambda ds: float(ds.ImagePositionPatient[2]))  # the volume: z ascending
    first = files[0]
    info = first.RadiopharmaceuticalInformationSequence[0]
    injected = datetime.strptime(info.RadiopharmaceuticalStartDateTime[:14], "%Y%m%d%H%M%S")
    start = datetime.strptime(first.SeriesDate + first.SeriesTime[:6], "%Y%m%d%H%M%S")
    decayed = float(info.RadionuclideTotalDose) * 0.5 ** (
        (start - injected).total_seconds() / (109.77 * 60)
    )
    slices = [ds.pixel_array * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for ds in files]
    return np.stack(slices) * 1000.0 * weight_kg / decayed


def test_fdg_lesions_measured_as_by_hand(trial: Path) -> None:
    study = load_manifest(trial / "study.toml")
    table, notes = measure_fdg_lesions(study)
    assert notes == []
    weight = float(pd.read_csv(trial / "scans.csv")["weight_kg"].iloc[0])
    suv = _suv_by_hand(trial / "dicom" / "P01" / "fdg" / "pet", weight)
    labels = read_nifti(trial / "vois" / "P01" / "fdg" / "lesions.nii.gz").volume.array
    assert labels.shape == suv.shape
    lesions = pd.read_csv(trial / "lesions.csv")
    assert table["lesion"].tolist() == [str(n) for n in lesions["lesion"]]
    for _, row in table.iterrows():
        expected = suv[labels == int(row["lesion"])].max()
        assert row["fdg_suv_max"] == pytest.approx(expected, rel=1e-4)
    assert set(table["nuclide"]) == {"18F"}
    assert table["hours_pi"].between(0.8, 1.2).all()


def test_run_stores_fdg_and_the_analysis_writes_positivity(trial: Path, tmp_path: Path) -> None:
    study = load_manifest(trial / "study.toml")
    run_study(study, tmp_path / "results", workers=1, progress=False)
    stored = pd.read_csv(tmp_path / "results" / "fdg_measurements.csv")
    assert len(stored) == len(pd.read_csv(trial / "lesions.csv"))
    analysis = assemble_analysis(tmp_path / "results", study=study, progress=False)
    folder = write_analysis_tables(analysis, tmp_path / "results")
    table = pd.read_csv(folder / "fdg_lesions.csv")
    assert tuple(table.columns) == FDG_LESION_COLUMNS
    # the synthetic FDG-avid lesions are avid, the FDG-negative node is not
    assert table["agree"].all(), table
