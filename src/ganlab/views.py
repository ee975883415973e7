"""Saved views of the MLflow UI: the runs table that answers "which setting won?" when the UI opens.

MLflow's runs table shows no metric or param column by default once an experiment has many of them (ours has
300+: every recipe's flat params, every method's scores, the learning curves): FID is behind "Show more columns".
The UI's own "Share" button saves a table layout as an experiment tag `mlflow.sharedViewState.<key>` holding
the layout as JSON (search filter, sort key, selected columns), and `#/experiments/<id>/runs?viewStateShareKey=<key>`
opens it. `publish` writes our layouts that way, so the link works for anyone on the same tracking store:

- `which-setting-won`: the trained models only (one row per experiment × seed × DVC experiment), sorted by FID,
  with the generator's final FID, KID, precision, recall and coverage and the design card's knobs (`gmgan.sigma`,
  `gmgan.lr_prior`);
- `which-method-won`: the same rows with the FID of the generator's own samples beside each post-processing
  method's (`drs.fid`, `dgflow.fid`, `ddls.fid`, `truncation.fid`).

The UI orders the chosen columns alphabetically and renders only those in the window, so each view keeps to a few.

    python -m ganlab.views          # writes the views into $MLFLOW_TRACKING_URI (default <repo>/mlflow.db), prints the URLs
"""

from __future__ import annotations

import json
from typing import Any

from ganlab.tracking import ensure_database, tracking_uri

VIEW_TAG = "mlflow.sharedViewState."
WHICH_WON = "which-setting-won"
# Metric names as stages/evaluate.py logs them on the model run (ganlab.tracking.log_model_results), methods as in
# `ganlab.postprocess.METHODS` (tests/test_views.py keeps them in step).
SCORES = ("fid", "kid", "precision", "recall", "coverage")
METHODS = ("drs", "dgflow", "ddls", "truncation")
KNOBS = ("gmgan.sigma", "gmgan.lr_prior")


def column(kind: str, key: str) -> str:
    """A runs-table column as the UI names it: metrics.`fid`, params.`gmgan.sigma`."""
    return f"{kind}.`{key}`"


def _models_by_fid(metrics: list[str], params: tuple[str, ...] = ()) -> dict[str, Any]:
    return {
        "searchFilter": "tags.`ganlab.kind` = 'model'",
        "orderByKey": column("metrics", "fid"),
        "orderByAsc": True,
        "selectedColumns": [*(column("metrics", k) for k in metrics), *(column("params", k) for k in params)],
    }


VIEWS = {
    WHICH_WON: _models_by_fid(list(SCORES), KNOBS),
    "which-method-won": _models_by_fid(["fid", *(f"{m}.fid" for m in METHODS)]),
}


def view_url(base: str, experiment_id: str, key: str = WHICH_WON) -> str:
    return f"{base}/#/experiments/{experiment_id}/runs?viewStateShareKey={key}"


def publish(uri: str | None = None) -> str:
    """Write every view into the `ganlab` experiment of the store `uri` (created if needed); idempotent.
    Returns the experiment id."""
    from mlflow.tracking import MlflowClient

    uri = uri or tracking_uri()
    experiment_id = ensure_database(uri)
    client = MlflowClient(uri)
    for key, layout in VIEWS.items():
        client.set_experiment_tag(experiment_id, VIEW_TAG + key, json.dumps(layout))
    return experiment_id


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Save the MLflow UI views (the runs table of trained models, by FID).")
    parser.add_argument("--base", default="http://127.0.0.1:5000", help="where the UI is served, for the printed URLs")
    args = parser.parse_args()
    experiment = publish()
    for key in VIEWS:
        print(f"{key}: {view_url(args.base, experiment, key)}")
