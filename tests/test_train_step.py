"""The fast paths of the training step: one D pass over (real, fake), deferred finiteness checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from ganlab.config import ExperimentConfig
from ganlab.losses import LOSSES, Loss
from ganlab.runtime import DivergedError
from ganlab.modules import build_modules
from ganlab.train import GANStep, build_optimizers, per_sample, train_gan

CPU = torch.device("cpu")


def _config(**overrides) -> ExperimentConfig:
    cfg = {
        "generator": {"arch": "mlp", "nz": 8, "hidden": [16, 32]},
        "discriminator": {"arch": "mlp", "hidden": [32, 16], "dropout": 0.0},
        "loss": "ns",
        "optimizer": {"name": "adam", "lr_g": 1.0e-3, "lr_d": 1.0e-3},
        "batch_size": 8,
        "num_epochs": {"quick": 1, "paper": 1},
        "grid_size": 4,
    }
    cfg.update(overrides)
    return ExperimentConfig.model_validate(cfg)


def test_per_sample_accepts_plain_mlps_and_rejects_batch_statistics_and_spectral_norm():
    assert per_sample(nn.Sequential(nn.Linear(4, 8), nn.LeakyReLU(0.2), nn.Dropout(0.3), nn.Linear(8, 1)))
    assert not per_sample(nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 1)))
    assert not per_sample(nn.Sequential(nn.utils.parametrizations.spectral_norm(nn.Linear(4, 8))))

    class Scale(nn.Module):  # an unknown module with its own parameter: not trusted
        def __init__(self):
            super().__init__()
            self.s = nn.Parameter(torch.ones(1))

        def forward(self, x):
            return x * self.s

    assert not per_sample(nn.Sequential(nn.Linear(4, 4), Scale()))


def _first_d_update(cfg, real, joint: bool):
    """Loss and D's gradients of the first D update, with the one-pass path forced on or off."""
    torch.manual_seed(0)
    parts = build_modules(cfg, (1, 28, 28), 0, CPU)
    opt_g, opt_d = build_optimizers(cfg, parts)
    step = GANStep(cfg, parts, opt_g, opt_d, torch.Generator().manual_seed(1), CPU)
    default = step.joint_d
    step.joint_d = joint
    opt_d.step = lambda: None  # keep the weights: compare the gradients
    loss = step.d_step(real, torch.zeros(len(real), dtype=torch.long))
    return default, loss, [p.grad.clone() for p in parts.discriminator.parameters()]


def test_joint_d_pass_gives_the_gradients_of_two_separate_passes():
    # Without dropout the joint pass is the same arithmetic on the same rows: same loss and gradients (rounding).
    cfg = _config()
    real = torch.rand(8, 1, 28, 28) * 2 - 1
    default, loss_joint, g_joint = _first_d_update(cfg, real, joint=True)
    _, loss_split, g_split = _first_d_update(cfg, real, joint=False)
    assert default is True
    torch.testing.assert_close(loss_joint, loss_split, rtol=1e-6, atol=1e-7)
    for a, b in zip(g_joint, g_split, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    assert all(g.abs().sum() > 0 for g in g_joint)


def test_a_batchnorm_discriminator_keeps_separate_passes():
    # BatchNorm normalises over the batch: joining real and fake would change D's output, so it is not done.
    cfg = _config(generator={"arch": "dcgan", "nz": 8, "ngf": 8}, discriminator={"arch": "dcgan", "ndf": 8})
    real = torch.rand(8, 1, 28, 28) * 2 - 1
    default, loss_split, _ = _first_d_update(cfg, real, joint=False)
    _, loss_joint, _ = _first_d_update(cfg, real, joint=True)
    assert default is False
    assert abs(loss_joint.item() - loss_split.item()) > 1e-3


def _nan_at(call: int, role: str):
    """The ns loss, except that the `call`-th (1-based) D or G loss is NaN."""
    ns, calls = LOSSES["ns"], {"n": 0}

    def bad(fn):
        def wrapped(*args):
            calls["n"] += 1
            value = fn(*args)
            return value * float("nan") if calls["n"] == call else value
        return wrapped

    if role == "d":
        return Loss(d=bad(ns.d), g=ns.g, logit_is_log_ratio=True)
    return Loss(d=ns.d, g=bad(ns.g), logit_is_log_ratio=True)


@pytest.mark.parametrize("check_every", [1, 5, 100])
@pytest.mark.parametrize("role,name", [("d", "discriminator"), ("g", "generator")])
def test_divergence_names_the_exact_step_whatever_the_check_interval(check_every, role, name, tmp_path, monkeypatch):
    images = np.random.default_rng(0).integers(0, 256, size=(96, 28, 28, 1), dtype=np.uint8)
    monkeypatch.setitem(LOSSES, "ns", _nan_at(3, role))
    with pytest.raises(DivergedError, match=rf"^{name} loss is nan at epoch 1, step 3$"):
        train_gan(_config(), images, np.zeros(96), num_epochs=1, device=CPU, checkpoint_path=tmp_path / "c.pt",
                  check_every=check_every)
    assert not (tmp_path / "c.pt").exists()


def test_float_dataset_and_uint8_dataset_train_identically(tmp_path, monkeypatch):
    # The whole-dataset float conversion is the per-batch one done once: same weights, bit for bit.
    images = np.random.default_rng(1).integers(0, 256, size=(64, 28, 28, 1), dtype=np.uint8)
    cfg = _config(discriminator={"arch": "mlp", "hidden": [32, 16], "dropout": 0.3})
    states = []
    for limit in (2**30, 0):  # 0: too big to convert -> per-batch conversion
        monkeypatch.setattr("ganlab.train.FLOAT_DATASET_MAX_BYTES", limit)
        torch.manual_seed(0)
        states.append(train_gan(cfg, images, np.zeros(64), num_epochs=1, device=CPU,
                                checkpoint_path=tmp_path / f"{limit}.pt"))
    for net in ("generator", "discriminator"):
        for k, v in states[0][net].items():
            assert torch.equal(v, states[1][net][k])
