"""Learning curves: the generator scored while it trains, so a reader sees whether a run left collapse and whether
it was still improving when it stopped (issue 15).

Every `curves.eval_every` epochs, and at the last epoch, the train stage calls a `CurveScorer` between the epoch's
training and its checkpoint: it draws `curves.n_samples` images from fixed evaluation seeds (the block of
`curves.seed`, so every point of every run sees the same latents) and scores them against the first `n_samples`
test images in the domain feature space (`ganlab.scoring.score`: FID, precision, recall, density, coverage;
no KID, whose subsets would cost more than the rest). The scores join the epoch's history row under "curve", so they live in the checkpoint and survive a
resume. Scoring draws no number from the training RNGs and leaves the networks' weights and BatchNorm statistics
untouched, so a run with curves trains exactly as one without.

Cost: one `n_samples` generation, embedding and scoring per point (no KID: its subsets would cost more than the rest).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ganlab.scoring import score
from ganlab.features import FeatureNet, compute_reference
from ganlab.modules import LatentGenerator
from ganlab.sampling import evaluation_seeds, generate

CURVE_METRICS = ("fid", "precision", "recall", "density", "coverage")


@dataclass(frozen=True)
class CurveScorer:
    """`scorer(epoch, sampler)` -> the epoch's scores (`CURVE_METRICS`), or None when `epoch` is not a point."""

    net: FeatureNet
    reference: dict[str, np.ndarray]  # the first n test images' features and statistics
    seeds: np.ndarray  # (n,) evaluation seeds
    nearest_k: int
    eval_every: int
    last_epoch: int
    device: torch.device

    @classmethod
    def build(cls, net: FeatureNet, test_images: np.ndarray, *, n_samples: int, seed: int, nearest_k: int,
              eval_every: int, last_epoch: int, device: torch.device) -> "CurveScorer":
        """N = min(n_samples, test images) real and fake images; the real features are computed once here."""
        n = min(n_samples, len(test_images))
        reference = compute_reference(net, test_images[:n], device=device)
        return cls(net, reference, evaluation_seeds(n, seed), nearest_k, eval_every, last_epoch, device)

    def is_point(self, epoch: int) -> bool:
        return epoch % self.eval_every == 0 or epoch == self.last_epoch

    def __call__(self, epoch: int, sampler: LatentGenerator) -> dict[str, float] | None:
        if not self.is_point(epoch):
            return None
        was_training = sampler.training
        images = generate(sampler, self.seeds, device=self.device)  # eval mode: BatchNorm statistics untouched
        sampler.train(was_training)
        scores = score(images, self.net, self.reference, nearest_k=self.nearest_k, device=self.device, kid=False)
        return {k: scores[k] for k in CURVE_METRICS}

    def comparable(self) -> dict[str, Any]:
        """What two points must share to be comparable (the feature space, the real and fake images, k); the
        checkpoint keeps it, so a resumed run does not mix points of two protocols."""
        return {"feature_space": self.net.name, "feature_weights_sha256": self.net.weights_sha256,
                "real_split": "test", "n_real": int(self.reference["n"]), "n_fake": len(self.seeds),
                "first_sample_seed": int(self.seeds[0]), "nearest_k": self.nearest_k}

    def protocol(self) -> dict[str, Any]:
        """How the points were made: recorded in the train metrics beside the curve."""
        return self.comparable() | {"eval_every": self.eval_every}

    def missing(self, history: list[dict[str, Any]]) -> list[int]:
        """The epochs of `history` that should have a point and do not (made before curves, or dropped on resume
        because they were made in another protocol)."""
        return [r["epoch"] for r in history if self.is_point(r["epoch"]) and "curve" not in r]


def curve_rows(history: list[dict[str, Any]], seed: int) -> list[dict[str, float]]:
    """The CSV rows of one seed's curve: seed, epoch, training seconds so far (scoring excluded), the scores."""
    rows, seconds = [], 0.0
    for record in history:
        seconds += record["seconds"]
        if "curve" in record:
            rows.append({"seed": seed, "epoch": record["epoch"], "train_seconds": seconds, **record["curve"]})
    return rows
