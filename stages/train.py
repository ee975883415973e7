"""Stage `train@<experiment>`: train one GAN recipe, resuming from its checkpoint if interrupted.

    python stages/train.py --experiment vanilla --data data/prepared/mnist.npz \
        --checkpoint data/train/vanilla/checkpoint.pt --grids data/train/vanilla/grids \
        --metrics metrics/train/vanilla.json --losses metrics/train/vanilla_losses.csv

Data parallel on N processes (gloo on the CPU, nccl on CUDA; see `ganlab.distributed`): the same
arguments under `torchrun --standalone --nproc_per_node N stages/train.py ...`; rank 0 alone writes the
outputs and logs to MLflow.

Per epoch: mean D and G losses (MLflow metrics with step = epoch, and the CSV for `dvc plots`), a sample
grid PNG (file + MLflow image) and an atomic checkpoint (weights, optimisers, epoch, config, RNG states).
"""

import argparse
import contextlib
import time
import zipfile
from pathlib import Path

import mlflow

from ganlab import checkpoint as ckpt_io
from ganlab import distributed
from ganlab.config import flatten, load_experiment, read_params
from ganlab.data.arrays import load_prepared
from ganlab.images import save_grid
from ganlab.io import write_csv, write_json
from ganlab.runtime import (
    BadInputError,
    remove_stale_temporaries,
    resolve_device,
    seed_everything,
    set_deterministic,
    stage_entry,
)
from ganlab.schema import ConfigError
from ganlab.tracking import stage_run
from ganlab.train import train_gan


@stage_entry
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--grids", required=True, type=Path)
    parser.add_argument("--metrics", required=True, type=Path)
    parser.add_argument("--losses", required=True, type=Path)
    args = parser.parse_args()

    pipeline, cfg = load_experiment(read_params(args.params), args.experiment)
    device = resolve_device(pipeline.device)
    dist = distributed.init_from_env(device)  # one process without torchrun: distributed.SINGLE
    try:
        _train(args, pipeline, cfg, dist.device(device), dist)
    finally:
        distributed.shutdown(dist)


def _train(args, pipeline, cfg, device, dist) -> None:
    seed_everything(cfg.seed)
    set_deterministic(device)
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
    # A `kill -9` during a checkpoint write leaves its temporary file; the checkpoint itself is whole.
    for stale in remove_stale_temporaries(args.checkpoint) if dist.is_main else []:
        print(f"removed {stale} (left by an interrupted run)")
    if args.checkpoint.exists():  # resume point: refuse a file that is not one of our checkpoints, by name
        try:
            saved = ckpt_io.load(args.checkpoint)
            assert isinstance(saved, dict) and {"epoch", "config"} <= set(saved)
        except Exception as e:  # torch raises many types for a file that is not a checkpoint
            raise BadInputError(
                f"{args.checkpoint}: not a readable checkpoint ({type(e).__name__}: {e}); "
                "delete it to train from scratch"
            ) from None
        del saved
    num_epochs = cfg.num_epochs.at(pipeline.scale)
    # the experiment's own per-epoch batch cap (quick-scale conv recipes) and the global debug knob: the smaller
    caps = [c for c in (cfg.epoch_batches(pipeline.scale), pipeline.max_batches_per_epoch) if c is not None]
    max_batches = min(caps) if caps else None
    run_params = {
        "experiment": args.experiment,
        "dataset": pipeline.experiments[args.experiment],
        "scale": pipeline.scale,
        "num_epochs_run": num_epochs,
        "device": str(device),
        **({"world_size": dist.world_size} if dist.enabled else {}),
        **{f"{args.experiment}.{k}": v for k, v in flatten(cfg).items()},
    }

    def log_epoch(log, generator) -> None:
        mlflow.log_metrics({"loss_d": log.loss_d, "loss_g": log.loss_g, "epoch_seconds": log.seconds}, step=log.epoch)
        if log.grid_path is not None:
            mlflow.log_artifact(str(log.grid_path), artifact_path="grids")
        print(f"train@{args.experiment} epoch {log.epoch}/{num_epochs}: loss_d {log.loss_d:.4f} "
              f"loss_g {log.loss_g:.4f} ({log.seconds:.1f}s)", flush=True)

    t0 = time.perf_counter()
    run = stage_run("train", f"train@{args.experiment}", run_params) if dist.is_main else contextlib.nullcontext()
    with run:
        state = train_gan(
            cfg, data["x_train"], data["y_train"],
            num_epochs=num_epochs, device=device, checkpoint_path=args.checkpoint,
            num_classes=len(data["class_names"]), max_batches_per_epoch=max_batches,
            on_epoch=log_epoch,
            save_grid=lambda images, epoch: save_grid(images, args.grids / f"epoch_{epoch:04d}.png"),
            dist=dist,
        )
        distributed.save_rank_state_for_debug(state, dist)
        if not dist.is_main:
            return
        history = state["history"]
        write_csv(args.losses, history)
        summary = {
            "experiment": args.experiment,
            "epochs": state["epoch"],
            "final_loss_d": history[-1]["loss_d"],
            "final_loss_g": history[-1]["loss_g"],
            "train_seconds": sum(h["seconds"] for h in history),
            "wall_seconds_this_run": time.perf_counter() - t0,
            "device": str(device),
        }
        write_json(args.metrics, summary)
        mlflow.log_metrics({"train_seconds": summary["train_seconds"]})


if __name__ == "__main__":
    main()
