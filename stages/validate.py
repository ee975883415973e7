"""Stage `validate`: check the whole params.yaml before any other stage runs.

    python stages/validate.py --out metrics/params_valid.json

It declares the whole file as its dependency, so even a key that no other stage reads (a typo such as
`dvc exp run -S gmgn.sigma=1.4`) is caught here: exit code 2 and one line naming the key. Its output is
constant when the params are valid, so downstream stages are not rerun because of it.
"""

import argparse

from ganlab.config import load_experiment, load_pipeline, read_params
from ganlab.data.registry import DATASETS
from ganlab.io import write_json
from ganlab.runtime import resolve_device, stage_entry
from ganlab.schema import ConfigError


@stage_entry
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", required=True)
    args = parser.parse_args()

    params = read_params(args.params)
    pipeline = load_pipeline(params)
    for name in pipeline.datasets:
        if name not in DATASETS:
            raise ConfigError(f"datasets: unknown dataset {name!r}; allowed: {sorted(DATASETS)}")
    for name in pipeline.experiments:
        load_experiment(params, name)
    resolve_device(pipeline.device)
    write_json(args.out, {"params_valid": True})


if __name__ == "__main__":
    main()
