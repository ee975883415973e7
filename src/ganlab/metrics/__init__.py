"""Evaluation metrics on feature arrays: Fréchet distance (FID formula), KID and PRDC.

    from ganlab.metrics import feature_statistics, frechet_distance, compute_kid, compute_prdc
"""

from ganlab.metrics.frechet import (
    SingularCovarianceWarning,
    feature_statistics,
    frechet_distance,
    warn_if_singular_covariance,
)
from ganlab.metrics.kid import compute_kid
from ganlab.metrics.prdc import compute_prdc

__all__ = [
    "SingularCovarianceWarning",
    "compute_kid",
    "compute_prdc",
    "feature_statistics",
    "frechet_distance",
    "warn_if_singular_covariance",
]
