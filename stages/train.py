"""Stage `train@<experiment>`: train one GAN recipe once per seed of `seeds`, resuming any interrupted run.

    python stages/train.py --experiment vanilla --data data/prepared/mnist.npz --out data/train/vanilla \
        --metrics metrics/train/vanilla.json --losses metrics/train/vanilla_losses.csv \
        --curve metrics/train/vanilla_curve.csv --net data/features/mnist/network.pt

Per seed s: data/train/<experiment>/seed-<s>/checkpoint.pt and its grids/ folder, and the model's MLflow run
(`ganlab.tracking.model_run`: later stages nest their runs under it and copy their scores onto it). Precision: the
top-level `precision` resolved for the device (`ganlab.runtime.resolve_precision`: bf16 autocast on CPUs with
AVX512_BF16 / AMX and on CUDA devices with bf16, else fp32), recorded in the checkpoint's config, the MLflow
params and the metrics. Per epoch:
mean D and G losses (MLflow metrics with step = epoch, and the CSV for `dvc plots`, one `seed` column), a sample
grid PNG (file + MLflow image) and an atomic checkpoint (weights, optimisers, epoch, config, RNG states). Every
`curves.eval_every` epochs and at the last, a learning-curve point (`ganlab.curves`: FID, precision, recall,
density, coverage of `curves.n_samples` fixed latents in the domain space of --net): MLflow metrics with
step = epoch and a row of the --curve CSV (seed, epoch, training seconds so far, the scores). The metrics JSON
holds the mean final losses over the seeds and each seed's summary under `runs` (with its last curve point, the
curve protocol, the epochs that lack a point (`curve_missing_epochs`: a resumed run drops points made in another
protocol) and, for mixture priors, `prior_changed`: the fraction of μ and σ entries training moved).

Data parallel on N processes (gloo on the CPU, nccl on CUDA; see `ganlab.distributed`): the same
arguments under `torchrun --standalone --nproc_per_node N stages/train.py ...`; rank 0 alone writes the
outputs and logs to MLflow.
"""

import _project_python  # noqa: F401, I001  (first: the project's Python, or one line saying how)

import argparse
import contextlib
import time
import zipfile
from pathlib import Path

import mlflow

from ganlab import checkpoint as ckpt_io
from ganlab import distributed
from ganlab.config import flatten, read_params
from ganlab.curves import CurveScorer, curve_rows
from ganlab.data.arrays import load_prepared
from ganlab.features import load_feature_net
from ganlab.images import save_grid
from ganlab.io import write_csv, write_json
from ganlab.modules import prior_changed
from ganlab.paths import CHECKPOINT, seed_path
from ganlab.recipe import load_recipe
from ganlab.runtime import (
    BadInputError,
    remove_stale_temporaries,
    resolve_device,
    resolve_precision,
    seed_everything,
    set_deterministic,
    stage_entry,
)
from ganlab.schema import ConfigError
from ganlab.tracking import model_run
from ganlab.train import train_gan


@stage_entry
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path, help="folder of the seed-<s>/ checkpoint folders")
    parser.add_argument("--metrics", required=True, type=Path)
    parser.add_argument("--losses", required=True, type=Path)
    parser.add_argument("--curve", required=True, type=Path, help="CSV of the learning curves (all seeds)")
    parser.add_argument("--net", required=True, type=Path, help="the domain feature network (learning curves)")
    args = parser.parse_args()

    params = read_params(args.params)
    pipeline, cfg = load_recipe(params, args.experiment)
    device = resolve_device(pipeline.device)
    precision = resolve_precision(pipeline.precision, device)  # in each seed's config: resume refuses a change
    configs = [load_recipe(params, args.experiment, seed)[1].model_copy(update={"precision": precision})
               for seed in pipeline.seeds_of(args.experiment)]
    dist = distributed.init_from_env(device)  # one process without torchrun: distributed.SINGLE
    try:
        data = _load_data(args, cfg)
        for c in configs:  # every resume point is checked before the first seed trains
            _check_resume_point(seed_path(args.out, c.seed) / CHECKPOINT, dist)
        scorer = _curve_scorer(args, pipeline, cfg, data, dist.device(device))  # once: every seed, same points
        runs = [_train(args, pipeline, c, data, dist.device(device), dist, scorer) for c in configs]
    finally:
        distributed.shutdown(dist)
    if dist.is_main:
        histories = {run["seed"]: run.pop("history") for run in runs}
        write_csv(args.losses, [{"seed": seed, **{k: v for k, v in row.items() if k != "curve"}}
                                for seed, history in histories.items() for row in history])
        write_csv(args.curve, [row for seed, history in histories.items() for row in curve_rows(history, seed)])
        write_json(args.metrics, {
            "experiment": args.experiment,
            "seeds": pipeline.seeds_of(args.experiment),
            **{k: sum(run[k] for run in runs) / len(runs) for k in ("final_loss_d", "final_loss_g")},
            "train_seconds": sum(run["train_seconds"] for run in runs),
            "runs": runs,
        })


