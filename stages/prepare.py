"""Stage `prepare@<dataset>`: fixed train/test arrays (uint8, NHWC) ready for training and evaluation.

    python stages/prepare.py --dataset mnist --raw data/raw/mnist.npz --out data/prepared/mnist.npz
"""

import _project_python  # noqa: F401, I001  (first: the project's Python, or one line saying how)

import argparse
from pathlib import Path

from ganlab.data.registry import prepare_dataset
from ganlab.runtime import stage_entry


@stage_entry
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--raw", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    summary = prepare_dataset(args.dataset, args.raw, args.out)
    print(f"prepared {args.dataset}: {summary}")


if __name__ == "__main__":
    main()
