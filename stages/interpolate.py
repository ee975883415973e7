"""Stage `interpolate@<experiment>`: a class-conditional generator's images along straight lines between the
conditioning vectors of two classes (report 002's cWGAN "interpolation between classes"; cDCGAN too).

    python stages/interpolate.py --experiment cdcgan_mnist \
        --checkpoint data/train/cdcgan_mnist/seed-0/checkpoint.pt --out reports/grids/cdcgan_mnist-interp.png

One grid row per pair of classes (0 -> 1, 1 -> 2, ..., C-1 -> 0), `INTERPOLATION_STEPS` columns from class a to
class b, one latent per row from the evaluation seed `evaluate.seed` (see `ganlab.visuals.class_interpolation`).
A checkpoint whose generator is not class-conditional is refused (exit 2, naming the experiment).
"""

import _project_python  # noqa: F401, I001  (first: the project's Python, or one line saying how)

import argparse
from pathlib import Path

from ganlab import checkpoint as ckpt_io
from ganlab.config import ConfigError, load_experiment, read_params
from ganlab.images import save_grid
from ganlab.runtime import resolve_device, stage_entry
from ganlab.modules import load_sampler
from ganlab.visuals import INTERPOLATION_STEPS, check_interpolable, class_interpolation


@stage_entry
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--experiment", required=True)
    parser.add_argument("--checkpoint", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path, help="PNG: one row per pair of classes")
    args = parser.parse_args()

    pipeline, _ = load_experiment(read_params(args.params), args.experiment)
    device = resolve_device(pipeline.device)
    generator = load_sampler(ckpt_io.load(args.checkpoint, map_location=device), device)
    try:
        check_interpolable(generator)
    except ValueError as e:  # the recipe (e.g. generator.conditional: false), not the code, is at fault
        raise ConfigError(f"{args.experiment}: interpolate@{args.experiment} needs a class-conditional generator "
                          f"with a class_normal prior; {args.checkpoint}: {e}") from None
    images = class_interpolation(generator, steps=INTERPOLATION_STEPS, seed=pipeline.evaluate.seed, device=device)
    save_grid(images, args.out, nrow=INTERPOLATION_STEPS)
    print(f"interpolate@{args.experiment}: {len(images) // INTERPOLATION_STEPS} class pairs x "
          f"{INTERPOLATION_STEPS} steps -> {args.out}")


if __name__ == "__main__":
    main()
