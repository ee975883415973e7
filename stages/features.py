"""Stage `features@<dataset>`: train the domain feature network and cache the real test-set statistics in
its space and in Inception-v3 pool3.

    python stages/features.py --dataset mnist --data data/prepared/mnist.npz \
        --net data/features/mnist/network.pt --reference data/features/mnist/reference.npz \
        --inception data/inception/weights.json \
        --inception-reference data/features/mnist/inception_reference.npz \
        --metrics metrics/features/mnist.json

`features.<dataset>.arch` picks the network: a classifier (lenet, cnn; its test accuracy is reported) or
an autoencoder (for unlabelled data; its test reconstruction MSE is reported). The references hold the
first `evaluate.n_samples` test images' features, mean and float64 covariance. When the Inception weights
are unavailable (see `stages/fetch_inception.py`), the Inception reference holds only the reason.

The metrics file carries the space's report card (`ganlab.battery`, `features.<dataset>.battery`): FID and
precision / recall / density / coverage (k = `evaluate.nearest_k`) of real train images, half the classes, one
image, noise and corrupted images against the first n test images, and whether the bars of issue 15 hold.
"""

import _project_python  # noqa: F401, I001  (first: the project's Python, or one line saying how)

import argparse
from pathlib import Path

import numpy as np

from ganlab.battery import battery_record
from ganlab.config import EvaluateConfig, FeatureNetConfig, load_pipeline, read_params
from ganlab.data.arrays import load_prepared
from ganlab.features import (
    compute_reference,
    load_feature_net,
    save_feature_net,
    train_feature_net,
)
from ganlab.inception import FEATURE_SPACE as INCEPTION_FEATURE_SPACE
from ganlab.inception import InceptionUnavailable, load_inception_space, unavailable
from ganlab.io import read_json, save_npz_atomic, write_json
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
    parser.add_argument("--inception", required=True, type=Path, help="weights record of fetch_inception")
    parser.add_argument("--inception-reference", required=True, type=Path)
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
    num_epochs = cfg.num_epochs.at(pipeline.scale)
    try:
        model, info = train_feature_net(
            cfg, data, num_epochs=num_epochs, device=device, max_batches_per_epoch=pipeline.max_batches_per_epoch,
            progress=f"features@{args.dataset}",
        )
    except ValueError as exc:  # a classifier asked for on unlabelled data
        raise ConfigError(f"features.{args.dataset}.arch: {exc}") from None
    weights_sha256 = save_feature_net(model, args.net, dataset=args.dataset, cfg=cfg, info=info)
    net = load_feature_net(args.net, device)

    n_real = min(evaluate.n_samples.at(pipeline.scale), len(data["x_test"]))
    real = data["x_test"][:n_real]
    reference = compute_reference(net, real, device=device)
    save_npz_atomic(args.reference, **reference)

    try:
        inception = load_inception_space(read_json(args.inception), device=device)
    except InceptionUnavailable as exc:
        inception_status = {"feature_space": INCEPTION_FEATURE_SPACE, "status": unavailable(exc.reason)}
        save_npz_atomic(args.inception_reference, unavailable=np.array(exc.reason))
    else:
        inception_reference = compute_reference(inception, real, device=device)
        save_npz_atomic(args.inception_reference, **inception_reference)
        inception_status = {
            "feature_space": inception.name,
            "status": "available",
            "weights_sha256": inception.weights_sha256,
            "reference_key": str(inception_reference["key"]),
        }

    battery = battery_record(net, data["x_train"], data["x_test"], data["y_test"], n=cfg.battery.n,
                             seed=cfg.battery.seed, nearest_k=evaluate.nearest_k, device=device)  # fmt: skip

    quality = {k: v for k, v in info.items() if k in ("test_accuracy", "test_rejected", "test_reconstruction_mse")}
    write_json(
        args.metrics,
        {
            "dataset": args.dataset,
            "feature_space": net.name,
            "kind": net.kind,
            "weights_sha256": weights_sha256,
            **quality,
            "num_epochs": num_epochs,
            "n_reference": n_real,
            "reference_key": str(reference["key"]),
            "inception": inception_status,
            **battery,
        },
    )
    summary = ", ".join(f"{k.replace('_', ' ')} {v:.4f}" for k, v in quality.items())
    failed = [name for name, ok in battery["battery_checks"].items() if not ok]
    print(f"features@{args.dataset}: {summary}, feature space {net.name}; Inception: {inception_status['status']}; "
          f"battery: {', '.join(failed) + ' fail' if failed else 'every bar holds'}")


if __name__ == "__main__":
    main()
