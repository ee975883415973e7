"""Equal quality, shown: the same recipes trained in float32 and in bfloat16 autocast, scored like the pipeline.

    python -m benchmarks.precision_quality                       # vanilla and hinge_bn, seeds 0 1 2, default scale
    python -m benchmarks.precision_quality --recipes vanilla --seeds 0 1
    python -m benchmarks.precision_quality --bf16-from metrics/evaluate   # bf16: the pipeline's own runs

Needs the pipeline's MNIST outputs (`dvc repro features@mnist`): data/prepared/mnist.npz and the domain feature
space data/features/mnist/{network.pt,reference.npz}. For each recipe, precision and training seed it runs what
the train, sample and evaluate stages run (`train_gan` at the params' scale, `generate` from the evaluation seeds,
`score` with k = evaluate.nearest_k), then prints FID / precision / recall / coverage as mean ± std over the seeds
and whether |mean(bf16) − mean(fp32)| lies within 2 pooled standard deviations (the seed-to-seed noise).

`--bf16-from metrics/evaluate` takes the bf16 side from the pipeline's evaluate metrics instead of retraining it
(the default `dvc repro` trains in bf16 on a CPU with AVX512_BF16): it halves the cost, and each file's protocol
must say bf16, the same scale and seed, and the feature network used here, or the benchmark stops.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from ganlab.config import read_params
from ganlab.data.arrays import load_prepared
from ganlab.scoring import score
from ganlab.features import load_feature_net, load_reference
from ganlab.io import read_json
from ganlab.modules import load_sampler
from ganlab.recipe import load_recipe
from ganlab.runtime import seed_everything
from ganlab.sampling import evaluation_seeds, generate
from ganlab.train import train_gan

METRICS = ("fid", "precision", "recall", "coverage")
CPU = torch.device("cpu")


def run(params: dict, name: str, seed: int, precision: str, data: dict, net, reference, tmp: Path) -> dict:
    """Train seed `seed` of `name` in `precision` and score its samples; the metrics and the training seconds."""
    pipeline, cfg = load_recipe(params, name, seed)
    cfg = cfg.model_copy(update={"seed": seed, "precision": precision})
    seed_everything(seed)
    t0 = time.perf_counter()
    state = train_gan(cfg, data["x_train"], data["y_train"], num_epochs=cfg.num_epochs.at(pipeline.scale), device=CPU,
                      checkpoint_path=tmp / f"{name}-{precision}-{seed}.pt", num_classes=len(data["class_names"]),
                      max_batches_per_epoch=cfg.epoch_batches(pipeline.scale))
    seconds = time.perf_counter() - t0
    seeds = evaluation_seeds(pipeline.evaluate.n_samples.at(pipeline.scale), pipeline.evaluate.seed)
    images = generate(load_sampler(state, CPU), seeds, device=CPU)
    return score(images, net, reference, nearest_k=pipeline.evaluate.nearest_k, device=CPU) | {"train_s": seconds}


def from_pipeline(folder: Path, name: str, seed: int, scale: str, net) -> dict:
    """The evaluate stage's metrics of `name`'s training seed `seed`, checked to be comparable with `run`'s."""
    path = folder / name / f"seed-{seed}.json"
    found = read_json(path)
    protocol = found["protocol"]
    expected = {"training_precision": "bf16", "scale": scale, "training_seed": seed, "method": "none",
                "feature_weights_sha256": net.weights_sha256}
    actual = protocol | {"method": found["method"]}
    wrong = {k: actual.get(k) for k, v in expected.items() if actual.get(k) != v}
    if wrong:
        raise SystemExit(f"{path}: not comparable with this run: {wrong}, expected {expected}")
    return found


def compare(fp32: list[dict], bf16: list[dict], metric: str) -> str:
    a, b = [r[metric] for r in fp32], [r[metric] for r in bf16]
    sa, sb = statistics.stdev(a), statistics.stdev(b)
    pooled = ((sa**2 + sb**2) / 2) ** 0.5
    diff = statistics.mean(b) - statistics.mean(a)
    within = abs(diff) <= 2 * pooled
    in_sd = f"{diff / pooled:+5.2f} pooled sd" if pooled else "(no spread)"
    return (f"{metric:<10} fp32 {statistics.mean(a):9.4f} ± {sa:7.4f}   bf16 {statistics.mean(b):9.4f} ± {sb:7.4f}   "
            f"diff {diff:+9.4f} = {in_sd}  {'within 2 sd' if within else 'OUTSIDE 2 sd'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--recipes", nargs="+", default=["vanilla", "hinge_bn"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--root", type=Path, default=Path("."), help="where the pipeline's data/ lies")
    parser.add_argument("--bf16-from", type=Path, default=None,
                        help="take the bf16 side from this folder of evaluate metrics (e.g. metrics/evaluate)")
    args = parser.parse_args()
    os.environ.setdefault("GANLAB_PROGRESS", "0")
    if len(args.seeds) < 2:
        parser.error("--seeds: at least two, for a standard deviation")
    params = read_params(args.params)
    params["seeds"] = sorted(set(params["seeds"]) | set(args.seeds))  # every seed a valid training seed
    data = load_prepared(args.root / "data/prepared/mnist.npz")
    net = load_feature_net(args.root / "data/features/mnist/network.pt", CPU)
    ref_path = args.root / "data/features/mnist/reference.npz"
    reference = load_reference(ref_path, net, data["x_test"][: int(np.load(ref_path)["n"])])
    print(f"feature space {net.name}, N = {int(reference['n'])}, seeds {args.seeds}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.recipes:
            results = {p: [] for p in ("fp32", "bf16")}
            for seed in args.seeds:
                for precision in results:
                    if precision == "bf16" and args.bf16_from:
                        r = from_pipeline(args.bf16_from, name, seed, params["scale"], net)
                        source = f"from {args.bf16_from}"
                    else:
                        r = run(params, name, seed, precision, data, net, reference, Path(tmp))
                        source = f"trained in {r['train_s']:.0f} s"
                    results[precision].append(r)
                    print(f"{name} seed {seed} {precision}: " + ", ".join(f"{k} {r[k]:.4f}" for k in METRICS)
                          + f" ({source})", flush=True)
            print(f"\n{name}: mean ± std over seeds {args.seeds}")
            for metric in METRICS:
                print("  " + compare(results["fp32"], results["bf16"], metric))
            print(flush=True)


if __name__ == "__main__":
    main()
