"""Bad params and bad data are refused before any work: exit code 2, one line naming the key (or the file) and
what is allowed, every existing output untouched, no MLflow run. Plus a few source-tree safety checks.

The battery runs each case in-process through the stages' `main()` (fast), and again as real subprocesses
(`-m slow`), several at a time.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from repo_copy import ROOT, run_stage, stage_env, tiny_params, train_args, write_params, write_tiny_dataset

# ---------------------------------------------------------------------------------------------------
# The battery: (id, edit of a valid params dict, substrings the one line must contain)


def _set(path: str, value: Any) -> Callable[[dict], None]:
    def edit(params: dict) -> None:
        *parents, last = path.split(".")
        node = params
        for key in parents:
            node = node[key]
        node[last] = value

    return edit


def _delete(path: str) -> Callable[[dict], None]:
    def edit(params: dict) -> None:
        *parents, last = path.split(".")
        node = params
        for key in parents:
            node = node[key]
        del node[last]

    return edit


def _rename(path: str, new: str) -> Callable[[dict], None]:
    def edit(params: dict) -> None:
        *parents, last = path.split(".")
        node = params
        for key in parents:
            node = node[key]
        node[new] = node.pop(last)

    return edit


def _mixture(**overrides: Any) -> Callable[[dict], None]:
    def edit(params: dict) -> None:
        params["tiny"].update({"prior": "static_mixture", "num_components": 10, "sigma": 1.0, "c": 1.0, **overrides})

    return edit


PARAMS_CASES: list[tuple[str, Callable[[dict], None], list[str]]] = [
    ("lr_as_string", _set("tiny.optimizer.lr_g", "2e-4"), ["tiny.optimizer.lr_g", "string '2e-4'", "2.0e-4"]),
    ("int_as_float", _set("tiny.batch_size", 6.5), ["tiny.batch_size", "expected an integer"]),
    ("int_as_string", _set("tiny.n_critic", "5"), ["tiny.n_critic", "expected a number"]),
    ("bool_as_number", _set("tiny.gp_weight", True), ["tiny.gp_weight", "boolean"]),
    ("list_as_string", _set("tiny.generator.hidden", "64,128"), ["tiny.generator.hidden", "valid tuple"]),
    ("negative_lr", _set("tiny.optimizer.lr_g", -1.0e-4), ["tiny.optimizer.lr_g", "greater than 0"]),
    ("zero_lr", _set("tiny.optimizer.lr_d", 0.0), ["tiny.optimizer.lr_d", "greater than 0"]),
    ("beta_out_of_range", _set("tiny.optimizer.betas", [0.5, 1.0]), ["tiny.optimizer.betas.1", "less than 1"]),
    ("unknown_generator", _set("tiny.generator.arch", "resnet9000"), ["tiny.generator.arch", "'resnet9000'", "allowed"]),
    ("unknown_loss", _set("tiny.loss", "wgan"), ["tiny.loss", "'wgan'", "allowed", "'wasserstein'"]),
    ("unknown_optimizer", _set("tiny.optimizer.name", "sgd"), ["tiny.optimizer.name", "'adam' or 'rmsprop'"]),
    ("unknown_prior", _set("tiny.prior", "gaussian_mixtrue"), ["tiny.prior", "'gaussian_mixtrue'", "allowed"]),
    ("zero_components", _mixture(num_components=0), ["tiny.num_components", "greater than 0"]),
    ("zero_sigma", _mixture(sigma=0.0), ["tiny.sigma", "greater than 0"]),
    ("negative_sigma", _mixture(sigma=-1.4), ["tiny.sigma", "greater than 0"]),
    ("zero_n_critic", _set("tiny.n_critic", 0), ["tiny.n_critic", "greater than 0"]),
    ("zero_epochs", _set("tiny.num_epochs.quick", 0), ["tiny.num_epochs.quick", "greater than 0"]),
    ("misspelled_key", _rename("tiny.optimizer", "optimiser"), ["tiny.optimiser", "unknown key"]),
    ("misspelled_nested_key", _rename("tiny.optimizer.lr_g", "lr_gen"), ["tiny.optimizer.lr_gen", "unknown key"]),
    ("misspelled_top_level", _set("scael", "quick"), ["scael", "unknown top-level key", "allowed"]),
    ("unknown_scale", _set("scale", "fast"), ["scale", "'quick' or 'paper'"]),
    ("bad_device", _set("device", "gpu"), ["device", "'gpu'", "allowed"]),
    ("missing_evaluate", _delete("evaluate"), ["evaluate", "missing"]),
    ("missing_experiment_section", _delete("tiny"), ["experiments.tiny", "no section"]),
    ("missing_required_key", _delete("tiny.optimizer.lr_g"), ["tiny.optimizer.lr_g", "missing"]),
    ("missing_scale_value", _delete("tiny.num_epochs.paper"), ["tiny.num_epochs.paper", "missing"]),
]
# Cases only `validate` can catch (the train stage of an experiment does not read them).
VALIDATE_ONLY_CASES = [
    ("unknown_dataset", _set("datasets", ["mnist", "imagenet"]), ["imagenet"]),
]


def _valid_params() -> dict:
    return tiny_params(num_epochs={"quick": 1, "paper": 1})


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _snapshot(ws: Path) -> dict[str, tuple[str, int]]:
    """(sha256, mtime_ns) of every file in the workspace except params.yaml."""
    return {
        str(p.relative_to(ws)): (_sha(p), p.stat().st_mtime_ns)
        for p in sorted(ws.rglob("*")) if p.is_file() and p.name != "params.yaml"
    }


def _workspace(ws: Path, params: dict | str, n_train: int = 64, outputs: bool = True) -> Path:
    """A workspace with (`outputs`) stand-ins for the outputs of an earlier run, which must survive a refusal."""
    ws.mkdir(parents=True, exist_ok=True)
    if isinstance(params, str):
        (ws / "params.yaml").write_text(params)
    else:
        write_params(ws / "params.yaml", params)
    write_tiny_dataset(ws / "data" / "prepared.npz", n_train=n_train)
    for name, content in {} if not outputs else {
        "metrics/params_valid.json": '{"params_valid": true}\n',
        "metrics/tiny.json": '{"runs": [{"seed": 0, "epochs": 1}]}\n',
        "metrics/tiny_losses.csv": "seed,epoch,loss_d,loss_g\n0,1,1.0,1.0\n",
        "train/seed-0/checkpoint.pt": "an earlier checkpoint",
        "train/seed-0/grids/epoch_0001.png": "png",
    }.items():
        (ws / name).parent.mkdir(parents=True, exist_ok=True)
        (ws / name).write_text(content)
    return ws


def _validate_args(ws: Path) -> list[str]:
    return ["--params", str(ws / "params.yaml"), "--out", str(ws / "metrics" / "params_valid.json"),
            "--resolved", str(ws / "resolved")]


def _assert_refused(code: int, stderr: str, expected: list[str], ws: Path, before: dict) -> None:
    assert code == 2, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got:\n{stderr}"
    assert lines[0].startswith("error: ") and "Traceback" not in stderr
    for part in expected:
        assert part in lines[0], f"{part!r} not in {lines[0]!r}"
    assert _snapshot(ws) == before, "an existing output was touched"
    assert not (ws / "m.db").exists(), "an MLflow run was started"


def _load_stage(name: str):
    spec = importlib.util.spec_from_file_location(f"stage_{name}_under_test", ROOT / "stages" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def stages():
    return {name: _load_stage(name) for name in ("validate", "train", "prepare", "fetch")}


def _run_in_process(stage, argv: list[str], ws: Path, monkeypatch, capsys) -> tuple[int, str]:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{ws / 'm.db'}")
    monkeypatch.chdir(ws)
    monkeypatch.setattr(sys, "argv", ["stage", *argv])
    capsys.readouterr()
    try:
        stage.main()
    except SystemExit as e:
        return e.code, capsys.readouterr().err
    return 0, capsys.readouterr().err


def test_the_valid_params_pass_both_stages(tmp_path):
    # The other side of every refusal below: the unedited params are accepted by the same commands.
    ws = _workspace(tmp_path, _valid_params(), outputs=False)
    proc = run_stage("validate", _validate_args(ws), ws, stage_env(ws))
    assert proc.returncode == 0, proc.stderr
    proc = run_stage("train", train_args(ws), ws, stage_env(ws))
    assert proc.returncode == 0, proc.stderr
    assert json.loads((ws / "metrics" / "tiny.json").read_text())["runs"][0]["epochs"] == 1


@pytest.mark.parametrize("case, edit, expected", PARAMS_CASES + VALIDATE_ONLY_CASES,
                         ids=[c[0] for c in PARAMS_CASES + VALIDATE_ONLY_CASES])
def test_bad_params_are_refused_in_process(case, edit, expected, tmp_path, monkeypatch, capsys, stages):
    params = _valid_params()
    edit(params)
    ws = _workspace(tmp_path, params)
    before = _snapshot(ws)
    for stage, argv in (("validate", _validate_args(ws)), ("train", train_args(ws))):
        if stage == "train" and (case, edit, expected) in VALIDATE_ONLY_CASES:
            continue
        code, err = _run_in_process(stages[stage], argv, ws, monkeypatch, capsys)
        _assert_refused(code, err, expected, ws, before)


def test_yaml_syntax_error_is_one_line(tmp_path, monkeypatch, capsys, stages):
    ws = _workspace(tmp_path, "scale: quick\ntiny: {generator: [\n")
    before = _snapshot(ws)
    code, err = _run_in_process(stages["validate"], _validate_args(ws), ws, monkeypatch, capsys)
    _assert_refused(code, err, ["params.yaml: not valid YAML", "line "], ws, before)


def test_batch_larger_than_the_dataset_is_refused_before_training(tmp_path, monkeypatch, capsys, stages):
    params = _valid_params()
    params["tiny"]["batch_size"] = 65
    ws = _workspace(tmp_path, params, n_train=64)
    before = _snapshot(ws)
    code, err = _run_in_process(stages["validate"], _validate_args(ws), ws, monkeypatch, capsys)
    assert code == 0  # validate cannot know the dataset's size; the train stage checks it before any work
    before = _snapshot(ws)
    code, err = _run_in_process(stages["train"], train_args(ws), ws, monkeypatch, capsys)
    _assert_refused(code, err, ["tiny.batch_size: 65", "64 images", "allowed: 1..64"], ws, before)


# ---------------------------------------------------------------------------------------------------
# The same battery through real processes


# A sample of the battery through the command line (the in-process runs above cover every case through the
# same `main()`; each process costs seconds of imports on a loaded machine).
SUBPROCESS_CASES = {
    "lr_as_string": ("validate", "train"),
    "unknown_loss": ("validate",),
    "zero_sigma": ("validate",),
    "misspelled_top_level": ("validate",),
    "unknown_dataset": ("validate",),
    "missing_evaluate": ("train",),
    "zero_n_critic": ("train",),
}


@pytest.mark.slow
def test_bad_params_are_refused_by_the_stage_processes(tmp_path):
    jobs = []
    for case, edit, expected in PARAMS_CASES + VALIDATE_ONLY_CASES:
        for stage in SUBPROCESS_CASES.get(case, ()):
            params = _valid_params()
            edit(params)
            ws = _workspace(tmp_path / f"{case}-{stage}", params)
            argv = _validate_args(ws) if stage == "validate" else train_args(ws)
            jobs.append((case, stage, ws, argv, expected, _snapshot(ws)))
    assert len(jobs) == sum(map(len, SUBPROCESS_CASES.values()))

    def run(job):
        case, stage, ws, argv, expected, before = job
        return job, run_stage(stage, argv, ws, stage_env(ws))

    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        for (case, stage, ws, _, expected, before), proc in pool.map(run, jobs):
            try:
                _assert_refused(proc.returncode, proc.stderr, expected, ws, before)
            except AssertionError as e:
                raise AssertionError(f"{stage} / {case}: {e}") from None


# ---------------------------------------------------------------------------------------------------
# Bad data


def _write_raw_npz(path: Path, **replace: np.ndarray) -> Path:
    """A dataset npz written without validation, with some arrays replaced."""
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, size=(32, 28, 28, 1), dtype=np.uint8),
        "y_train": rng.integers(0, 10, size=32).astype(np.int64),
        "x_test": rng.integers(0, 256, size=(8, 28, 28, 1), dtype=np.uint8),
        "y_test": rng.integers(0, 10, size=8).astype(np.int64),
        "class_names": np.array([str(i) for i in range(10)]),
    }
    arrays.update(replace)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        np.savez(f, **{k: v for k, v in arrays.items() if v is not None})
    return path


def _truncated(path: Path) -> Path:
    _write_raw_npz(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


BAD_DATA = [
    ("truncated", _truncated, ["prepared.npz", "not a readable"]),
    ("not_an_npz", lambda p: p.write_bytes(b"\x00" * 100) and p, ["prepared.npz"]),
    ("float_images", lambda p: _write_raw_npz(p, x_train=np.zeros((32, 28, 28, 1), np.float32)),
     ["prepared.npz", "x_train must be uint8 (N, H, W, C)", "float32"]),
    ("flat_images", lambda p: _write_raw_npz(p, x_train=np.zeros((32, 784), np.uint8)),
     ["prepared.npz", "x_train must be uint8 (N, H, W, C)", "(32, 784)"]),
    ("missing_array", lambda p: _write_raw_npz(p, y_test=None), ["prepared.npz", "missing arrays ['y_test']"]),
]


@pytest.mark.parametrize("case, corrupt, expected", BAD_DATA, ids=[c[0] for c in BAD_DATA])
def test_train_refuses_a_bad_prepared_file_naming_it(case, corrupt, expected, tmp_path, monkeypatch, capsys, stages):
    ws = _workspace(tmp_path, _valid_params())
    corrupt(ws / "data" / "prepared.npz")
    before = _snapshot(ws)
    code, err = _run_in_process(stages["train"], train_args(ws), ws, monkeypatch, capsys)
    _assert_refused(code, err, expected, ws, before)


def test_train_refuses_a_checkpoint_it_cannot_read(tmp_path, monkeypatch, capsys, stages):
    # The workspace's checkpoint.pt holds text, not a checkpoint (a torn copy, a wrong file).
    ws = _workspace(tmp_path, _valid_params())
    before = _snapshot(ws)
    code, err = _run_in_process(stages["train"], train_args(ws), ws, monkeypatch, capsys)
    _assert_refused(code, err, ["checkpoint.pt", "not a readable checkpoint", "delete it"], ws, before)


def test_train_refuses_a_missing_prepared_file(tmp_path, monkeypatch, capsys, stages):
    ws = _workspace(tmp_path, _valid_params())
    (ws / "data" / "prepared.npz").unlink()
    before = _snapshot(ws)
    code, err = _run_in_process(stages["train"], train_args(ws), ws, monkeypatch, capsys)
    _assert_refused(code, err, ["prepared.npz", "No such file"], ws, before)


@pytest.mark.parametrize("case, corrupt, expected", [
    ("truncated", _truncated, ["mnist.npz", "not a readable npz"]),
    ("float_images", lambda p: _write_raw_npz(p, x_test=np.zeros((8, 28, 28, 1), np.float64)),
     ["mnist.npz", "x_test must be uint8", "float64"]),
    ("labels_out_of_range", lambda p: _write_raw_npz(p, y_train=np.full(32, 10, np.int64)),
     ["mnist.npz", "y_train outside [0, 10)"]),
], ids=["truncated", "float_images", "labels_out_of_range"])
def test_prepare_refuses_a_bad_raw_file_naming_it(case, corrupt, expected, tmp_path, monkeypatch, capsys, stages):
    raw = corrupt(tmp_path / "raw" / "mnist.npz")
    out = tmp_path / "prepared" / "mnist.npz"
    code, err = _run_in_process(
        stages["prepare"], ["--dataset", "mnist", "--raw", str(raw), "--out", str(out)], tmp_path, monkeypatch, capsys
    )
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    for part in expected:
        assert part in err
    assert not out.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir()), "a temporary file was left"


def _fetch_sheep(ws: Path, stages, monkeypatch, capsys) -> tuple[int, str]:
    """The fetch stage for `sheep` with only a manual folder (no cache; the network is never reached when
    the manual file exists)."""
    write_params(ws / "params.yaml", _valid_params())
    monkeypatch.setenv("GANLAB_MANUAL_DIR", str(ws / "manual"))
    monkeypatch.setenv("GANLAB_DOWNLOAD_DIR", str(ws / "downloads"))
    argv = ["--params", str(ws / "params.yaml"), "--dataset", "sheep",
            "--out", str(ws / "raw" / "sheep.npz"), "--source", str(ws / "raw" / "sheep.json")]
    return _run_in_process(stages["fetch"], argv, ws, monkeypatch, capsys)


def _sheep_npy(n: int = 20, width: int = 784) -> bytes:
    import io

    buffer = io.BytesIO()
    np.save(buffer, np.random.default_rng(0).integers(0, 256, size=(n, width), dtype=np.uint8))
    return buffer.getvalue()


@pytest.mark.parametrize("case, content, expected", [
    ("truncated", _sheep_npy()[:1000], ["sheep.npy", "not a readable .npy"]),
    ("wrong_shape", _sheep_npy(width=100), ["sheep.npy", "expected uint8 (N, 784)", "(20, 100)"]),
], ids=["truncated", "wrong_shape"])
def test_fetch_refuses_a_corrupted_manual_file_naming_it(case, content, expected, tmp_path, monkeypatch, capsys, stages):
    (tmp_path / "manual").mkdir()
    (tmp_path / "manual" / "sheep.npy").write_bytes(content)
    code, err = _fetch_sheep(tmp_path, stages, monkeypatch, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    for part in expected:
        assert part in err
    assert not (tmp_path / "raw" / "sheep.npz").exists()


def test_a_corrupted_first_acquisition_does_not_pin_its_checksum(tmp_path, monkeypatch, capsys, stages):
    (tmp_path / "manual").mkdir()
    (tmp_path / "manual" / "sheep.npy").write_bytes(_sheep_npy()[:1000])
    code, _ = _fetch_sheep(tmp_path, stages, monkeypatch, capsys)
    assert code == 2
    (tmp_path / "manual" / "sheep.npy").write_bytes(_sheep_npy())  # the user places the good file
    code, err = _fetch_sheep(tmp_path, stages, monkeypatch, capsys)
    assert code == 0, err


def test_fetch_refuses_a_file_whose_checksum_changed(tmp_path, monkeypatch, capsys, stages):
    (tmp_path / "manual").mkdir()
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "acquired_checksums.json").write_text(json.dumps(
        {"sheep.npy": {"sha256": "0" * 64, "size_bytes": 1, "source": "test"}}))
    (tmp_path / "manual" / "sheep.npy").write_bytes(_sheep_npy())
    code, err = _fetch_sheep(tmp_path, stages, monkeypatch, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "sheep.npy" in err and "sha256 mismatch" in err and "0" * 64 in err


# ---------------------------------------------------------------------------------------------------
# Safety: no arbitrary unpickling, the UI only on localhost


def _sources() -> list[Path]:
    return sorted([*(ROOT / "src").rglob("*.py"), *(ROOT / "stages").glob("*.py"), *(ROOT / "benchmarks").rglob("*.py")])


def _calls(name: str) -> list[tuple[Path, int, str]]:
    """Every call `name(...)` in the sources, with its full argument text (calls may span lines)."""
    found = []
    for path in _sources():
        text = path.read_text()
        for match in re.finditer(re.escape(name) + r"\(", text):
            depth, i = 1, match.end()
            while depth and i < len(text):
                depth += {"(": 1, ")": -1}.get(text[i], 0)
                i += 1
            found.append((path, text.count("\n", 0, match.start()) + 1, text[match.end() : i - 1]))
    return found


def test_every_torch_load_refuses_pickled_code():
    calls = _calls("torch.load")
    assert calls, "no torch.load found: the scan is broken"
    unsafe = [f"{p.relative_to(ROOT)}:{line}" for p, line, args in calls if "weights_only=True" not in args]
    assert not unsafe, f"torch.load without weights_only=True: {unsafe}"


def test_pickle_is_only_used_by_the_restricted_unpickler():
    allowed = ROOT / "src" / "ganlab" / "data" / "common.py"
    offenders = []
    for path in _sources():
        text = path.read_text()
        for pattern in (r"pickle\.loads?\(", r"\bUnpickler\(", r"allow_pickle\s*=\s*True", r"import dill", r"cloudpickle"):
            for match in re.finditer(pattern, text):
                offenders.append((path, text.count("\n", 0, match.start()) + 1, match.group()))
    assert [(p, m) for p, _, m in offenders if p != allowed] == []
    # the one Unpickler is the restricted one (it overrides find_class)
    text = allowed.read_text()
    assert "class _RestrictedUnpickler(pickle.Unpickler)" in text and "def find_class" in text


def test_make_ui_binds_localhost_only():
    makefile = (ROOT / "Makefile").read_text()
    ui = makefile[makefile.index("\nui:") :].split("\n\n")[0]
    assert "mlflow ui" in ui or "mlflow server" in ui
    assert re.search(r"--host[ =]127\.0\.0\.1\b", ui), ui
    assert "0.0.0.0" not in makefile


@pytest.mark.parametrize("old, new, expected", [
    ("method: drs, mode", "method: drs2, mode", ["runs.vanilla-drs.method", "'drs2'", "allowed"]),
    ("threshold: 0.7}", 'threshold: "0.7"}', ["runs.vanilla-drs.threshold", "string '0.7'"]),
], ids=["unknown_method", "number_as_string"])
def test_postprocess_refuses_a_bad_method_entry_before_loading_anything(old, new, expected, tmp_path, monkeypatch, capsys):
    text = (ROOT / "postprocess.yaml").read_text()
    assert old in text
    (tmp_path / "postprocess.yaml").write_text(text.replace(old, new, 1))
    (tmp_path / "params.yaml").write_text((ROOT / "params.yaml").read_text())
    argv = ["--params", str(tmp_path / "params.yaml"), "--postprocess", str(tmp_path / "postprocess.yaml"),
            "--name", "vanilla-drs", "--checkpoint", str(tmp_path / "absent.pt"), "--data", str(tmp_path / "absent.npz"),
            "--out", str(tmp_path / "out.npz"), "--info", str(tmp_path / "info.json")]
    code, err = _run_in_process(_load_stage("postprocess"), argv, tmp_path, monkeypatch, capsys)
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    for part in expected:
        assert part in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml", "postprocess.yaml"]
