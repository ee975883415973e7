"""Stage `drs_sweep@<name>`: FID / precision / recall / density / coverage of DRS samples against the real test
set for each acceptance threshold of postprocess.yaml `drs_sweep.<name>` (report 003: 0.5 ... 0.9), in the
domain feature space (no Inception: the sweep is a trend, the main-table row `evaluate_pp@<exp>-drs` has it).
One calibration head for all thresholds; each point records its acceptance rate. Writes the series in the
report's format (a sweep file under metrics/evaluate), a CSV for `dvc plots` and a PNG.

    python stages/drs_sweep.py --name vanilla --checkpoint data/train/vanilla/checkpoint.pt \
        --data data/prepared/mnist.npz --net data/features/mnist/network.pt \
        --reference data/features/mnist/reference.npz --out metrics/evaluate/sweeps/vanilla-drs-threshold.json \
        --csv metrics/drs_sweep/vanilla.csv --figure reports/drs_sweep/vanilla.png
"""

import argparse
import time
from pathlib import Path

import mlflow
import numpy as np

from ganlab import checkpoint as ckpt_io
from ganlab import plots
from ganlab.catalogue import METRICS, Stat, SweepPoint
from ganlab.config import ConfigError, load_pipeline, read_params
from ganlab.data.arrays import load_prepared
from ganlab.evaluation import score
from ganlab.features import load_feature_net, load_reference
from ganlab.io import write_csv, write_json
from ganlab.postprocess import (
    Context,
    calibrate,
    drs_with,
    load_gan,
    load_postprocess,
    read_postprocess,
    sweep_series,
)
from ganlab.runtime import resolve_device, seed_everything, stage_entry
from ganlab.tracking import stage_run


@stage_entry
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", type=Path)
    parser.add_argument("--postprocess", default="postprocess.yaml", type=Path)
    parser.add_argument("--name", required=True, help="an entry of postprocess.yaml `drs_sweep`")
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--net", required=True, type=Path)
    parser.add_argument("--reference", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path, help="series JSON (report format)")
    parser.add_argument("--csv", required=True, type=Path)
    parser.add_argument("--figure", required=True, type=Path)
    args = parser.parse_args()

    pipeline = load_pipeline(read_params(args.params))
    sweeps = load_postprocess(read_postprocess(args.postprocess), pipeline).drs_sweep
    if args.name not in sweeps:
        raise ConfigError(f"postprocess.yaml:drs_sweep: no entry {args.name!r}; allowed: {sorted(sweeps)}")
    cfg = sweeps[args.name]
    device = resolve_device(pipeline.device)
    seed_everything(pipeline.evaluate.seed)
    evaluate = pipeline.evaluate
    n = evaluate.n_samples.at(pipeline.scale)
    data = load_prepared(args.data)
    gan = load_gan(ckpt_io.load(args.checkpoint, map_location=device), device)
    ctx = Context(scale=pipeline.scale, device=device, batch_size=evaluate.batch_size, real_images=data["x_train"])
    net = load_feature_net(args.net, device)
    reference = load_reference(args.reference, net, data["x_test"][: int(np.load(args.reference)["n"])])
    checkpoint_sha256 = ckpt_io.file_sha256(args.checkpoint)

    params = {"name": args.name, "experiment": cfg.experiment, "method": "drs", "mode": cfg.mode,
              "thresholds": str(cfg.thresholds), "scale": pipeline.scale}
    with stage_run("drs_sweep", f"drs_sweep@{args.name}", params):
        logit_fn, calibration = calibrate(gan, cfg, ctx)
        points = []
        for i, threshold in enumerate(cfg.thresholds):
            t0 = time.perf_counter()
            images, seeds, drs = drs_with(cfg.run(threshold), gan, n, logit_fn, ctx)
            metrics = score(images, net, reference, nearest_k=evaluate.nearest_k, device=device)
            points.append({"threshold": threshold, **metrics, "acceptance_rate": drs["acceptance_rate"],
                           "n_candidates": drs["n_candidates"], "first_sample_seed": int(seeds[0]),
                           "seconds": time.perf_counter() - t0})
            mlflow.log_metrics({**metrics, "acceptance_rate": drs["acceptance_rate"], "threshold": threshold}, step=i)
            print(f"drs_sweep@{args.name}: threshold {threshold}: acceptance {drs['acceptance_rate']:.4f}, "
                  + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
        protocol = {"feature_space": net.name, "feature_weights_sha256": net.weights_sha256,
                    "reference_key": str(reference["key"]), "real_split": "test", "n_real": int(reference["n"]),
                    "n_fake": n, "nearest_k": evaluate.nearest_k, "seed": evaluate.seed,
                    "checkpoint_sha256": checkpoint_sha256, "scale": pipeline.scale}
        drs_common = {k: v for k, v in cfg.run(cfg.thresholds[0]).model_dump().items()
                      if k not in ("experiment", "dataset", "method", "threshold", "calibration_n")}
        series = sweep_series(cfg.experiment, "drs", "threshold", points, protocol,
                              drs=drs_common, calibration=calibration)
        write_json(args.out, series)
        write_csv(args.csv, [{k: p[k] for k in ("threshold", *METRICS, "acceptance_rate")} for p in series["points"]])
        figure = plots.sweep({f"{cfg.experiment}+drs ({cfg.mode})": [
            SweepPoint(p["threshold"], {m: Stat.of([p[m]]) for m in (*METRICS, "acceptance_rate")}) for p in series["points"]
        ]}, x_label=f"DRS threshold ({cfg.mode} mode)", out=args.figure,
            metrics=("fid", "precision", "recall", "acceptance_rate"))
        mlflow.log_artifact(str(figure), artifact_path="figures")


if __name__ == "__main__":
    main()
