"""Stage `features@<dataset>`: train the domain feature network and cache the real test-set statistics.

    python stages/features.py --dataset mnist --data data/prepared/mnist.npz \
        --net data/features/mnist/network.pt --reference data/features/mnist/reference.npz \
        --metrics metrics/features/mnist.json

The classifier's penultimate layer is the feature space for FID and PRDC; its test accuracy is reported.
The reference holds the first `evaluate.n_samples` test images' features, mean and float64 covariance.
"""

import argparse
from pathlib import Path

from ganlab.config import EvaluateConfig, FeatureNetConfig, load_pipeline, parse, read_params
from ganlab.data.arrays import load_prepared
from ganlab.features import compute_reference, load_feature_net, save_feature_net, train_classifier
from ganlab.io import save_npz_atomic, write_json
from ganlab.runtime import resolve_device, seed_everything, set_deterministic, stage_entry
from ganlab.schema import ConfigError


@stage_entry
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--data", required=True, type=Path)
    parser.add_argument("--net", required=True, type=Path)
    parser.add_argument("--reference", required=True, type=Path)
    parser.add_argument("--metrics", required=True, type=Path)
    args = parser.parse_args()

    params = read_params(args.params)
    pipeline = load_pipeline(params)
    if args.dataset not in pipeline.features:
        raise ConfigError(f"features: no section features.{args.dataset}")
    cfg: FeatureNetConfig = pipeline.features[args.dataset]
    evaluate: EvaluateConfig = pipeline.evaluate
    device = resolve_device(pipeline.device)
    seed_everything(cfg.seed)
    set_deterministic(device)

    data = load_prepared(args.data)
    if data["y_train"].min() < 0:
        raise ConfigError(f"features.{args.dataset}: the dataset has no labels; the classifier needs them")
    num_epochs = cfg.num_epochs.at(pipeline.scale)
    model, info = train_classifier(
        cfg, data["x_train"], data["y_train"], data["x_test"], data["y_test"],
        num_epochs=num_epochs, device=device, max_batches_per_epoch=pipeline.max_batches_per_epoch,
    )
    weights_sha256 = save_feature_net(model, args.net, dataset=args.dataset, cfg=cfg, info=info)
    net = load_feature_net(args.net, device)

    n_real = min(evaluate.n_samples.at(pipeline.scale), len(data["x_test"]))
    reference = compute_reference(net, data["x_test"][:n_real], device=device)
    save_npz_atomic(args.reference, **reference)
    write_json(
        args.metrics,
        {
            "dataset": args.dataset,
            "feature_space": net.name,
            "weights_sha256": weights_sha256,
            "test_accuracy": info["test_accuracy"],
            "num_epochs": num_epochs,
            "n_reference": n_real,
            "reference_key": str(reference["key"]),
        },
    )
    print(f"features@{args.dataset}: test accuracy {info['test_accuracy']:.4f}, feature space {net.name}")


if __name__ == "__main__":
    main()
