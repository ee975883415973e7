"""The MLflow UI's saved views (`ganlab.views`): written as the UI's own shared-view tags, idempotently, naming
only columns the model runs really carry. (tests/test_e2e.py opens the view in a real browser.)"""

from __future__ import annotations

import json

import pytest

from ganlab import tracking, views
from ganlab.postprocess import METHODS


def test_the_views_name_the_scores_evaluate_logs_and_every_post_processing_method():
    import evaluate  # stages/evaluate.py: the metric names it logs on the model run

    assert set(views.SCORES) <= set(evaluate.SCORES)
    assert set(views.METHODS) == set(METHODS) - {"none"}  # "none": the generator's own samples, plain `fid`
    assert views.column("params", "gmgan.sigma") == "params.`gmgan.sigma`"


def test_publish_writes_each_view_as_a_shared_view_tag_once(uri):
    from mlflow.tracking import MlflowClient

    experiment_id = views.publish()
    assert views.publish() == experiment_id  # idempotent: same experiment, tags overwritten
    tags = MlflowClient(uri).get_experiment(experiment_id).tags
    assert tags["mlflow.experimentKind"] == "custom_model_development"
    layout = json.loads(tags["mlflow.sharedViewState.which-setting-won"])
    assert layout["searchFilter"] == "tags.`ganlab.kind` = 'model'"
    assert layout["orderByKey"] == "metrics.`fid`" and layout["orderByAsc"] is True
    assert layout["selectedColumns"][:2] == ["metrics.`fid`", "metrics.`kid`"]
    assert "params.`gmgan.sigma`" in layout["selectedColumns"]
    methods = json.loads(tags["mlflow.sharedViewState.which-method-won"])["selectedColumns"]
    assert methods == ["metrics.`fid`", *(f"metrics.`{m}.fid`" for m in ("drs", "dgflow", "ddls", "truncation"))]
    assert sorted(k for k in tags if k.startswith(views.VIEW_TAG)) == sorted(views.VIEW_TAG + k for k in views.VIEWS)


def test_the_filter_finds_the_model_runs_and_nothing_else(uri):
    from mlflow.tracking import MlflowClient

    with tracking.model_run("gmgan", 0, {"gmgan.sigma": 1.7}):
        pass
    with tracking.stage_run("report", "report", {}):
        pass
    experiment_id = views.publish()
    layout = views.VIEWS[views.WHICH_WON]
    found = MlflowClient(uri).search_runs([experiment_id], layout["searchFilter"])
    assert [run.info.run_name for run in found] == ["gmgan · seed 0 · workspace"]


def test_the_url_opens_the_view():
    assert views.view_url("http://h:5000", "7") == "http://h:5000/#/experiments/7/runs?viewStateShareKey=which-setting-won"
