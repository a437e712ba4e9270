"""Patlak Ki of a measured synthetic trial against its truth (``truth/kinetics.csv``).

Prints, for the sampled-blood and the image-derived plasma input, the relative error of every
organ Ki with a fit (>= 3 scans) against the compartment model's true Ki, their median, and
the tracer-only vs predose spleen Ki (the predose should lower it, as the truth does).

Usage: ``python benchmarks/bench_kinetics.py TRIAL_DIR`` where TRIAL_DIR holds ``study.toml``,
``truth/`` and ``results/`` (``immunopet synth`` then ``immunopet run``, or ``immunopet demo``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from immunopet.analysis.blood import blood_activity, read_blood_samples, read_counter_calibration
from immunopet.analysis.kinetics import KineticsSettings, patlak_table
from immunopet.study.store import ResultsStore


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("trial", type=Path)
    args = parser.parse_args()
    trial: Path = args.trial
    with ResultsStore(trial / "results") as store:
        measurements = store.read_table("measurements")
        scans = store.read_table("scans")
    blood = blood_activity(
        read_blood_samples(trial / "blood_samples.csv"),
        read_counter_calibration(trial / "counter_calibration.json"),
    )
    truth = pd.read_csv(trial / "truth" / "kinetics.csv", dtype={"voi": str, "patient": str})
    keys = ["patient", "series", "voi", "kind"]
    for mode in ("sampled", "image"):
        table = patlak_table(
            measurements, blood=blood, scans=scans, settings=KineticsSettings(input=mode)
        )
        merged = table.merge(truth, on=keys, suffixes=("", "_true"))
        organs = merged[(merged["kind"] == "organ") & merged["ki_ul_per_g_per_h"].notna()].copy()
        organs["rel_error"] = organs["ki_ul_per_g_per_h"] / organs["ki_ul_per_g_per_h_true"] - 1
        print(f"--- {mode} input: {len(organs)} organ fits")
        columns = [
            "patient",
            "series",
            "voi",
            "ki_ul_per_g_per_h",
            "ki_ul_per_g_per_h_true",
            "rel_error",
            "r",
            "flag",
        ]
        print(organs[columns].round(3).to_string(index=False))
        print(f"median |relative error| of organ Ki: {np.median(np.abs(organs['rel_error'])):.1%}")
        spleen = organs[organs["voi"] == "spleen"]
        for patient, rows in spleen.groupby("patient"):
            by = rows.set_index("series")
            if {"tracer-only", "predose"} <= set(by.index):
                ki, true = by["ki_ul_per_g_per_h"], by["ki_ul_per_g_per_h_true"]
                print(
                    f"spleen Ki {patient}: tracer-only {ki['tracer-only']:.2f} -> predose "
                    f"{ki['predose']:.2f} (truth {true['tracer-only']:.2f} -> "
                    f"{true['predose']:.2f})"
                )
        lesions = merged[(merged["kind"] == "lesion") & merged["ki_ul_per_g_per_h"].notna()]
        if not lesions.empty:
            error = lesions["ki_ul_per_g_per_h"] / lesions["ki_ul_per_g_per_h_true"] - 1
            print(
                f"lesions: {len(lesions)} fits, median |relative error| "
                f"{np.median(np.abs(error)):.1%}"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
