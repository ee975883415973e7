"""Architectures: output shapes and ranges, registry errors."""

from __future__ import annotations

import pytest
import torch

from ganlab.config import NetConfig
from ganlab.nets.registry import build_net, validate_net


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


def test_registry_names_the_allowed_architectures():
    with pytest.raises(ValueError, match=r"generator.arch: unknown architecture 'resnet'; allowed: \[.*'mlp'"):
        validate_net("generator", NetConfig(arch="resnet"))
