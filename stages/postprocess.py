"""Stage `postprocess@<name>`: N images of a trained experiment through one post-processing method
(postprocess.yaml `runs.<name>`: truncation, dgflow, ddls, drs, none), from integer seeds, identical at any
batch size; writes the samples for `evaluate_pp@<name>` and what the method did (acceptance rate, calibration).

    python stages/postprocess.py --name vanilla-drs --checkpoint data/train/vanilla/checkpoint.pt \
        --data data/prepared/mnist.npz --out data/postprocess/vanilla-drs.npz --info metrics/postprocess/vanilla-drs.json
"""

import argparse
import json
from pathlib import Path

import mlflow

from ganlab import checkpoint as ckpt_io
from ganlab.config import ConfigError, flatten, load_pipeline, read_params
from ganlab.data.arrays import load_prepared
from ganlab.io import save_npz_atomic, write_json
from ganlab.postprocess import Context, load_gan, load_postprocess, read_postprocess, run_method
from ganlab.runtime import resolve_device, seed_everything, stage_entry
from ganlab.sampling import evaluation_seeds
from ganlab.tracking import stage_run


@stage_entry
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml", type=Path)
    parser.add_argument("--postprocess", default="postprocess.yaml", type=Path)
    parser.add_argument("--name", required=True, help="an entry of postprocess.yaml `runs`")
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--data", required=True, type=Path, help="prepared dataset (train split: DRS calibration)")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--info", required=True, type=Path)
    args = parser.parse_args()

    pipeline = load_pipeline(read_params(args.params))
    runs = load_postprocess(read_postprocess(args.postprocess), pipeline).runs
    if args.name not in runs:
        raise ConfigError(f"postprocess.yaml:runs: no entry {args.name!r}; allowed: {sorted(runs)}")
    cfg = runs[args.name]
    device = resolve_device(pipeline.device)
    seed_everything(pipeline.evaluate.seed)  # nothing below draws from global RNGs; belt and braces
    evaluate = pipeline.evaluate
    gan = load_gan(ckpt_io.load(args.checkpoint, map_location=device), device)
    real = load_prepared(args.data)["x_train"] if cfg.method == "drs" else None
    ctx = Context(scale=pipeline.scale, device=device, batch_size=evaluate.batch_size, real_images=real)
    seeds = evaluation_seeds(evaluate.n_samples.at(pipeline.scale), evaluate.seed)
    checkpoint_sha256 = ckpt_io.file_sha256(args.checkpoint)

    params = {"name": args.name, "experiment": cfg.experiment, "method": cfg.method, "scale": pipeline.scale}
    with stage_run("postprocess", f"postprocess@{args.name}", params):
        images, out_seeds, info = run_method(cfg, gan, seeds, ctx)
        record = {"name": args.name, "experiment": cfg.experiment, **info, "n_samples": int(len(images)),
                  "evaluation_seed": evaluate.seed, "first_sample_seed": int(out_seeds[0]),
                  "checkpoint_sha256": checkpoint_sha256, "scale": pipeline.scale}
        flat = flatten({k: v for k, v in record.items() if k not in ("name", "experiment", "method")})
        mlflow.log_params({k: v for k, v in flat.items() if not isinstance(v, (int, float)) or isinstance(v, bool)})
        mlflow.log_metrics({k: float(v) for k, v in flat.items() if isinstance(v, (int, float)) and not isinstance(v, bool)})
        save_npz_atomic(args.out, images=images, seeds=out_seeds, checkpoint_sha256=checkpoint_sha256,
                        method=cfg.method, method_info=json.dumps(record, sort_keys=True))
        write_json(args.info, record)
    extra = f", acceptance {info['drs']['acceptance_rate']:.4f}" if "drs" in info else ""
    print(f"postprocess@{args.name}: {len(images)} images ({cfg.method}{extra}, {info['seconds']:.1f} s) -> {args.out}")


if __name__ == "__main__":
    main()
