"""End to end: a copy of the repository runs the pipeline for real on a tiny override, as `make repro` does
(`python -m ganlab.repro --jobs 2`: two stages at a time, each a `dvc repro --single-item`, then a plain `dvc repro`),
logs to a real MLflow SQLite database from two processes at once, then reruns nothing, and an experiment reruns
only what its change touches."""

from __future__ import annotations

import csv
import hashlib
import json
import math
import sys
import urllib.parse
from pathlib import Path

import pytest
import yaml

from browser import NEEDS_CHROMIUM, dom_containing, keep_screenshot, mlflow_server
from repo_copy import _run, copy_repo
pytestmark = pytest.mark.slow


def _tiny(params: dict) -> None:
    params["max_batches_per_epoch"] = 3
    params["features"]["mnist"]["num_epochs"]["quick"] = 1
    params["evaluate"]["n_samples"]["quick"] = 400
    params["vanilla"]["num_epochs"]["quick"] = 2
    # The chain vanilla/wgan x every post-processing method is the whole DAG's shape, gmgan and one of its sweep
    # points the sweep mechanism; the other recipes run the same stages (tests/test_zoo.py builds and steps each
    # of them). Two training seeds: every chain runs per seed and the report aggregates them.
    params["seeds"] = [0, 1]
    params["experiments"] = {name: {"dataset": "mnist", "nets": "mlp"} for name in ("vanilla", "wgan", "gmgan", "gmgan_sigma1p4")}
    params["experiments"]["dcgan_mnist"] = {"dataset": "mnist", "nets": "dcgan"}  # the other architecture family
    params["probes"] = {}
    params["interpolations"] = {}
    for name in ("wgan", "gmgan", "dcgan_mnist"):  # gmgan_sigma1p4 is gmgan's recipe with sigma 1.4
        params[name]["num_epochs"]["quick"] = 1


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> tuple[Path, dict]:
    """A git repository holding the current working tree with tiny params."""
    return copy_repo(tmp_path_factory.mktemp("e2e") / "ganlab", _tiny)


@pytest.fixture(scope="module")
def reproduced(repo):
    dest, env = repo
    _run([sys.executable, "-m", "ganlab.tracking", "--init"], dest, env)
    proc = _run([sys.executable, "-m", "ganlab.repro", "--jobs", "2"], dest, env)
    return dest, env, proc


def test_repro_writes_a_finite_fid_with_its_protocol(reproduced):
    dest, _, _ = reproduced
    result = yaml.safe_load((dest / "metrics/evaluate/vanilla/seed-0.json").read_text())
    features = yaml.safe_load((dest / "metrics/features/mnist.json").read_text())
    assert math.isfinite(result["fid"]) and result["fid"] > 0
    for key in ("precision", "recall", "coverage"):
        assert 0.0 <= result[key] <= 1.0
    assert result["density"] >= 0.0
    protocol = result["protocol"]
    assert protocol["n_fake"] == protocol["n_real"] == 400
    assert protocol["feature_weights_sha256"] == features["weights_sha256"]
    assert protocol["feature_space"] == "mnist-lenet128-reject"  # params.yaml: the LeNet with its "not a digit" class
    assert len(protocol["checkpoint_sha256"]) == 64 and protocol["training_seed"] == 0
    assert result["params"]["optimizer.lr_g"] == 1.0e-4  # the recipe travels with the numbers
    assert "vanilla" in (dest / "reports/results.md").read_text()
    assert sorted(p.name for p in (dest / "data/train/vanilla/seed-0/grids").iterdir()) == ["epoch_0001.png", "epoch_0002.png"]


def test_every_seed_is_trained_and_evaluated_and_the_report_aggregates_them(reproduced):
    dest, _, _ = reproduced
    seed0, seed1 = (yaml.safe_load((dest / f"metrics/evaluate/vanilla/seed-{s}.json").read_text()) for s in (0, 1))
    assert seed0["protocol"]["checkpoint_sha256"] != seed1["protocol"]["checkpoint_sha256"]
    assert seed0["fid"] != seed1["fid"]
    train = yaml.safe_load((dest / "metrics/train/vanilla.json").read_text())
    assert [r["seed"] for r in train["runs"]] == [0, 1]
    assert sorted(p.name for p in (dest / "metrics/evaluate/wgan-drs").iterdir()) == ["seed-0.json", "seed-1.json"]
    report = (dest / "reports/results.md").read_text()
    mean = (seed0["fid"] + seed1["fid"]) / 2
    row = next(line for line in report.splitlines() if line.startswith("| vanilla | none | ours"))
    assert f"{mean:.2f} ± " in row and "n=2" in row, row


