"""The BiGAN probe: classifier accuracies on codes, against independent computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganlab.probe import encode, probe_codes, train_subset


def _blobs(n: int, seed: int, spread: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]])
    y = rng.integers(0, 3, n)
    return centres[y] + spread * rng.standard_normal((n, 2)), y


def test_nearest_neighbour_accuracy_matches_brute_force():
    x_tr, y_tr = _blobs(300, 0, 1.5)
    x_te, y_te = _blobs(200, 1, 1.5)
    scores = probe_codes(x_tr, y_tr, x_te, y_te)
    d = ((x_te[:, None, :] - x_tr[None, :, :]) ** 2).sum(-1)  # (200, 300) squared distances
    expected = (y_tr[d.argmin(1)] == y_te).mean()
    assert scores["nn1_accuracy"] == pytest.approx(expected, abs=1e-12)
    assert 0.6 < scores["svm_rbf_accuracy"] <= 1 and 0.6 < scores["linear_accuracy"] <= 1


def test_rbf_svm_beats_a_linear_classifier_on_a_nonlinear_code():
    # class = inside/outside a ring: no linear boundary exists, an RBF kernel separates it
    rng = np.random.default_rng(0)
    x = rng.standard_normal((1200, 2))
    y = (np.linalg.norm(x, axis=1) > 1.2).astype(int)
    scores = probe_codes(x[:800], y[:800], x[800:], y[800:], nearest_neighbour=False)
    assert set(scores) == {"svm_rbf_accuracy", "linear_accuracy"}
    assert scores["svm_rbf_accuracy"] > 0.95
    assert scores["linear_accuracy"] < 0.8


def test_train_subset_is_seeded_sorted_and_capped():
    a, b = train_subset(1000, 100, 3), train_subset(1000, 100, 3)
    assert np.array_equal(a, b) and len(np.unique(a)) == 100 and np.all(np.diff(a) > 0)
    assert not np.array_equal(a, train_subset(1000, 100, 4))
    assert np.array_equal(train_subset(50, 100, 0), np.arange(50))


def test_encode_is_batch_size_independent_and_uses_eval_mode():
    torch.manual_seed(0)
    enc = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 8), torch.nn.BatchNorm1d(8), torch.nn.Linear(8, 3))
    images = np.random.default_rng(0).integers(0, 256, (10, 4, 4, 1), dtype=np.uint8)
    one = encode(enc, images, batch_size=1, device=torch.device("cpu"))  # BatchNorm in train mode would fail at B=1
    many = encode(enc, images, batch_size=10, device=torch.device("cpu"))
    assert one.shape == (10, 3) and one.dtype == np.float64
    np.testing.assert_allclose(one, many, rtol=1e-6, atol=1e-6)
