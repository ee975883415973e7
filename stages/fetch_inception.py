"""Stage `fetch_inception`: find (or download, when online) and verify pytorch-fid's Inception-v3 weights.

    python stages/fetch_inception.py --out data/inception/weights.json

With `evaluate.inception_weights: <path>` that file is verified and used (never downloaded over). With
`null`, the torch hub cache is used, `$TORCH_HOME/hub/checkpoints/pt_inception-2015-12-05-6726825d.pth`
(TORCH_HOME defaults to ~/.cache/torch), downloaded from the pytorch-fid release when missing.

Verification: the sha256 must start with 6726825d (the only published digits: the torch hub file name); the
full sha256 is recorded in data/acquired_checksums.json on first acquisition and required afterwards.

Unavailable weights (offline, wrong hash) are not an error: the record says why, the stage exits 0, and the
Inception metrics downstream read "unavailable: <reason>". DVC runs this stage every time
(`always_changed`), so weights placed later are picked up; the record only changes when the file does.
"""

import _project_python  # noqa: F401, I001  (first: the project's Python, or one line saying how)

import argparse
from pathlib import Path

from ganlab.config import load_pipeline, read_params
from ganlab.inception import InceptionUnavailable, fetch_weights, record_weights, verify_weights, weights_record
from ganlab.io import write_json
from ganlab.paths import main_repo_root
from ganlab.runtime import stage_entry


@stage_entry
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args()

    pipeline = load_pipeline(read_params(args.params))
    checksums = main_repo_root() / "data" / "acquired_checksums.json"
    explicit = pipeline.evaluate.inception_weights
    try:
        if explicit is not None:
            weights = verify_weights(Path(explicit).expanduser(), checksums_path=checksums)
            record_weights(weights, checksums, source="manual")
        else:
            weights = fetch_weights(checksums_path=checksums, timeout_s=pipeline.data.timeout_s)
    except InceptionUnavailable as exc:
        write_json(args.out, weights_record(None, exc.reason))
        print(f"fetch_inception: Inception metrics will be recorded as unavailable: {exc.reason}")
        return
    write_json(args.out, weights_record(weights))
    print(f"fetch_inception: {weights.path} (sha256 {weights.sha256})")


if __name__ == "__main__":
    main()
