"""Stage `report`: `reports/results.md` from every evaluation's metrics file.

    python stages/report.py --metrics metrics/evaluate --out reports/results.md
"""

import argparse
from pathlib import Path

from ganlab.io import write_text_atomic
from ganlab.report import load_results, render_markdown
from ganlab.runtime import stage_entry


@stage_entry
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--metrics", required=True, type=Path)
    parser.add_argument("--train", default=Path("metrics/train"), type=Path)
    parser.add_argument("--grids", default=Path("reports/grids"), type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()
    results = load_results(args.metrics)
    write_text_atomic(args.out, render_markdown(results, out_path=args.out, grids_dir=args.grids, train_dir=args.train))
    print(f"report: {len(results)} evaluated runs -> {args.out}")


if __name__ == "__main__":
    main()
