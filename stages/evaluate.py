"""Stage `evaluate@<experiment>`: FID and precision / recall / density / coverage of the samples against the
real test set, in the dataset's domain feature space and in Inception-v3 pool3 (`fid_inception`, ...);
the metrics file records the full protocol, both feature spaces and their weights' sha256.

    python stages/evaluate.py --experiment vanilla --samples data/samples/vanilla/none.npz \
        --data data/prepared/mnist.npz --net data/features/mnist/network.pt \
        --reference data/features/mnist/reference.npz --inception data/inception/weights.json \
        --inception-reference data/features/mnist/inception_reference.npz --out metrics/evaluate/vanilla.json

Without the Inception weights (see stages/fetch_inception.py) every `*_inception` value is the string
"unavailable: <reason>"; the domain metrics are unaffected.
"""

import argparse
from pathlib import Path

import mlflow
import numpy as np

from ganlab.config import load_experiment, read_params
from ganlab.data.arrays import load_prepared
from ganlab.evaluation import inception_scores, score, unavailable_inception_scores
from ganlab.features import load_feature_net, load_inception_space, load_reference
from ganlab.images import save_grid
from ganlab.inception import FEATURE_SPACE as INCEPTION_FEATURE_SPACE
from ganlab.inception import FID_WEIGHTS_SHA256_PREFIX, InceptionUnavailable
from ganlab.io import read_json, write_json
from ganlab.runtime import resolve_device, stage_entry
from ganlab.tracking import stage_run


@stage_entry
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--method", default="none")
    parser.add_argument("--samples", required=True, type=Path)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--net", required=True, type=Path)
    parser.add_argument("--reference", required=True, type=Path)
    parser.add_argument("--inception", required=True, type=Path, help="weights record of fetch_inception")
    parser.add_argument("--inception-reference", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--grid", type=Path, help="PNG of the first 64 samples")
    args = parser.parse_args()

    pipeline, _ = load_experiment(read_params(args.params), args.experiment)
    device = resolve_device(pipeline.device)
    evaluate = pipeline.evaluate
    with np.load(args.samples, allow_pickle=False) as f:
        images, seeds, checkpoint_sha256 = f["images"], f["seeds"], str(f["checkpoint_sha256"])
    net = load_feature_net(args.net, device)
    test_images = load_prepared(args.data, keys=("x_test",))["x_test"]
    reference = load_reference(args.reference, net, test_images[: int(np.load(args.reference)["n"])])
    with np.load(args.inception_reference, allow_pickle=False) as f:
        inception_missing = str(f["unavailable"]) if "unavailable" in f.files else None

    name = f"{args.experiment}" if args.method == "none" else f"{args.experiment}+{args.method}"
    with stage_run("evaluate", f"evaluate@{name}", {"experiment": args.experiment, "method": args.method}):
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
                "checkpoint_sha256": checkpoint_sha256,
                "scale": pipeline.scale,
            },
        }
        mlflow.log_metrics(metrics | {k: v for k, v in inception_metrics.items() if isinstance(v, float)})
        mlflow.log_params({f"protocol.{k}": v for k, v in result["protocol"].items()})
        if args.grid is not None:
            mlflow.log_artifact(str(save_grid(images[:64], args.grid)), artifact_path="samples")
        write_json(args.out, result)
    inception_line = (
        ", ".join(f"{k} {v:.4f}" for k, v in inception_metrics.items())
        if isinstance(inception_metrics["fid_inception"], float)
        else f"Inception metrics {inception_metrics['fid_inception']}"
    )
    print(f"evaluate@{name}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()) + f"; {inception_line}")


if __name__ == "__main__":
    main()
