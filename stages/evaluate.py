"""Stage `evaluate@<experiment>`: FID and precision / recall / density / coverage of the samples against the
real test set, in the dataset's domain feature space and in Inception-v3 pool3 (`fid_inception`, ...), once
per training seed; each metrics file records the full protocol, both feature spaces and their weights' sha256,
and the experiment's recipe (`params`).

    python stages/evaluate.py --experiment vanilla --samples data/samples/vanilla \
        --data data/prepared/mnist.npz --net data/features/mnist/network.pt \
        --reference data/features/mnist/reference.npz --inception data/inception/weights.json \
        --inception-reference data/features/mnist/inception_reference.npz --out metrics/evaluate/vanilla \
        --grid reports/grids/vanilla-none.png

Reads <samples>/seed-<s>.npz and writes <out>/seed-<s>.json for every s of `seeds`; the grid shows the first
seed's samples. The same stage scores post-processed samples (`evaluate_pp@<name>`, with --method). A sweep
point (`sweep_of: <base>` in its section) is recorded as a point of <base>'s sweep: "experiment" is the base,
"variant" its own name and "sweep" {swept key: value}.

Samples of a generator conditioned on labels (a `labels` array in the npz, see stages/sample.py) also get
`label_accuracy`: the fraction of images the domain classifier assigns to the label they were generated with.
The key is absent for unconditional samples and where the domain network is an autoencoder (no classes).

Without the Inception weights (see stages/fetch_inception.py) every `*_inception` value is the string
"unavailable: <reason>"; the domain metrics are unaffected.

The DVC metrics are the numbers alone (`SCORES`, where present): --scores <name>.json holds their mean over the
training seeds and --scores <name>/seed-<s>.json each seed's, so `dvc metrics show` and `dvc exp show` print one
row (one column group) per experiment × method and seed. The full records stay in --out (DVC outputs, MLflow).
"""

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import torch

from ganlab.config import PipelineConfig, flatten, load_experiment, read_params, swept_key
from ganlab.data.arrays import load_prepared
from ganlab.evaluation import evaluation_protocol, inception_scores, unavailable_inception_scores
from ganlab.features import FeatureNet, label_accuracy, load_feature_net, load_reference
from ganlab.images import save_grid
from ganlab.inception import InceptionUnavailable, load_inception_space
from ganlab.io import read_json, write_json
from ganlab.paths import seed_path
from ganlab.runtime import resolve_device, stage_entry
from ganlab.scoring import score
from ganlab.tracking import stage_run


# The keys of the DVC metrics files (--scores), in this order; a key a record lacks (label_accuracy of unconditional
# samples, every *_inception without the weights) is left out.
SCORES = ("fid", "kid", "precision", "recall", "density", "coverage", "label_accuracy")
SCORES += tuple(f"{k}_inception" for k in SCORES[:6])


@dataclass(frozen=True)
class Evaluation:
    """What every training seed's samples are scored against and recorded with (loaded once by `main`)."""

    experiment: str
    method: str
    pipeline: PipelineConfig
    recipe: dict[str, Any]  # the experiment's `params` [and its sweep point]
    net: FeatureNet
    reference: dict[str, np.ndarray]  # the domain reference (its `n` first test images)
    test_images: np.ndarray  # uint8 (N, H, W, C)
    inception: Path  # fetch_inception's weights record
    inception_reference: Path
    inception_missing: str | None  # why the Inception weights are unavailable, or None
    out: Path  # folder of the seed-<s>.json metrics
    device: torch.device


@stage_entry
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--method", default="none")
    parser.add_argument("--samples", required=True, type=Path, help="folder of seed-<s>.npz samples")
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--net", required=True, type=Path)
    parser.add_argument("--reference", required=True, type=Path)
    parser.add_argument("--inception", required=True, type=Path, help="weights record of fetch_inception")
    parser.add_argument("--inception-reference", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path, help="folder of the seed-<s>.json metrics")
    parser.add_argument("--scores", required=True, type=Path, help="<name>.json: the numbers, mean over the seeds "
                        "(and <name>/seed-<s>.json per seed), for `dvc metrics show`")
    parser.add_argument("--grid", type=Path, help="PNG of the first seed's first 64 samples")
    args = parser.parse_args()

    params = read_params(args.params)
    pipeline, cfg = load_experiment(params, args.experiment)
    device = resolve_device(pipeline.device)
    net = load_feature_net(args.net, device)
    test_images = load_prepared(args.data, keys=("x_test",))["x_test"]
    reference = load_reference(args.reference, net, test_images[: int(np.load(args.reference)["n"])])
    with np.load(args.inception_reference, allow_pickle=False) as f:
        inception_missing = str(f["unavailable"]) if "unavailable" in f.files else None
    recipe = {"params": {k: v for k, v in flatten(cfg).items() if k != "seed"}}
    key = swept_key(args.experiment, params)
    if key is not None:
        recipe |= {"experiment": cfg.sweep_of, "variant": args.experiment, "sweep": {key: params[args.experiment][key]}}
    ev = Evaluation(experiment=args.experiment, method=args.method, pipeline=pipeline, recipe=recipe, net=net,
                    reference=reference, test_images=test_images, inception=args.inception,
                    inception_reference=args.inception_reference, inception_missing=inception_missing, out=args.out,
                    device=device)  # fmt: skip
    per_seed = {}
    for i, training_seed in enumerate(pipeline.seeds_of(args.experiment)):
        with np.load(seed_path(args.samples, training_seed, ".npz"), allow_pickle=False) as f:
            images, seeds, checkpoint_sha256 = f["images"], f["seeds"], str(f["checkpoint_sha256"])
            precision = str(f["training_precision"])
            labels = f["labels"] if "labels" in f.files else None  # only samples of a conditional generator
        result = _evaluate(ev, training_seed=training_seed, images=images, seeds=seeds, labels=labels,
                           checkpoint_sha256=checkpoint_sha256, precision=precision,
                           grid=args.grid if i == 0 else None)  # fmt: skip
        per_seed[training_seed] = numeric_scores(result)
    write_scores(args.scores, per_seed)


