"""Stage `fetch@<dataset>`: acquire the raw dataset, verify checksums, write it in the project's format.

    python stages/fetch.py --dataset mnist --out data/raw/mnist.npz --source data/raw/mnist.json

Sources are tried in order (canonical URLs, then verified mirrors); files placed by hand in
`data/manual/` are verified and used. Downloads resume from `data/downloads/` (override with
`GANLAB_DOWNLOAD_DIR`; `GANLAB_MANUAL_DIR` likewise).
"""

import _project_python  # noqa: F401, I001  (first: the project's Python, or one line saying how)

import argparse
import os
from pathlib import Path

from ganlab.config import DataConfig, parse, read_params
from ganlab.data.registry import DATASETS, fetch_dataset
from ganlab.io import write_json
from ganlab.paths import main_repo_root
from ganlab.runtime import stage_entry
from ganlab.schema import ConfigError


@stage_entry
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--dataset", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--source", required=True, type=Path, help="provenance JSON")
    args = parser.parse_args()

    cfg = parse(DataConfig, read_params(args.params).get("data", {}), section="data")
    if args.dataset not in DATASETS:
        raise ConfigError(f"datasets: unknown dataset {args.dataset!r}; allowed: {sorted(DATASETS)}")
    root = main_repo_root()
    download_dir = Path(os.environ.get("GANLAB_DOWNLOAD_DIR", root / "data" / "downloads"))
    manual_dir = Path(os.environ.get("GANLAB_MANUAL_DIR", root / "data" / "manual"))
    provenance = fetch_dataset(
        args.dataset, args.out, download_dir=download_dir, manual_dir=manual_dir, timeout_s=cfg.timeout_s
    )
    write_json(args.source, provenance)


if __name__ == "__main__":
    main()
