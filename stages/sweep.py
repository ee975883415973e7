"""Stage `sweep@<name>`: FID / precision / recall / density / coverage against the real test set for each value of
one numeric option of one post-processing method (postprocess.yaml `sweeps.<name>`: DRS threshold 0.5 ... 0.9,
truncation psi, ...), in the domain feature space (no Inception: a sweep is a trend; the main-table rows
`evaluate_pp@<run>` have it). Every value uses the evaluation seeds of stage `postprocess`, so point x is the
single run with that value; DRS fits its calibration head once for the whole sweep and records each point's
acceptance rate. Writes the series in the report's format (under metrics/evaluate, so the report draws it), a CSV
for `dvc plots` (the key, the metrics [, acceptance_rate]) and a PNG; one MLflow step per value.

    python stages/sweep.py --name vanilla-truncation --checkpoint data/train/vanilla-0/checkpoint.pt \
        --data data/prepared/mnist.npz --net data/features/mnist/network.pt \
        --reference data/features/mnist/reference.npz --out metrics/evaluate/sweeps/vanilla-truncation.json \
        --csv metrics/sweeps/vanilla-truncation.csv --figure reports/sweeps/vanilla-truncation.png
"""

import _project_python  # noqa: F401, I001  (first: the project's Python, or one line saying how)

import argparse
from pathlib import Path

import mlflow
import numpy as np

from ganlab import checkpoint as ckpt_io
from ganlab import plots
from ganlab.catalogue import METRICS, Stat, SweepPoint
from ganlab.config import flatten, load_pipeline, read_params
from ganlab.data.arrays import load_prepared
from ganlab.evaluation import evaluation_protocol
from ganlab.features import load_feature_net, load_reference
from ganlab.io import write_csv, write_json
from ganlab.modules import trained_precision
from ganlab.postprocess import (
    SWEEP_CURVES,
    Context,
    load_entry,
    load_gan,
    run_sweep,
    sweep_point,
    sweep_series,
    sweep_shared,
)
from ganlab.runtime import resolve_device, seed_everything, stage_entry
from ganlab.sampling import evaluation_seeds
from ganlab.scoring import score
from ganlab.tracking import model_run_id, recipe_params, stage_run


@stage_entry
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", type=Path)
    parser.add_argument("--postprocess", default="postprocess.yaml", type=Path)
    parser.add_argument("--name", required=True, help="an entry of postprocess.yaml `sweeps`")
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--data", required=True, type=Path, help="prepared dataset (test; train: DRS calibration)")
    parser.add_argument("--net", required=True, type=Path)
    parser.add_argument("--reference", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path, help="series JSON (report format)")
    parser.add_argument("--csv", required=True, type=Path)
    parser.add_argument("--figure", required=True, type=Path)
    args = parser.parse_args()

    pipeline = load_pipeline(read_params(args.params))
    cfg = load_entry(args.postprocess, pipeline, "sweeps", args.name)
    device = resolve_device(pipeline.device)
    seed_everything(pipeline.evaluate.seed)  # nothing below draws from global RNGs; belt and braces
    evaluate = pipeline.evaluate
    sample_seeds = evaluation_seeds(evaluate.n_samples.at(pipeline.scale), evaluate.seed)  # as postprocess@
    data = load_prepared(args.data)
    state = ckpt_io.load(args.checkpoint, map_location=device)
    gan = load_gan(state, device)
    ctx = Context(scale=pipeline.scale, device=device, batch_size=evaluate.batch_size, real_images=data["x_train"])
    net = load_feature_net(args.net, device)
    reference = load_reference(args.reference, net, data["x_test"][: int(np.load(args.reference)["n"])])
    checkpoint_sha256 = ckpt_io.file_sha256(args.checkpoint)
    curves = SWEEP_CURVES.get(cfg.method, ())

    params = {"name": args.name, "experiment": cfg.experiment, "method": cfg.method, "key": cfg.key,
              "values": str(cfg.values), **{f"options.{k}": str(v) for k, v in cfg.options.items()},
              "scale": pipeline.scale}
    training_seed = state["config"]["seed"]
    model = model_run_id(cfg.experiment, training_seed,
                         recipe_params(cfg.experiment, training_seed, flatten(state["config"])))
    with stage_run("sweep", f"sweep@{args.name}", params, parent=model):
        points, shared = [], {}
        for i, step in enumerate(run_sweep(cfg, gan, sample_seeds, ctx)):
            metrics = score(step.images, net, reference, nearest_k=evaluate.nearest_k, device=device)
            point = sweep_point(cfg, step, metrics)
            points.append(point)
            shared = sweep_shared(cfg, step)
            mlflow.log_metrics({cfg.key: step.x, **metrics, **{k: point[k] for k in curves}}, step=i)
            print(f"sweep@{args.name}: {cfg.key} {step.x}: "
                  + ", ".join(f"{k} {point[k]:.4f}" for k in (*curves, *metrics)))
        provenance = {"checkpoint_sha256": checkpoint_sha256, "training_seed": training_seed,
                      "training_precision": trained_precision(state), "scale": pipeline.scale}
        protocol = evaluation_protocol(net, reference, n_fake=len(sample_seeds), nearest_k=evaluate.nearest_k,
                                       seed=evaluate.seed, provenance=provenance)
        series = sweep_series(cfg, points, protocol, scale=pipeline.scale, **shared)
        write_json(args.out, series)
        columns = [k for k in (cfg.key, *METRICS, *curves) if k in series["points"][0]]  # no label accuracy here
        write_csv(args.csv, [{k: p[k] for k in columns} for p in series["points"]])
        mode = f" ({series['method_params']['mode']} mode)" if "mode" in series["method_params"] else ""
        drawn = [SweepPoint(p[cfg.key], {m: Stat.of([p[m]]) for m in columns[1:]}) for p in series["points"]]
        figure = plots.sweep({f"{cfg.experiment}+{cfg.method}": drawn}, x_label=f"{cfg.method} {cfg.key}{mode}",
                             out=args.figure, metrics=("fid", "precision", "recall", *curves))
        mlflow.log_artifact(str(figure), artifact_path="figures")
    print(f"sweep@{args.name}: {len(points)} values of {cfg.key} -> {args.out}, {args.csv}, {args.figure}")


if __name__ == "__main__":
    main()