def _load_data(args, cfg) -> dict:
    try:
        data = load_prepared(args.data)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:  # missing, truncated, wrong arrays
        reason = str(e).removeprefix(f"{args.data}: ")
        raise BadInputError(f"{args.data}: not a readable prepared dataset: {reason}") from None
    n_train = len(data["x_train"])
    if cfg.batch_size > n_train:
        raise ConfigError(
            f"{args.experiment}.batch_size: {cfg.batch_size} is larger than the training set "
            f"({n_train} images in {args.data}); allowed: 1..{n_train}"
        )
    return data


def _check_resume_point(checkpoint: Path, dist) -> None:
    # A `kill -9` during a checkpoint write leaves its temporary file; the checkpoint itself is whole.
    for stale in remove_stale_temporaries(checkpoint) if dist.is_main else []:
        print(f"removed {stale} (left by an interrupted run)")
    if checkpoint.exists():  # resume point: refuse a file that is not one of our checkpoints, by name
        try:
            saved = ckpt_io.load(checkpoint)
            assert isinstance(saved, dict) and {"epoch", "config"} <= set(saved)
        except Exception as e:  # torch raises many types for a file that is not a checkpoint
            raise BadInputError(
                f"{checkpoint}: not a readable checkpoint ({type(e).__name__}: {e}); delete it to train from scratch"
            ) from None


def _curve_scorer(args, pipeline, cfg, data, device) -> CurveScorer | None:
    if pipeline.curves is None:
        return None
    curves = pipeline.curves
    return CurveScorer.build(load_feature_net(args.net, device), data["x_test"], n_samples=curves.n_samples,
                             seed=curves.seed, nearest_k=pipeline.evaluate.nearest_k,
                             eval_every=curves.eval_every.at(pipeline.scale),
                             last_epoch=cfg.num_epochs.at(pipeline.scale), device=device)


def _train(args, pipeline, cfg, data, device, dist, scorer: CurveScorer | None) -> dict | None:
    """Train (or resume) seed `cfg.seed`; returns its summary with the loss history (rank 0), else None."""
    seed_everything(cfg.seed)
    set_deterministic(device)
    folder = seed_path(args.out, cfg.seed)
    num_epochs = cfg.num_epochs.at(pipeline.scale)
    # the experiment's own per-epoch batch cap (quick-scale conv recipes) and the global debug knob: the smaller
    caps = [c for c in (cfg.epoch_batches(pipeline.scale), pipeline.max_batches_per_epoch) if c is not None]
    max_batches = min(caps) if caps else None
    run_params = {
        "experiment": args.experiment,
        "dataset": pipeline.experiments[args.experiment].dataset,
        "seed": cfg.seed,
        "scale": pipeline.scale,
        "num_epochs_run": num_epochs,
        "device": str(device),
        "precision": cfg.precision,
        **({"world_size": dist.world_size} if dist.enabled else {}),
        **{f"{args.experiment}.{k}": v for k, v in flatten(cfg).items()},
    }

    def log_epoch(log, generator) -> None:
        curve = {f"curve.{key}": value for key, value in log.extra.items()}  # "fid" is the final score's name
        mlflow.log_metrics({"loss_d": log.loss_d, "loss_g": log.loss_g, "epoch_seconds": log.seconds, **curve},
                           step=log.epoch)
        if log.grid_path is not None:
            mlflow.log_artifact(str(log.grid_path), artifact_path="grids")
        print(f"train@{args.experiment} seed {cfg.seed} epoch {log.epoch}/{num_epochs}: loss_d {log.loss_d:.4f} "
              f"loss_g {log.loss_g:.4f} ({log.seconds:.1f}s)", flush=True)

    t0 = time.perf_counter()
    run = model_run(args.experiment, cfg.seed, run_params) if dist.is_main else contextlib.nullcontext()
    with run:
        state = train_gan(
            cfg, data["x_train"], data["y_train"],
            num_epochs=num_epochs, device=device, checkpoint_path=folder / CHECKPOINT,
            num_classes=len(data["class_names"]), max_batches_per_epoch=max_batches,
            on_epoch=log_epoch,
            save_grid=lambda images, epoch: save_grid(images, folder / "grids" / f"epoch_{epoch:04d}.png"),
            dist=dist, progress=f"train@{args.experiment} seed {cfg.seed}", curve=scorer,
        )
        distributed.save_rank_state_for_debug(state, dist)
        if not dist.is_main:
            return None
        history = state["history"]
        summary = {
            "seed": cfg.seed,
            "epochs": state["epoch"],
            "final_loss_d": history[-1]["loss_d"],
            "final_loss_g": history[-1]["loss_g"],
            "train_seconds": sum(h["seconds"] for h in history),
            "wall_seconds_this_run": time.perf_counter() - t0,
            "device": str(device),
            "precision": cfg.precision,
            **({"curve": history[-1].get("curve"), "curve_protocol": scorer.protocol(),
                "curve_missing_epochs": scorer.missing(history)} if scorer else {}),
            **({"prior_changed": changed} if (changed := prior_changed(state)) else {}),
        }
        mlflow.log_metrics({"train_seconds": summary["train_seconds"]})
    return summary | {"history": history}


if __name__ == "__main__":
    main()
