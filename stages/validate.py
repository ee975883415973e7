"""Stage `validate`: check the whole params.yaml before any other stage runs, and write each experiment's
resolved recipe.

    python stages/validate.py --out metrics/params_valid.json --resolved data/resolved

It declares the whole file as its dependency, so even a key that no other stage reads (a typo such as
`dvc exp run -S gmgn.sigma=1.4`) is caught here: exit code 2 and one line naming the key. Its output is
constant when the params are valid, so downstream stages are not rerun because of it. <resolved>/<exp>.json
is experiment <exp>'s recipe with a sweep point's base merged in (`resolve_section`): it changes exactly when
the recipe does, so the stages of a sweep point depend on it and rerun when its base section changes.

Everything that can be known before training is refused here, because DVC deletes a stage's outputs before it
runs the stage: an error found by `train@<exp>` would cost that stage's last good outputs. Checked: every
section's shape and types (`ganlab.config`), every recipe's loss, architectures and their options in its `nets`
family, and prior (`ganlab.recipe`), and each batch size against its dataset's training set where the dataset
registry knows its size (`DatasetSpec.train_size`).
"""

import _project_python  # noqa: F401, I001  (first: the project's Python, or one line saying how)

import argparse
from pathlib import Path

from ganlab.config import ExperimentConfig, load_pipeline, read_params, resolve_section
from ganlab.data.registry import DATASETS
from ganlab.io import write_json
from ganlab.recipe import load_recipe
from ganlab.runtime import resolve_device, stage_entry
from ganlab.schema import ConfigError


@stage_entry
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", required=True)
    parser.add_argument("--resolved", required=True, type=Path, help="folder of the <experiment>.json recipes")
    args = parser.parse_args()

    params = read_params(args.params)
    pipeline = load_pipeline(params)
    for name in pipeline.datasets:
        if name not in DATASETS:
            raise ConfigError(f"datasets: unknown dataset {name!r}; allowed: {sorted(DATASETS)}")
    for name, entry in pipeline.experiments.items():
        _check_batch_size(name, load_recipe(params, name)[1], entry.dataset)
    resolve_device(pipeline.device)
    for name in pipeline.experiments:
        write_json(args.resolved / f"{name}.json", resolve_section(params, name))
    for stale in set(args.resolved.glob("*.json")) - {args.resolved / f"{n}.json" for n in pipeline.experiments}:
        stale.unlink()  # an experiment taken out of `experiments`
    write_json(args.out, {"params_valid": True})


def _check_batch_size(name: str, cfg: ExperimentConfig, dataset: str) -> None:
    n_train = DATASETS[dataset].train_size
    if n_train is not None and cfg.batch_size > n_train:
        raise ConfigError(f"{name}.batch_size: {cfg.batch_size} is larger than the training set of {dataset} "
                          f"({n_train} images); allowed: 1..{n_train}")


if __name__ == "__main__":
    main()
