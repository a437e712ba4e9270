"""Reproduce the cohort survival summary of the durvalumab study (seed 000, Table 1).

Reads ``durvalumab_table1.csv`` next to this file and prints median PFS and OS in months
with the SPSS-style interval (what the paper prints) and the Brookmeyer–Crowley interval
(what R's ``print(survfit(...))`` prints), next to the published numbers.

Run: ``python examples/cohort_survival.py [path/to/table1.csv]``
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from immunopet.stats import DAYS_PER_MONTH, survival_summary

TABLE1 = Path(__file__).with_name("durvalumab_table1.csv")

#: Published in the paper (Results, "Patients"): median (95% CI) in months, SPSS 25.
PUBLISHED = {"PFS": (1.3, 0.0, 3.8), "OS": (4.8, 0.2, 9.4)}


def summarise_cohort(csv_path: str | Path = TABLE1) -> pd.DataFrame:
    """Median PFS and OS (months) with SPSS-style and Brookmeyer–Crowley 95 % intervals.

    Parameters
    ----------
    csv_path : path
        Table 1 as CSV with columns ``pfs_days``, ``pfs_event``, ``os_days``, ``os_event``.

    Returns
    -------
    pandas.DataFrame
        One row per (endpoint, interval method): label, n, events, median, lower, upper,
        se, ci_method, confidence, time_unit (months = days / 30.4375).
    """
    table = pd.read_csv(csv_path)
    rows = []
    for endpoint in ("pfs", "os"):
        for ci in ("spss", "brookmeyer-crowley"):
            summary = survival_summary(
                table[f"{endpoint}_days"],
                table[f"{endpoint}_event"],
                ci=ci,
                label=endpoint.upper(),
                time_unit="days",
            ).rescaled(DAYS_PER_MONTH, "months")
            rows.append(summary.summary)
    return pd.concat(rows, ignore_index=True)


def main(argv: list[str] | None = None) -> int:
    """Print the survival summary and the published values."""
    args = sys.argv[1:] if argv is None else argv
    result = summarise_cohort(args[0] if args else TABLE1)
    with pd.option_context("display.width", 120, "display.float_format", "{:.2f}".format):
        print(result.to_string(index=False))
    print()
    print("Published (SPSS 25): median PFS 1.3 mo (95% CI 0.0-3.8), OS 4.8 mo (0.2-9.4)")
    for label, (median, lower, upper) in PUBLISHED.items():
        row = result[(result["label"] == label) & (result["ci_method"] == "spss")].iloc[0]
        print(
            f"{label}: ours {row['median']:.1f} ({row['lower']:.1f}-{row['upper']:.1f}) "
            f"vs published {median:.1f} ({lower:.1f}-{upper:.1f})"
        )
    print(
        "A NaN upper limit (Brookmeyer-Crowley) means not reached: the upper 95% band of "
        "S(t) stays above 0.5."
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
