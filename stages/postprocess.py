"""Stage `postprocess@<name>`: N images of a trained experiment through one post-processing method
(postprocess.yaml `runs.<name>`: truncation, dgflow, ddls, drs, none), from integer seeds, identical at any
batch size; writes the samples for `evaluate_pp@<name>` and what the method did (acceptance rate, calibration),
for every training seed of `seeds`: <out>/seed-<s>.npz and <info>/seed-<s>.json.

    python stages/postprocess.py --name vanilla-drs --checkpoints data/train/vanilla \
        --data data/prepared/mnist.npz --out data/postprocess/vanilla-drs --info metrics/postprocess/vanilla-drs
"""

import _project_python  # noqa: F401, I001  (first: the project's Python, or one line saying how)

import argparse
import json
from pathlib import Path

import mlflow

from ganlab import checkpoint as ckpt_io
from ganlab.config import flatten, load_pipeline, read_params
from ganlab.data.arrays import load_prepared
from ganlab.io import save_npz_atomic, write_json
from ganlab.paths import CHECKPOINT, seed_path
from ganlab.modules import trained_precision
from ganlab.postprocess import Context, load_entry, load_gan, run_method
from ganlab.runtime import resolve_device, seed_everything, stage_entry
from ganlab.sampling import evaluation_seeds
from ganlab.tracking import model_run_id, recipe_params, stage_run


@stage_entry
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", type=Path)
    parser.add_argument("--postprocess", default="postprocess.yaml", type=Path)
    parser.add_argument("--name", required=True, help="an entry of postprocess.yaml `runs`")
    parser.add_argument("--checkpoints", required=True, type=Path, help="train@<experiment>'s output folder")
    parser.add_argument("--data", required=True, type=Path, help="prepared dataset (train split: DRS calibration)")
    parser.add_argument("--out", required=True, type=Path, help="folder of the seed-<s>.npz samples")
    parser.add_argument("--info", required=True, type=Path, help="folder of the seed-<s>.json records")
    args = parser.parse_args()

    pipeline = load_pipeline(read_params(args.params))
    cfg = load_entry(args.postprocess, pipeline, "runs", args.name)
    device = resolve_device(pipeline.device)
    seed_everything(pipeline.evaluate.seed)  # nothing below draws from global RNGs; belt and braces
    evaluate = pipeline.evaluate
    real = load_prepared(args.data)["x_train"] if cfg.method == "drs" else None
    ctx = Context(scale=pipeline.scale, device=device, batch_size=evaluate.batch_size, real_images=real,
                  progress=f"postprocess@{args.name}")
    seeds = evaluation_seeds(evaluate.n_samples.at(pipeline.scale), evaluate.seed)
    for training_seed in pipeline.seeds_of(cfg.experiment):
        _run_one(args.name, cfg, seed_path(args.checkpoints, training_seed) / CHECKPOINT, training_seed, seeds,
                 ctx, pipeline, out=seed_path(args.out, training_seed, ".npz"),
                 info_out=seed_path(args.info, training_seed, ".json"))


def _run_one(name, cfg, checkpoint, training_seed, seeds, ctx, pipeline, *, out, info_out) -> None:
    state = ckpt_io.load(checkpoint, map_location=ctx.device)
    gan, precision = load_gan(state, ctx.device), trained_precision(state)
    checkpoint_sha256 = ckpt_io.file_sha256(checkpoint)
    params = {"name": name, "experiment": cfg.experiment, "method": cfg.method, "seed": training_seed,
              "scale": pipeline.scale}
    model = model_run_id(cfg.experiment, training_seed,
                         recipe_params(cfg.experiment, training_seed, flatten(state["config"])))
    with stage_run("postprocess", f"postprocess@{name}", params, parent=model):
        images, out_seeds, info = run_method(cfg, gan, seeds, ctx)
        record = {"name": name, "experiment": cfg.experiment, **info, "n_samples": int(len(images)),
                  "training_seed": training_seed, "evaluation_seed": pipeline.evaluate.seed,
                  "first_sample_seed": int(out_seeds[0]), "checkpoint_sha256": checkpoint_sha256,
                  "training_precision": precision, "scale": pipeline.scale}
        flat = flatten({k: v for k, v in record.items() if k not in ("name", "experiment", "method")})
        mlflow.log_params({k: v for k, v in flat.items() if not isinstance(v, (int, float)) or isinstance(v, bool)})
        mlflow.log_metrics({k: float(v) for k, v in flat.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
        save_npz_atomic(out, images=images, seeds=out_seeds, checkpoint_sha256=checkpoint_sha256,
                        training_seed=training_seed, training_precision=precision, method=cfg.method, method_info=json.dumps(record, sort_keys=True))
        write_json(info_out, record)
    extra = f", acceptance {info['drs']['acceptance_rate']:.4f}" if "drs" in info else ""
    print(f"postprocess@{name} seed {training_seed}: {len(images)} images ({cfg.method}{extra}, "
          f"{info['seconds']:.1f} s) -> {out}")


if __name__ == "__main__":
    main()
