"""Evaluation samples depend on their seeds only: never on the other seeds drawn with them."""

from __future__ import annotations

import numpy as np
import torch

from ganlab.config import NetConfig
from ganlab.nets.registry import build_net
from ganlab.sampling import FORWARD_ROWS, evaluation_seeds, generate

CPU = torch.device("cpu")


def test_a_seed_gives_the_same_image_alone_or_among_others():
    torch.manual_seed(0)
    g = build_net("generator", NetConfig(arch="mlp", batch_norm=True), image_shape=(1, 28, 28))
    seeds = evaluation_seeds(2 * FORWARD_ROWS + 3, seed=3)  # two full blocks and a padded one
    many = generate(g, seeds, device=CPU)
    assert many.dtype == np.uint8 and many.shape == (len(seeds), 28, 28, 1)
    one_by_one = np.concatenate([generate(g, seeds[i : i + 1], device=CPU) for i in range(len(seeds))])
    np.testing.assert_array_equal(one_by_one, many)
    shuffled = np.random.default_rng(0).permutation(len(seeds))
    np.testing.assert_array_equal(generate(g, seeds[shuffled], device=CPU), many[shuffled])
    assert not np.array_equal(many[0], many[1])


def test_evaluation_seeds_are_disjoint_across_evaluation_seeds():
    a, b = evaluation_seeds(1000, 0), evaluation_seeds(1000, 1)
    assert len(np.intersect1d(a, b)) == 0