def test_a_sweep_point_lies_on_its_base_curve(reproduced):
    dest, _, _ = reproduced
    point = yaml.safe_load((dest / "metrics/evaluate/gmgan_sigma1p4/seed-0.json").read_text())
    assert (point["experiment"], point["variant"], point["sweep"]) == ("gmgan", "gmgan_sigma1p4", {"sigma": 1.4})
    report = (dest / "reports/results.md").read_text()
    assert "Our σ₀ sweep: σ₀=1.4: " in report and ", σ₀=1.7: " in report  # the point, then gmgan itself
    assert (dest / "reports/figures/gmgan_sigma_sweep.png").exists()


def test_one_mlflow_run_per_trained_model_with_its_stage_runs_nested(reproduced):
    from mlflow.tracking import MlflowClient

    dest, _, _ = reproduced
    result = yaml.safe_load((dest / "metrics/evaluate/vanilla/seed-1.json").read_text())
    client = MlflowClient(f"sqlite:///{dest / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("ganlab")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # the UI opens on the runs table
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    assert all(run.info.status == "FINISHED" for run in runs)
    models = {(r.data.tags["ganlab.experiment"], int(r.data.tags["ganlab.seed"])): r
              for r in runs if r.data.tags.get("ganlab.kind") == "model"}
    experiments = ("vanilla", "wgan", "gmgan", "gmgan_sigma1p4", "dcgan_mnist")
    assert sorted(models) == sorted((e, s) for e in experiments for s in (0, 1))
    top = sorted(r.info.run_name for r in runs if "mlflow.parentRunId" not in r.data.tags)
    assert top == sorted([*(m.info.run_name for m in models.values()), "report"])  # every stage run is nested
    # the model run: recipe, losses and learning curves per epoch, and every method's final scores
    vanilla = models[("vanilla", 1)]
    assert vanilla.info.run_name == "vanilla · seed 1 · workspace"
    assert vanilla.data.params["vanilla.optimizer.lr_g"] == "0.0001"
    assert vanilla.data.metrics["fid"] == pytest.approx(result["fid"], rel=1e-9)
    assert {"drs.fid", "dgflow.recall", "truncation.precision", "ddls.coverage"} <= set(vanilla.data.metrics)
    for key in ("loss_d", "curve.recall"):  # losses and learning-curve points, step = epoch
        assert [m.step for m in client.get_metric_history(vanilla.info.run_id, key)][:2] == [1, 2]
    nested = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == vanilla.info.run_id]
    assert sorted(r.data.tags["ganlab.stage"] for r in nested).count("evaluate") == 1 + 4  # its samples + 4 methods
    assert {r.data.tags["ganlab.stage"] for r in nested} == {"evaluate", "postprocess"}  # sweeps: seed 0 only
    assert "drs.fid" in models[("wgan", 0)].data.metrics
    # learning curves: a point per epoch and seed in the CSV too
    curve = (dest / "metrics/train/vanilla_curve.csv").read_text().splitlines()
    assert curve[0].startswith("seed,epoch,train_seconds,fid,precision,recall") and len(curve) == 1 + 2 * 2
    # KID beside FID; label accuracy only where the generator is given labels (gmgan's supervised mixture)
    assert math.isfinite(result["kid"]) and result["kid_std"] >= 0 and "label_accuracy" not in result
    assert "label_accuracy" not in vanilla.data.metrics
    assert 0.0 <= models[("gmgan", 0)].data.metrics["label_accuracy"] <= 1.0


def _leaves(tree, prefix=""):
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _leaves(value, f"{prefix}{key}.")
    else:
        yield prefix.rstrip("."), tree


