"""Architectures: output shapes and ranges, registry errors."""

from __future__ import annotations

import math

import pytest
import torch

from ganlab.config import NetConfig
from ganlab.nets.layers import Dropout
from ganlab.nets.registry import build_net, validate_net
from ganlab.train import per_sample


@pytest.mark.parametrize("batch_norm", [False, True])
def test_mlp_generator_shape_and_range(batch_norm):
    g = build_net("generator", NetConfig(arch="mlp", nz=100, batch_norm=batch_norm), image_shape=(1, 28, 28))
    x = g(torch.randn(7, 100))
    assert x.shape == (7, 1, 28, 28)
    assert x.min() >= -1 and x.max() <= 1
    widths = [m.out_features for m in g.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [256, 512, 1024, 784]
    assert any(isinstance(m, torch.nn.BatchNorm1d) for m in g.modules()) == batch_norm


def test_mlp_discriminator_gives_one_logit_per_image():
    d = build_net("discriminator", NetConfig(arch="mlp"), image_shape=(1, 28, 28))
    widths = [m.out_features for m in d.modules() if isinstance(m, torch.nn.Linear)]
    assert widths == [1024, 512, 256, 1]
    assert d(torch.randn(5, 1, 28, 28)).shape == (5,)
    assert [m.p for m in d.modules() if isinstance(m, Dropout)] == [0.3, 0.3, 0.3] and per_sample(d)


def test_dropout_keeps_each_element_independently_with_probability_1_minus_p():
    p, n = 0.3, 400_000
    x = torch.ones(n, requires_grad=True)
    torch.manual_seed(0)
    y = Dropout(p).train()(x)
    kept = (y != 0).float()
    # binomial: the kept fraction within 5 standard deviations of 1 - p, and so is the fraction of adjacent
    # pairs both kept, (1 - p)^2 (independence; a mask of runs or stripes would miss it)
    assert abs(kept.mean() - (1 - p)) < 5 * math.sqrt(p * (1 - p) / n)
    pairs = kept[:-1] * kept[1:]
    assert abs(pairs.mean() - (1 - p) ** 2) < 5 * math.sqrt((1 - p) ** 2 * (1 - (1 - p) ** 2) / n)
    assert torch.equal(y[y != 0], torch.full_like(y[y != 0], 1 / (1 - p)))  # kept values rescaled
    y.sum().backward()
    assert torch.equal(x.grad, y.detach())  # d(x * mask / (1 - p)) / dx = mask / (1 - p) = y at x = 1


def test_dropout_is_seeded_by_the_global_rng_and_the_identity_in_eval():
    x = torch.randn(64, 32)
    masks = []
    for seed in (1, 1, 2):
        torch.manual_seed(seed)
        masks.append(Dropout(0.5).train()(x))
    assert torch.equal(masks[0], masks[1]) and not torch.equal(masks[0], masks[2])
    assert torch.equal(Dropout(0.5).eval()(x), x) and torch.equal(Dropout(0.0).train()(x), x)
    assert torch.equal(Dropout(1.0).train()(x), torch.zeros_like(x))  # no 0 * inf


def test_registry_names_the_allowed_architectures():
    with pytest.raises(ValueError, match=r"generator.arch: unknown architecture 'resnet'; allowed: \[.*'mlp'"):
        validate_net("generator", NetConfig(arch="resnet"))
