"""Stage `sample@<experiment>`: N evaluation images per training seed, from integer sample seeds (identical at
any batch size).

    python stages/sample.py --experiment vanilla --checkpoints data/train/vanilla --out data/samples/vanilla

Reads <checkpoints>/seed-<s>/checkpoint.pt and writes <out>/seed-<s>.npz for every s of `seeds`: `images`,
`seeds`, the checkpoint's sha256, and, for a generator conditioned on labels (a labelled prior), `labels`: the
class each image was generated with (evaluate@ scores the domain classifier's agreement with them).
"""

import _project_python  # noqa: F401, I001  (first: the project's Python, or one line saying how)

import argparse
from pathlib import Path

from ganlab import checkpoint as ckpt_io
from ganlab.config import load_experiment, read_params
from ganlab.io import save_npz_atomic
from ganlab.paths import CHECKPOINT, seed_path
from ganlab.runtime import resolve_device, stage_entry
from ganlab.sampling import evaluation_seeds, generate
from ganlab.modules import load_sampler, trained_precision


@stage_entry
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--checkpoints", required=True, type=Path, help="train@<experiment>'s output folder")
    parser.add_argument("--out", required=True, type=Path, help="folder of the seed-<s>.npz files")
    args = parser.parse_args()

    pipeline, _ = load_experiment(read_params(args.params), args.experiment)
    device = resolve_device(pipeline.device)
    evaluate = pipeline.evaluate
    seeds = evaluation_seeds(evaluate.n_samples.at(pipeline.scale), evaluate.seed)
    for training_seed in pipeline.seeds_of(args.experiment):
        checkpoint = seed_path(args.checkpoints, training_seed) / CHECKPOINT
        state = ckpt_io.load(checkpoint, map_location=device)
        generator = load_sampler(state, device)
        images = generate(generator, seeds, device=device)
        labels = generator.labels_for(seeds, device)  # None: not conditioned on labels, and no `labels` key
        conditional = {} if labels is None else {"labels": labels.cpu().numpy()}
        out = seed_path(args.out, training_seed, ".npz")
        save_npz_atomic(out, images=images, seeds=seeds, checkpoint_sha256=ckpt_io.file_sha256(checkpoint),
                        training_seed=training_seed, training_precision=trained_precision(state), method="none",
                        **conditional)  # fmt: skip
        print(f"sample@{args.experiment} seed {training_seed}: {len(images)} images -> {out}")


if __name__ == "__main__":
    main()
