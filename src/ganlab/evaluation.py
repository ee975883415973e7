"""The evaluation record (catalogue §E): the scores of `ganlab.scoring.score` in the domain network's space (keys
`fid`, `kid`, `precision`, ...) and in Inception-v3 pool3 (keys `fid_inception`, `kid_inception`, ...), and the
`protocol` that says how they were made. Where the Inception weights are not available, each Inception key holds
the string `"unavailable: <reason>"`, never a number.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ganlab.features import FeatureSpace
from ganlab.inception import FEATURE_SPACE as INCEPTION_FEATURE_SPACE
from ganlab.inception import FID_WEIGHTS_SHA256_PREFIX, unavailable
from ganlab.metrics.kid import KID_NUM_SUBSETS, kid_subset_size
from ganlab.scoring import METRICS

INCEPTION_SUFFIX = "_inception"


def inception_scores(metrics: dict[str, float]) -> dict[str, float]:
    """{"fid": x, ...} from `score` in the Inception space -> {"fid_inception": x, ...}."""
    return {f"{k}{INCEPTION_SUFFIX}": v for k, v in metrics.items()}


def unavailable_inception_scores(reason: str) -> dict[str, str]:
    """Every Inception key set to "unavailable: <reason>"."""
    return {f"{k}{INCEPTION_SUFFIX}": unavailable(reason) for k in METRICS}


def evaluation_protocol(
    space: FeatureSpace,
    reference: dict[str, Any],
    *,
    n_fake: int,
    nearest_k: int,
    seed: int | None = None,
    inception: tuple[FeatureSpace, dict[str, Any]] | str | None = None,
    dataset: str | None = None,
    reference_file: str | Path | None = None,
    provenance: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The `protocol` record of a metrics file: how its scores were made, in this key order ([...]: only when given)

        [dataset], feature_space, feature_weights_sha256, reference_key, [reference],
        [inception_feature_space, inception_weights_sha256, [inception_weights_verification, inception_reference_key]],
        real_split, n_real, n_fake, nearest_k, kid, [seed], **provenance

    `space` and `reference`: the feature space of the scores and the real statistics they were compared with
    (`features.load_reference`: the first n test images, N real = its `n`); `reference_file`: that file's path.
    `inception`: the Inception space and reference of the record's `*_inception` scores, or the reason they are
    unavailable (a string: weights hash None); None = the record has no Inception scores. `kid`: the kernel, the
    rows per subset actually used (min(1000, N real, N fake)) and the number of subsets. `seed`: the evaluation
    seed of the samples. `provenance`: where the samples come from (checkpoint, training seed, scale, the params
    file), appended in the caller's order."""
    protocol: dict[str, Any] = {} if dataset is None else {"dataset": dataset}
    protocol |= {
        "feature_space": space.name,
        "feature_weights_sha256": space.weights_sha256,
        "reference_key": str(reference["key"]),
    }
    if reference_file is not None:
        protocol["reference"] = str(reference_file)
    if inception is not None:
        protocol["inception_feature_space"] = INCEPTION_FEATURE_SPACE
        if isinstance(inception, str):
            protocol["inception_weights_sha256"] = None
        else:
            inception_space, inception_reference = inception
            protocol |= {
                "inception_weights_sha256": inception_space.weights_sha256,
                "inception_weights_verification": f"sha256 prefix {FID_WEIGHTS_SHA256_PREFIX} + recorded full hash",
                "inception_reference_key": str(inception_reference["key"]),
            }
    n_real = int(reference["n"])
    protocol |= {"real_split": "test", "n_real": n_real, "n_fake": int(n_fake), "nearest_k": nearest_k,
                 "kid": {"kernel": "polynomial d3", "subset_size": kid_subset_size(n_real, int(n_fake)),
                         "num_subsets": KID_NUM_SUBSETS}}  # fmt: skip
    if seed is not None:
        protocol["seed"] = seed
    return protocol | (provenance or {})
