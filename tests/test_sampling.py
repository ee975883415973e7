"""Evaluation samples depend on their seeds only: never on the other seeds drawn with them."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest
import torch

from ganlab.config import NetConfig, load_experiment
from ganlab.data.arrays import load_prepared, to_uint8
from ganlab.modules import load_sampler
from ganlab.nets.registry import build_net
from ganlab.samplers.latent import seeded_normal
from ganlab.sampling import FORWARD_ROWS, evaluation_seeds, generate
from ganlab.train import train_gan
from repo_copy import ROOT, tiny_params, write_params, write_tiny_dataset

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


# --- the sample stage's labels: what a conditional generator was asked for, per image -----------------------

# prior -> (network family, the `tiny` section's keys that make that prior's recipe)
PRIOR_RECIPES = {
    "normal": ("mlp", {}),
    "static_mixture": ("mlp", {"prior": "static_mixture", "num_components": 4, "sigma": 1.0, "c": 2.0}),
    "supervised_mixture": ("mlp", {
        "prior": "supervised_mixture", "sigma": 1.0, "c": 2.0, "lr_prior": 1.0e-3, "loss": "gmgan_ce",
        "discriminator": {"arch": "mlp", "hidden": [16], "head": "classes_and_fake"}}),
    "class_normal": ("dcgan", {
        "prior": "class_normal", "generator": {"arch": "dcgan", "nz": 16, "ngf": 8, "conditional": True},
        "discriminator": {"arch": "dcgan", "ndf": 8, "conditional": True}}),
}


@pytest.fixture(scope="module")
def sample_stage():
    """stages/sample.py imported as a module; its `main` is the stage entry."""
    spec = importlib.util.spec_from_file_location("stage_sample_under_test", ROOT / "stages" / "sample.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("prior", sorted(PRIOR_RECIPES))
def test_sample_stage_stores_the_labels_of_a_labelled_prior_and_none_otherwise(tmp_path, monkeypatch, sample_stage,
                                                                                 prior):
    nets, recipe = PRIOR_RECIPES[prior]
    params = tiny_params(**recipe)
    params["experiments"]["tiny"]["nets"] = nets
    params["evaluate"]["n_samples"] = {"quick": 70, "paper": 70}  # a full FORWARD_ROWS block and a padded one
    write_params(tmp_path / "params.yaml", params)
    _, cfg = load_experiment(params, "tiny")
    data = load_prepared(write_tiny_dataset(tmp_path / "prepared.npz", n_train=32))
    checkpoint = tmp_path / "train" / "seed-0" / "checkpoint.pt"
    state = train_gan(cfg, data["x_train"], data["y_train"], num_epochs=1, device=CPU, checkpoint_path=checkpoint,
                      num_classes=10, max_batches_per_epoch=1)
    monkeypatch.setattr(sys, "argv", ["stages/sample.py", "--params", str(tmp_path / "params.yaml"),
                                      "--experiment", "tiny", "--checkpoints", str(tmp_path / "train"),
                                      "--out", str(tmp_path / "samples")])
    sample_stage.main()

    with np.load(tmp_path / "samples" / "seed-0.npz", allow_pickle=False) as f:
        written = {key: f[key] for key in f.files}
    sampler = load_sampler(state, CPU)
    np.testing.assert_array_equal(written["images"], generate(sampler, written["seeds"], device=CPU))
    if not sampler.prior.labelled:
        assert "labels" not in written  # no dummy: unconditional samples have no labels at all
        return
    labels = written["labels"]
    assert labels.dtype == np.int64 and labels.shape == (70,)
    expected = sampler.prior.labels(sampler.components_for(written["seeds"], CPU)).numpy()
    np.testing.assert_array_equal(labels, expected)
    np.testing.assert_array_equal(labels, sampler.labels_for(written["seeds"], CPU).numpy())
    assert len(np.unique(labels)) > 5  # spread over the 10 classes, not a constant
    # the label really is the class G was given: regenerating with it reproduces the stored images
    eps = seeded_normal(written["seeds"][:3].tolist(), (sampler.nz,), CPU)
    k = torch.from_numpy(labels[:3])
    with torch.no_grad():
        np.testing.assert_array_equal(to_uint8(sampler(eps, k)).numpy(), written["images"][:3])