def test_dvc_metrics_are_the_numbers_alone(reproduced):
    dest, env, _ = reproduced
    dvc = str(Path(sys.executable).parent / "dvc")
    shown = json.loads(_run([dvc, "metrics", "show", "--json"], dest, env).stdout)
    files = shown[""]["data"]
    assert files and all(path.startswith("metrics/scores/") for path in files), sorted(files)
    for path, content in files.items():
        assert "error" not in content, (path, content)
        leaves = dict(_leaves(content["data"]))
        assert leaves and all(type(v) in (int, float) for v in leaves.values()), (path, leaves)
    # the mean over the seeds, each seed's numbers, and the full record they came from
    seeds = [json.loads((dest / f"metrics/evaluate/vanilla/seed-{s}.json").read_text()) for s in (0, 1)]
    mean = files["metrics/scores/vanilla.json"]["data"]
    assert mean["fid"] == pytest.approx((seeds[0]["fid"] + seeds[1]["fid"]) / 2, rel=1e-12)
    assert set(mean) == {"fid", "kid", "precision", "recall", "density", "coverage"}  # no Inception weights here
    assert files["metrics/scores/vanilla/seed-1.json"]["data"]["recall"] == seeds[1]["recall"]
    assert files["metrics/scores/gmgan.json"]["data"]["label_accuracy"] >= 0  # labelled prior: label accuracy
    assert "metrics/scores/wgan-drs.json" in files  # post-processing methods are rows too
    table = _run([dvc, "metrics", "show"], dest, env).stdout.splitlines()
    assert max(len(line) for line in table) <= 200, table[0]


def test_make_repro_ran_two_trainings_side_by_side_and_left_dvc_nothing(reproduced):
    _, _, proc = reproduced
    events = [line.split()[1:3] for line in proc.stdout.splitlines() if line.startswith("[repro] ")]
    running, overlapped = set(), set()
    for verb, stage in events:
        if verb == "start":
            running.add(stage)
            if sum(name.startswith("train@") for name in running) == 2:
                overlapped.add(frozenset(running))
        elif verb == "done":
            running.discard(stage)
    assert overlapped, proc.stdout[-3000:]
    final = proc.stdout.split("now a plain `dvc repro`")[1]  # what the closing plain `dvc repro` printed
    assert "Running stage" not in final and "up to date" in final


def test_second_repro_is_a_no_op(reproduced):
    dest, env, _ = reproduced
    proc = _run([str(Path(sys.executable).parent / "dvc"), "repro"], dest, env)
    assert "Running stage" not in proc.stdout
    assert "up to date" in proc.stdout


def test_a_fresh_clone_pulls_the_run_from_a_dvc_remote_without_retraining(reproduced, tmp_path):
    # "Working as a team" (README): push the run to a DVC remote, clone the git repository elsewhere, pull.
    dest, env, _ = reproduced
    dvc = str(Path(sys.executable).parent / "dvc")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]
    _run([dvc, "remote", "add", "--default", "team", str(tmp_path / "remote")], dest, env)
    _run([*git, "add", "-A"], dest, env)
    _run([*git, "commit", "-qm", "the tiny run, with its remote"], dest, env)
    _run([dvc, "push"], dest, env)
    clone = tmp_path / "clone"
    _run([*git, "clone", "-q", str(dest), str(clone)], tmp_path, env)
    assert not (clone / "data/train/vanilla/seed-0/checkpoint.pt").exists()  # git holds no data
    _run([dvc, "pull"], clone, env)
    assert json.loads(_run([dvc, "status", "--json"], clone, env).stdout) == {}
    proc = _run([dvc, "repro"], clone, env)
    assert "Running stage" not in proc.stdout  # nothing retrains
    for path in ("reports/results.md", "data/train/vanilla/seed-1/checkpoint.pt", "data/samples/wgan/seed-0.npz"):
        assert (clone / path).read_bytes() == (dest / path).read_bytes(), path


def _status(dest: Path, env: dict) -> set[str]:
    """The stages `dvc status` reports as changed."""
    return set(json.loads(_run([str(Path(sys.executable).parent / "dvc"), "status", "--json"], dest, env).stdout))


@pytest.mark.parametrize("family", ["dcgan", "mlp"])
def test_a_network_change_reruns_its_family_only(reproduced, family):
    dest, env, _ = reproduced
    module = dest / "src/ganlab/nets" / f"{family}.py"
    original = module.read_text()
    module.write_text(original + "# a comment\n")
    try:
        changed = _status(dest, env)
    finally:
        module.write_text(original)
    assert _status(dest, env) == set()
    # validate checks every family's architectures (its record does not change on a comment, so nothing reruns
    # because of it); sampling and training rebuild the networks; evaluation reads samples, not networks
    if family == "dcgan":
        assert changed == {"validate", "train@dcgan_mnist", "sample@dcgan_mnist"}
    else:
        mlp_chains = {f"{stage}@{exp}" for stage in ("train", "sample") for exp in ("vanilla", "wgan", "gmgan", "gmgan_sigma1p4")}
        assert mlp_chains <= changed
        assert not {s for s in changed if "dcgan" in s or s.startswith(("fetch", "prepare", "features"))}


