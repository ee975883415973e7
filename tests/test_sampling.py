"""Evaluation samples depend on seeds only, never on the batch size."""

from __future__ import annotations

import numpy as np
import torch

from ganlab.config import NetConfig
from ganlab.nets.registry import build_net
from ganlab.sampling import evaluation_seeds, generate


def test_samples_are_identical_at_batch_size_1_and_64():
    torch.manual_seed(0)
    g = build_net("generator", NetConfig(arch="mlp", batch_norm=True), image_shape=(1, 28, 28))
    seeds = evaluation_seeds(130, seed=3)
    one = generate(g, seeds, batch_size=1, device=torch.device("cpu"))
    many = generate(g, seeds, batch_size=64, device=torch.device("cpu"))
    assert one.dtype == np.uint8 and one.shape == (130, 28, 28, 1)
    np.testing.assert_array_equal(one, many)
    # and a sample does not depend on its neighbours
    np.testing.assert_array_equal(generate(g, seeds[7:8], batch_size=64, device=torch.device("cpu"))[0], one[7])
    assert not np.array_equal(one[0], one[1])


def test_evaluation_seeds_are_disjoint_across_evaluation_seeds():
    a, b = evaluation_seeds(1000, 0), evaluation_seeds(1000, 1)
    assert len(np.intersect1d(a, b)) == 0
