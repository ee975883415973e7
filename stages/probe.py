"""Stage `probe@<experiment>`: SVM / linear / 1-NN accuracy of classifiers on a BiGAN encoder's codes E(x),
and the reconstruction grid x vs G(E(x)) of the first test images.

    python stages/probe.py --experiment bigan_mnist --checkpoint data/train/bigan_mnist/seed-0/checkpoint.pt \
        --data data/prepared/mnist.npz --out metrics/probe/bigan_mnist.json \
        --recon reports/grids/bigan_mnist-recon.png

The protocol (train subset size, seed, SVM C) is the experiment's `probe:` section; the metrics file records it.
The reconstruction grid (`ganlab.visuals.reconstructions`: the first `RECON_IMAGES` test images, each grid row
of reals above its row of reconstructions) is also logged to MLflow under `grids/`.
"""

import _project_python  # noqa: F401, I001  (first: the project's Python, or one line saying how)

import argparse
import time
from pathlib import Path

import mlflow

from ganlab import checkpoint as ckpt_io
from ganlab.config import ConfigError, flatten, load_experiment, read_params
from ganlab.data.arrays import load_prepared
from ganlab.images import save_grid
from ganlab.io import write_json
from ganlab.probe import encode, probe_codes, train_subset
from ganlab.runtime import resolve_device, seed_everything, stage_entry
from ganlab.tracking import log_model_results, model_run_id, recipe_params, stage_run
from ganlab.modules import load_modules
from ganlab.visuals import RECON_IMAGES, RECON_PER_ROW, reconstructions


@stage_entry
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--recon", required=True, type=Path, help="PNG: test images above their G(E(x))")
    args = parser.parse_args()

    pipeline, cfg = load_experiment(read_params(args.params), args.experiment)
    if cfg.probe is None:
        raise ConfigError(f"{args.experiment}.probe: required for stage probe@{args.experiment}")
    device = resolve_device(pipeline.device)
    seed_everything(cfg.probe.seed)
    data = load_prepared(args.data)
    state = ckpt_io.load(args.checkpoint, map_location=device)
    parts = load_modules(state, device)
    encoder = parts.encoder
    size = cfg.probe.train_size.at(pipeline.scale)
    idx = train_subset(len(data["x_train"]), size, cfg.probe.seed)
    run_params = {"experiment": args.experiment, "scale": pipeline.scale,
                  **{f"probe.{k}": v for k, v in flatten(cfg.probe).items()}}
    training_seed = state["config"]["seed"]
    model = model_run_id(args.experiment, training_seed,
                         recipe_params(args.experiment, training_seed, flatten(state["config"])))
    with stage_run("probe", f"probe@{args.experiment}", run_params, parent=model):
        t0 = time.perf_counter()
        train_codes = encode(encoder, data["x_train"][idx], batch_size=500, device=device)
        test_codes = encode(encoder, data["x_test"], batch_size=500, device=device)
        scores = probe_codes(train_codes, data["y_train"][idx], test_codes, data["y_test"],
                             svm_c=cfg.probe.svm_c, nearest_neighbour=cfg.probe.nearest_neighbour)
        mlflow.log_metrics(scores)
        log_model_results(model, "probe", scores)  # probe.svm_rbf_accuracy, ... on the encoder's model run
        recon = reconstructions(encoder, parts.generator, data["x_test"][:RECON_IMAGES], device)
        mlflow.log_artifact(str(save_grid(recon, args.recon, nrow=RECON_PER_ROW)), artifact_path="grids")
        write_json(args.out, {
            "experiment": args.experiment, **scores,
            "n_train": int(len(idx)), "n_test": int(len(test_codes)), "code_dim": int(train_codes.shape[1]),
            "train_subset_seed": cfg.probe.seed, "svm": f"rbf, C={cfg.probe.svm_c}, gamma=scale, standardised",
            "linear": "logistic regression, standardised", "nearest_neighbour": "1-NN, Euclidean, raw codes",
            "checkpoint_sha256": ckpt_io.file_sha256(args.checkpoint), "epoch": state["epoch"],
            "seconds": time.perf_counter() - t0,
        })
    print(f"probe@{args.experiment}: {scores}")


if __name__ == "__main__":
    main()
