"""Stage `sample@<experiment>`: N evaluation images from integer seeds (identical at any batch size).

    python stages/sample.py --experiment vanilla --checkpoint data/train/vanilla/checkpoint.pt \
        --out data/samples/vanilla/none.npz
"""

import argparse
from pathlib import Path

from ganlab import checkpoint as ckpt_io
from ganlab.config import load_experiment, read_params
from ganlab.io import save_npz_atomic
from ganlab.runtime import resolve_device, stage_entry
from ganlab.sampling import evaluation_seeds, generate
from ganlab.train import generator_from_checkpoint


@stage_entry
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()

    pipeline, _ = load_experiment(read_params(args.params), args.experiment)
    device = resolve_device(pipeline.device)
    evaluate = pipeline.evaluate
    generator = generator_from_checkpoint(ckpt_io.load(args.checkpoint, map_location=device), device)
    seeds = evaluation_seeds(evaluate.n_samples.at(pipeline.scale), evaluate.seed)
    images = generate(generator, seeds, device=device)
    save_npz_atomic(
        args.out, images=images, seeds=seeds, checkpoint_sha256=ckpt_io.file_sha256(args.checkpoint), method="none"
    )
    print(f"sample@{args.experiment}: {len(images)} images -> {args.out}")


if __name__ == "__main__":
    main()
