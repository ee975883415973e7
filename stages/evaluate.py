"""Stage `evaluate@<experiment>`: FID and precision / recall / density / coverage of the samples against the
real test set, in the dataset's domain feature space; the metrics file records the full protocol.

    python stages/evaluate.py --experiment vanilla --samples data/samples/vanilla/none.npz \
        --data data/prepared/mnist.npz --net data/features/mnist/network.pt \
        --reference data/features/mnist/reference.npz --out metrics/evaluate/vanilla.json
"""

import argparse
from pathlib import Path

import mlflow
import numpy as np

from ganlab.config import load_experiment, read_params
from ganlab.data.arrays import load_prepared
from ganlab.evaluation import score
from ganlab.features import load_feature_net, load_reference
from ganlab.images import save_grid
from ganlab.io import write_json
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
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--grid", type=Path, help="PNG of the first 64 samples")
    args = parser.parse_args()

    pipeline, _ = load_experiment(read_params(args.params), args.experiment)
    device = resolve_device(pipeline.device)
    evaluate = pipeline.evaluate
    with np.load(args.samples, allow_pickle=False) as f:
        images, seeds, checkpoint_sha256 = f["images"], f["seeds"], str(f["checkpoint_sha256"])
    net = load_feature_net(args.net, device)
    test_images = load_prepared(args.data)["x_test"]
    reference = load_reference(args.reference, net, test_images[: int(np.load(args.reference)["n"])])

    name = f"{args.experiment}" if args.method == "none" else f"{args.experiment}+{args.method}"
    with stage_run("evaluate", f"evaluate@{name}", {"experiment": args.experiment, "method": args.method}):
        metrics = score(images, net, reference, nearest_k=evaluate.nearest_k, device=device)
        result = {
            "experiment": args.experiment,
            "method": args.method,
            **metrics,
            "protocol": {
                "feature_space": net.name,
                "feature_weights_sha256": net.weights_sha256,
                "reference_key": str(reference["key"]),
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
        mlflow.log_metrics(metrics)
        mlflow.log_params({f"protocol.{k}": v for k, v in result["protocol"].items()})
        if args.grid is not None:
            mlflow.log_artifact(str(save_grid(images[:64], args.grid)), artifact_path="samples")
        write_json(args.out, result)
    print(f"evaluate@{name}: " + ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))


if __name__ == "__main__":
    main()