def numeric_scores(result: dict[str, Any]) -> dict[str, float]:
    """The `SCORES` of one seed's record that are numbers (an unavailable Inception score is a string)."""
    return {k: result[k] for k in SCORES if isinstance(result.get(k), float)}


def write_scores(path: Path, per_seed: dict[int, dict[str, float]]) -> None:
    """<path>: each score's mean over the seeds (a key only when every seed has it); <path without .json>/seed-<s>.json:
    each seed's scores."""
    folder = path.with_suffix("")
    for training_seed, scores in per_seed.items():
        write_json(seed_path(folder, training_seed, ".json"), scores)
    common = [k for k in SCORES if all(k in scores for scores in per_seed.values())]
    write_json(path, {k: float(np.mean([scores[k] for scores in per_seed.values()])) for k in common})


def _score_inception(ev: Evaluation, images: np.ndarray) -> tuple[dict[str, Any], Any]:
    """(`*_inception` scores, the `inception` argument of `evaluation_protocol`): scores in Inception-v3 pool3 and
    (space, reference), or "unavailable: <reason>" values and the reason."""
    try:
        if ev.inception_missing is not None:
            raise InceptionUnavailable(ev.inception_missing)
        inception = load_inception_space(read_json(ev.inception), device=ev.device)
        real = ev.test_images[: int(ev.reference["n"])]  # the same real images as the domain reference
        inception_reference = load_reference(ev.inception_reference, inception, real)
    except InceptionUnavailable as exc:
        return unavailable_inception_scores(exc.reason), exc.reason
    nearest_k = ev.pipeline.evaluate.nearest_k
    metrics = score(images, inception, inception_reference, nearest_k=nearest_k, device=ev.device)
    return inception_scores(metrics), (inception, inception_reference)


def _evaluate(ev: Evaluation, *, training_seed: int, images: np.ndarray, seeds: np.ndarray, labels: np.ndarray | None,
              checkpoint_sha256: str, precision: str, grid: Path | None) -> dict[str, Any]:  # fmt: skip
    """Score one training seed's samples; writes and returns its full record."""
    evaluate = ev.pipeline.evaluate
    name = f"{ev.experiment}" if ev.method == "none" else f"{ev.experiment}+{ev.method}"
    run_params = {"experiment": ev.experiment, "method": ev.method, "seed": training_seed}
    with stage_run("evaluate", f"evaluate@{name}", run_params):
        metrics = score(images, ev.net, ev.reference, nearest_k=evaluate.nearest_k, device=ev.device)
        if labels is not None and ev.net.kind == "classifier":
            metrics["label_accuracy"] = label_accuracy(ev.net, images, labels, device=ev.device)
        inception_metrics, inception = _score_inception(ev, images)
        provenance = {"first_sample_seed": int(seeds[0]), "training_seed": training_seed,
                      "checkpoint_sha256": checkpoint_sha256, "training_precision": precision,
                      "scale": ev.pipeline.scale}
        protocol = evaluation_protocol(ev.net, ev.reference, n_fake=len(images), nearest_k=evaluate.nearest_k,
                                       seed=evaluate.seed, inception=inception, provenance=provenance)
        result = {"experiment": ev.experiment, "method": ev.method, **metrics, **inception_metrics,
                  "protocol": protocol, **ev.recipe}
        mlflow.log_metrics(metrics | {k: v for k, v in inception_metrics.items() if isinstance(v, float)})
        mlflow.log_params({f"protocol.{k}": v for k, v in result["protocol"].items()})
        if grid is not None:
            mlflow.log_artifact(str(save_grid(images[:64], grid)), artifact_path="samples")
        write_json(seed_path(ev.out, training_seed, ".json"), result)
    inception_line = (
        ", ".join(f"{k} {v:.4f}" for k, v in inception_metrics.items())
        if isinstance(inception_metrics["fid_inception"], float)
        else f"Inception metrics {inception_metrics['fid_inception']}"
    )
    print(f"evaluate@{name} seed {training_seed}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
          + f"; {inception_line}")
    return result


if __name__ == "__main__":
    main()
