"""Stage `report`: every catalogue claim judged from our numbers, tables beside the reported numbers, figures.

    python stages/report.py --metrics metrics/evaluate --train metrics/train --probe metrics/probe \
        --grids reports/grids --out reports/results.md --html reports/results.html \
        --figures reports/figures --plots reports/plots --features metrics/features

Writes reports/results.md, the self-contained reports/results.html, PNGs under reports/figures and CSV series
for `dvc plots` under reports/plots; logs the figures and the verdict counts to MLflow (run `report`).
"""

import _project_python  # noqa: F401, I001  (first: the project's Python, or one line saying how)

import argparse
from pathlib import Path

from ganlab.catalogue import STATUSES
from ganlab.report import write_report
from ganlab.runtime import stage_entry
from ganlab.tracking import stage_run


@stage_entry
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", required=True, type=Path)
    parser.add_argument("--train", default=Path("metrics/train"), type=Path)
    parser.add_argument("--probe", default=Path("metrics/probe"), type=Path)
    parser.add_argument("--grids", default=Path("reports/grids"), type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--html", default=Path("reports/results.html"), type=Path)
    parser.add_argument("--figures", default=Path("reports/figures"), type=Path)
    parser.add_argument("--plots", default=Path("reports/plots"), type=Path)
    parser.add_argument("--features", default=Path("metrics/features"), type=Path, help="the feature spaces' batteries")
    args = parser.parse_args()

    import mlflow

    with stage_run("report", "report", {"metrics_dir": args.metrics, "train_dir": args.train, "probe_dir": args.probe}):
        report = write_report(
            metrics_dir=args.metrics, train_dir=args.train, probe_dir=args.probe, grids_dir=args.grids,
            out_md=args.out, out_html=args.html, figures_dir=args.figures, plots_dir=args.plots,
            features_dir=args.features,
        )
        counts = {s: sum(v.status == s for _, v in report.verdicts) for s in STATUSES}
        mlflow.log_metrics({f"claims_{s.replace(':', '').replace(' ', '_')}": n for s, n in counts.items()})
        mlflow.log_metric("evaluated_runs", len(report.results.evaluations))
        for path in report.figures.values():
            if path is not None:
                mlflow.log_artifact(str(path), artifact_path="figures")
        mlflow.log_artifact(str(report.html), artifact_path="report")
    summary = ", ".join(f"{n} {s}" for s, n in counts.items())
    print(f"report: {len(report.results.evaluations)} evaluated runs, claims: {summary} -> {args.out}, {args.html}")


if __name__ == "__main__":
    main()