VALIDATE_OUTPUTS = ("metrics/params_valid.json", "data/resolved/")


def _outputs(dest: Path) -> dict[str, str]:
    """sha256 of every pipeline output but validate's own record, and of dvc.lock."""
    files = [p for top in ("data", "metrics", "reports") for p in sorted((dest / top).rglob("*")) if p.is_file()]
    return {str(p.relative_to(dest)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in [*files, dest / "dvc.lock"] if not str(p.relative_to(dest)).startswith(VALIDATE_OUTPUTS)}


def _git_status(dest: Path, env: dict) -> set[str]:
    out = _run(["git", "status", "--porcelain", "--untracked-files=all"], dest, env).stdout
    return {line for line in out.splitlines() if not any(own in line for own in VALIDATE_OUTPUTS)}


@pytest.mark.parametrize("key, value, message", [
    ("batch_size", 1_000_000_000, "vanilla.batch_size: 1000000000 is larger than the training set of mnist"),
    ("discriminator", {"arch": "dcgan", "ndf": 8}, "vanilla.discriminator.arch: unknown architecture 'dcgan' in nets family 'mlp'"),
    ("generator", {"arch": "mlp", "nz": 100, "hiden": [64]}, "vanilla.generator.hiden: unknown key"),
])
def test_a_value_known_bad_before_training_costs_no_output(reproduced, key, value, message):
    # DVC deletes a stage's outputs before running it: a value that train@vanilla would refuse must be refused by
    # validate, before any stage with outputs runs.
    dest, env, _ = reproduced
    dvc = str(Path(sys.executable).parent / "dvc")
    params_file = dest / "params.yaml"
    original = params_file.read_text()
    before, git_before = _outputs(dest), _git_status(dest, env)
    params = yaml.safe_load(original)
    params["vanilla"][key] = value
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        proc = _run([dvc, "repro"], dest, env, check=False)
        ran = {line.split("'")[1] for line in proc.stdout.splitlines() if line.startswith("Running stage")}
        assert proc.returncode != 0 and message in proc.stdout + proc.stderr
        assert ran == {"validate"}
        assert _outputs(dest) == before
        assert _git_status(dest, env) == git_before | {" M params.yaml"}
    finally:
        params_file.write_text(original)
    proc = _run([dvc, "repro"], dest, env)  # validate's record comes back; nothing else reruns
    ran = {line.split("'")[1] for line in proc.stdout.splitlines() if line.startswith("Running stage")}
    assert ran == {"validate"} and _outputs(dest) == before


def test_experiment_reruns_only_the_affected_stages(reproduced):
    dest, env, _ = reproduced
    dvc = str(Path(sys.executable).parent / "dvc")
    proc = _run([dvc, "exp", "run", "-S", "vanilla.optimizer.lr_g=2.0e-4"], dest, env)
    ran = {line.split("'")[1] for line in proc.stdout.splitlines() if line.startswith("Running stage")}
    assert {"train@vanilla", "sample@vanilla", "evaluate@vanilla", "postprocess@vanilla-drs"} <= ran
    # nothing of wgan or gmgan, nor data/features, reruns: only vanilla's chain, the params gate and the report
    assert {stage for stage in ran if "vanilla" not in stage} == {"validate", "report"}


def test_the_sigma_knob_reruns_the_gmgan_chain_only(reproduced):
    dest, env, _ = reproduced
    dvc = str(Path(sys.executable).parent / "dvc")
    proc = _run([dvc, "exp", "run", "-S", "gmgan.sigma=1.5"], dest, env)
    ran = {line.split("'")[1] for line in proc.stdout.splitlines() if line.startswith("Running stage")}
    assert ran == {"validate", "train@gmgan", "sample@gmgan", "evaluate@gmgan", "report"}  # not its sweep point
    # `dvc exp show --only-changed`: gmgan's scores are shown, before any parameter (the knob itself follows them);
    # in this tiny run FID and KID move (precision and recall may not)
    rows = list(csv.reader(_run([dvc, "exp", "show", "--only-changed", "--csv"], dest, env).stdout.splitlines()))
    header = rows[0]
    scores = [c for c in header if c.startswith("metrics/scores/gmgan.json:")]
    assert "metrics/scores/gmgan.json:fid" in scores, header
    assert header.index(scores[-1]) < header.index("gmgan.sigma"), header
    values = {row[header.index("metrics/scores/gmgan.json:fid")] for row in rows[1:]}
    assert len(values) >= 2, rows  # the baseline and the sigma experiment differ in gmgan's FID


def _cell(text: str) -> str:
    """A table cell's whole text in the dumped DOM."""
    return f">{text}<"


@NEEDS_CHROMIUM
def test_the_mlflow_ui_shows_which_sigma_won(reproduced, tmp_path):
    # after test_the_sigma_knob_reruns_the_gmgan_chain_only: gmgan trained in the workspace (σ₀ 1.7) and in a DVC
    # experiment (σ₀ 1.5): the runs table shows both models' FID, the compare page σ₀ beside recall
    from mlflow.tracking import MlflowClient

    from ganlab.views import publish, view_url

    dest, _, _ = reproduced
    uri = f"sqlite:///{dest / 'mlflow.db'}"
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("ganlab")
    found = client.search_runs([experiment.experiment_id], "tags.`ganlab.kind` = 'model' and "
                               "tags.`ganlab.experiment` = 'gmgan' and tags.`ganlab.seed` = '0'")
    models = {run.data.params["gmgan.sigma"]: run for run in found}
    assert sorted(models) == ["1.5", "1.7"], [r.info.run_name for r in found]
    publish(uri)  # `make ui` does it: the saved view "which-setting-won"
    with mlflow_server(uri, tmp_path / "server.log") as base:
        # the view: model runs only, sorted by FID, the scores and the knobs as columns (MLflow hides every metric
        # and param column of an experiment this wide by default), on a 1920-pixel screen
        runs_url, desktop = view_url(base, experiment.experiment_id), "1920,1080"
        names = [run.info.run_name for run in models.values()]
        fids = [str(run.data.metrics["fid"]) for run in models.values()]  # the table prints the full float
        dom = dom_containing(runs_url, tmp_path / "profile1", [*map(_cell, names), *map(_cell, fids)], desktop)
        for text in (*names, *fids, "fid", "recall", "gmgan.sigma", "1.5", "1.7"):
            assert _cell(text) in dom, (text, dom[-3000:])
        assert _cell("report") not in dom  # only the models
        # the compare page of the two gmgan runs: σ₀ and the scores side by side (values with 2 decimals)
        ids = [run.info.run_id for run in models.values()]
        compare_url = (f"{base}/#/compare-runs?runs={urllib.parse.quote(json.dumps(ids))}"
                       f"&experiments={urllib.parse.quote(json.dumps([experiment.experiment_id]))}")
        shown = [f"{run.data.metrics['fid']:.2f}" for run in models.values()]
        dom = dom_containing(compare_url, tmp_path / "profile2", [_cell("gmgan.sigma"), _cell("recall"), *map(_cell, shown)])
        for text in ("gmgan.sigma", "1.5", "1.7", "recall", "fid", *shown):
            assert _cell(text) in dom, (text, dom[-3000:])
        keep_screenshot(runs_url, tmp_path / "profile3", "mlflow_which_setting_won.png", desktop)
        keep_screenshot(compare_url, tmp_path / "profile4", "mlflow_compare_gmgan_sigma.png")


def test_a_misspelled_key_fails_before_any_work(reproduced):
    dest, env, _ = reproduced
    dvc = str(Path(sys.executable).parent / "dvc")
    # DVC itself refuses to set a key that does not exist ...
    proc = _run([dvc, "exp", "run", "-S", "gmgn.sigma=1.4"], dest, env, check=False)
    assert proc.returncode != 0 and "Could not override 'gmgn.sigma'" in proc.stderr
    # ... and when it is forced in (`+key=value`), the validate stage refuses it before any other stage runs.
    proc = _run([dvc, "exp", "run", "-S", "+gmgn.sigma=1.4"], dest, env, check=False)
    assert proc.returncode != 0
    assert "gmgn: unknown top-level key" in proc.stdout + proc.stderr
    ran = {line.split("'")[1] for line in proc.stdout.splitlines() if line.startswith("Running stage")}
    assert ran == {"validate"}
