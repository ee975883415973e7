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

Without the Inception weights (see stages/fetch_inception.py) every `*_inception` value is the string
"unavailable: <reason>"; the domain metrics are unaffected.
"""

import argparse
from pathlib import Path

import mlflow
import numpy as np

from ganlab.config import flatten, load_experiment, read_params, swept_key
from ganlab.data.arrays import load_prepared
from ganlab.evaluation import inception_scores, score, unavailable_inception_scores
from ganlab.features import load_feature_net, load_inception_space, load_reference
from ganlab.images import save_grid
from ganlab.inception import FEATURE_SPACE as INCEPTION_FEATURE_SPACE
from ganlab.inception import FID_WEIGHTS_SHA256_PREFIX, InceptionUnavailable
from ganlab.io import read_json, write_json
from ganlab.paths import seed_path
from ganlab.runtime import resolve_device, stage_entry
from ganlab.tracking import stage_run


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
    for i, training_seed in enumerate(pipeline.seeds):
        with np.load(seed_path(args.samples, training_seed, ".npz"), allow_pickle=False) as f:
            images, seeds, checkpoint_sha256 = f["images"], f["seeds"], str(f["checkpoint_sha256"])
        _evaluate(args, pipeline, images, seeds, checkpoint_sha256, training_seed, recipe, net, reference,
                  test_images, inception_missing, device, grid=args.grid if i == 0 else None)


def _evaluate(args, pipeline, images, seeds, checkpoint_sha256, training_seed, recipe, net, reference, test_images,
              inception_missing, device, grid) -> None:
    evaluate = pipeline.evaluate
    name = f"{args.experiment}" if args.method == "none" else f"{args.experiment}+{args.method}"
    run_params = {"experiment": args.experiment, "method": args.method, "seed": training_seed}
    with stage_run("evaluate", f"evaluate@{name}", run_params):
        metrics = score(images, net, reference, nearest_k=evaluate.nearest_k, device=device)
        inception_protocol = {"inception_feature_space": INCEPTION_FEATURE_SPACE}
        try:
            if inception_missing is not None:
                raise InceptionUnavailable(inception_missing)
            inception = load_inception_space(read_json(args.inception), device=device)
            real = test_images[: int(reference["n"])]  # the same real images as the domain reference
            inception_reference = load_reference(args.inception_reference, inception, real)
        except InceptionUnavailable as exc:
            inception_metrics = unavailable_inception_scores(exc.reason)
            inception_protocol["inception_weights_sha256"] = None
        else:
            inception_metrics = inception_scores(
                score(images, inception, inception_reference, nearest_k=evaluate.nearest_k, device=device)
            )
            inception_protocol |= {
                "inception_weights_sha256": inception.weights_sha256,
                "inception_weights_verification": f"sha256 prefix {FID_WEIGHTS_SHA256_PREFIX} + recorded full hash",
                "inception_reference_key": str(inception_reference["key"]),
            }
        result = {
            "experiment": args.experiment,
            "method": args.method,
            **metrics,
            **inception_metrics,
            "protocol": {
                "feature_space": net.name,
                "feature_weights_sha256": net.weights_sha256,
                "reference_key": str(reference["key"]),
                **inception_protocol,
                "real_split": "test",
                "n_real": int(reference["n"]),
                "n_fake": int(len(images)),
                "nearest_k": evaluate.nearest_k,
                "seed": evaluate.seed,
                "first_sample_seed": int(seeds[0]),
                "training_seed": training_seed,
                "checkpoint_sha256": checkpoint_sha256,
                "scale": pipeline.scale,
            },
            **recipe,
        }
        mlflow.log_metrics(metrics | {k: v for k, v in inception_metrics.items() if isinstance(v, float)})
        mlflow.log_params({f"protocol.{k}": v for k, v in result["protocol"].items()})
        if grid is not None:
            mlflow.log_artifact(str(save_grid(images[:64], grid)), artifact_path="samples")
        write_json(seed_path(args.out, training_seed, ".json"), result)
    inception_line = (
        ", ".join(f"{k} {v:.4f}" for k, v in inception_metrics.items())
        if isinstance(inception_metrics["fid_inception"], float)
        else f"Inception metrics {inception_metrics['fid_inception']}"
    )
    print(f"evaluate@{name} seed {training_seed}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
          + f"; {inception_line}")


if __name__ == "__main__":
    main()
