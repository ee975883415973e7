"""Inception-v3 pool3 plumbing (`ganlab.inception`) against pytorch-fid's own `InceptionV3`.

The real weights are not on this machine. Every network test uses a randomly initialised state dict saved
as `TEST-WEIGHTS-random-init.pth`, with the hash check pointed at that file: the features are meaningless,
only the plumbing (input conversion, resize, normalisation, architecture, loading) is under test. Inception
at 299x299 on a CPU is slow, so the images are few and tiny.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import pytorch_fid.inception as fid_inception
import torch
import torch.nn.functional as F
from fixtures_data import FileServer, refused_url
from PIL import Image
from torchvision.transforms.functional import to_tensor

from ganlab.data.download import recorded_sha256
from ganlab.inception import (
    FEATURE_SPACE,
    FID_WEIGHTS_NAME,
    FID_WEIGHTS_SHA256_PREFIX,
    FIDInceptionPool3,
    InceptionUnavailable,
    default_weights_path,
    embed_inception,
    fetch_weights,
    load_inception,
    to_inception_input,
    unavailable,
    verify_weights,
)


@pytest.fixture(scope="module")
def test_weights(tmp_path_factory):
    """(path, full sha256) of a random-init FID Inception state dict: TEST weights, never real ones."""
    torch.manual_seed(0)
    state_dict = FIDInceptionPool3().inception.state_dict()
    path = tmp_path_factory.mktemp("weights") / "TEST-WEIGHTS-random-init.pth"
    torch.save(state_dict, path)
    return path, hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def model(test_weights):
    path, digest = test_weights
    return load_inception(verify_weights(path, sha256_prefix=digest[:8]), torch.device("cpu"))


def _images(n: int, size: int, channels: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, size, size, channels), dtype=np.uint8)


# ----------------------------------------------------------------------------------------------------
# Input conversion


def test_input_is_scaled_to_unit_interval_and_grayscale_is_replicated():
    images = np.array([0, 51, 255], np.uint8).reshape(1, 1, 3, 1)
    x = to_inception_input(images)
    assert x.shape == (1, 3, 1, 3) and x.dtype == torch.float32
    for c in range(3):
        torch.testing.assert_close(x[0, c, 0], torch.tensor([0.0, 0.2, 1.0]))


def test_input_matches_pil_convert_rgb_and_to_tensor_like_pytorch_fid_cli():
    # independent reference: what pytorch-fid's CLI does to a PNG (PIL .convert("RGB") + ToTensor)
    for channels, mode in ((1, "L"), (3, "RGB")):
        images = _images(2, 7, channels)
        expected = torch.stack(
            [to_tensor(Image.fromarray(im.squeeze(-1) if channels == 1 else im, mode).convert("RGB")) for im in images]
        )
        torch.testing.assert_close(to_inception_input(images), expected, rtol=0, atol=1e-7)


@pytest.mark.parametrize(
    "bad", [np.zeros((1, 8, 8, 3), np.float32), np.zeros((8, 8, 3), np.uint8), np.zeros((1, 8, 8, 2), np.uint8)]
)
def test_input_rejects_non_uint8_or_wrong_layout(bad):
    with pytest.raises(ValueError, match="uint8"):
        to_inception_input(bad)


def test_network_sees_299_bilinear_resize_in_minus_one_to_one(model):
    images = _images(2, 28, 1)
    seen = {}

    def keep_input(module, inputs, output) -> None:  # returning None leaves the output alone
        seen["x"] = inputs[0].clone()

    hook = model.blocks[0].register_forward_hook(keep_input)
    try:
        embed_inception(model, images, device=torch.device("cpu"))
    finally:
        hook.remove()
    x01 = torch.as_tensor(images).permute(0, 3, 1, 2).float().div(255).repeat(1, 3, 1, 1)
    expected = 2 * F.interpolate(x01, size=(299, 299), mode="bilinear", align_corners=False) - 1
    assert seen["x"].shape == (2, 3, 299, 299)
    torch.testing.assert_close(seen["x"], expected)
    assert seen["x"].min() >= -1 and seen["x"].max() <= 1 and seen["x"].min() < -0.9  # not left in [0, 1]


# ----------------------------------------------------------------------------------------------------
# Against pytorch-fid's own network


def test_pool3_equals_pytorch_fid_inceptionv3_with_the_same_weights(model, test_weights, monkeypatch):
    path, _ = test_weights
    # pytorch-fid's own construction; its URL loader is redirected to the local test file (no network)
    monkeypatch.setattr(fid_inception, "load_state_dict_from_url", lambda *a, **k: torch.load(path, weights_only=True))
    reference = fid_inception.InceptionV3([3], resize_input=True, normalize_input=True, use_fid_inception=True).eval()
    for size, channels in ((28, 1), (32, 3)):
        images = _images(3, size, channels, seed=size)
        ours = embed_inception(model, images, device=torch.device("cpu"), batch_size=2)
        with torch.no_grad():
            theirs = reference(to_tensor_batch(images))[0].squeeze(3).squeeze(2).numpy()
        assert ours.shape == (3, 2048) and ours.dtype == np.float32
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
        assert np.abs(ours).max() > 0  # not all zero: the comparison is not vacuous
        assert not np.allclose(ours[0], ours[1])  # different images, different features


def to_tensor_batch(images: np.ndarray) -> torch.Tensor:
    """pytorch-fid's CLI input: each image through PIL .convert("RGB") and ToTensor."""
    pil = [Image.fromarray(im.squeeze(-1) if im.shape[-1] == 1 else im).convert("RGB") for im in images]
    return torch.stack([to_tensor(p) for p in pil])


def test_weights_for_another_architecture_are_refused(tmp_path):
    path = tmp_path / "TEST-WEIGHTS-wrong-arch.pth"
    torch.save({"conv.weight": torch.zeros(1)}, path)
    weights = verify_weights(path, sha256_prefix=hashlib.sha256(path.read_bytes()).hexdigest()[:8])
    with pytest.raises(RuntimeError, match="state_dict"):
        load_inception(weights, torch.device("cpu"))


# ----------------------------------------------------------------------------------------------------
# Finding and verifying the weights: the "unavailable" path


def test_default_path_follows_torch_home(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # an earlier set_dir() would win over TORCH_HOME
    assert default_weights_path() == tmp_path / "hub" / "checkpoints" / FID_WEIGHTS_NAME
    assert FID_WEIGHTS_NAME.endswith(f"-{FID_WEIGHTS_SHA256_PREFIX}.pth")


def test_missing_weights_are_unavailable_with_the_path_and_the_url(tmp_path):
    with pytest.raises(InceptionUnavailable) as err:
        verify_weights(tmp_path / FID_WEIGHTS_NAME)
    assert str(tmp_path / FID_WEIGHTS_NAME) in err.value.reason and "https://github.com/mseitzer" in err.value.reason
    assert unavailable(err.value.reason).startswith("unavailable: no Inception weights at ")


def test_wrong_hash_is_unavailable_naming_both(test_weights):
    path, digest = test_weights
    # the production prefix: the random test weights must never pass for the real ones
    assert not digest.startswith(FID_WEIGHTS_SHA256_PREFIX)
    with pytest.raises(InceptionUnavailable, match=f"sha256 {digest} does not start with .*{FID_WEIGHTS_SHA256_PREFIX}"):
        verify_weights(path)
    good = verify_weights(path, sha256_prefix=digest[:8])
    assert good.sha256 == digest and good.size_bytes == path.stat().st_size


def test_a_digest_other_than_the_recorded_one_is_refused(tmp_path):
    path = tmp_path / "w.pth"
    path.write_bytes(b"first")
    checksums = tmp_path / "acquired_checksums.json"
    digest = hashlib.sha256(b"first").hexdigest()
    fetch_weights(path, urls=(), sha256_prefix=digest[:8], checksums_path=checksums)  # reuses, records
    assert recorded_sha256(checksums, FID_WEIGHTS_NAME) == digest
    path.write_bytes(b"other")
    with pytest.raises(InceptionUnavailable, match="recorded on first acquisition"):
        verify_weights(path, sha256_prefix="", checksums_path=checksums)


# ----------------------------------------------------------------------------------------------------
# Fetching (local HTTP server)

PAYLOAD = bytes(range(256)) * 300


def test_fetch_downloads_verifies_the_prefix_and_records_the_full_hash(tmp_path):
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    checksums = tmp_path / "acquired_checksums.json"
    with FileServer() as server:
        server.files["/w.pth"] = PAYLOAD
        got = fetch_weights(
            tmp_path / "hub" / FID_WEIGHTS_NAME, urls=(server.url("/w.pth"),), sha256_prefix=digest[:8],
            checksums_path=checksums, timeout_s=5.0,
        )
        again = fetch_weights(got.path, urls=(server.url("/w.pth"),), sha256_prefix=digest[:8], checksums_path=checksums)
        assert len(server.requests) == 1  # the verified file is reused
    assert got.sha256 == digest == again.sha256 and got.path.read_bytes() == PAYLOAD
    assert recorded_sha256(checksums, FID_WEIGHTS_NAME) == digest


def test_fetch_of_wrong_bytes_deletes_them_and_is_unavailable(tmp_path):
    dest = tmp_path / FID_WEIGHTS_NAME
    with FileServer() as server:
        server.files["/w.pth"] = PAYLOAD
        with pytest.raises(InceptionUnavailable, match="does not start with the expected prefix 00000000"):
            fetch_weights(dest, urls=(server.url("/w.pth"),), sha256_prefix="00000000", timeout_s=5.0)
    assert not dest.exists()


def test_fetch_offline_is_unavailable_with_the_error(tmp_path):
    with pytest.raises(InceptionUnavailable, match="could not download the Inception weights"):
        fetch_weights(tmp_path / FID_WEIGHTS_NAME, urls=(refused_url(),), timeout_s=2.0, retries=1)


def test_feature_space_name_says_what_it_is():
    assert "inception" in FEATURE_SPACE and "pool3" in FEATURE_SPACE and "2048" in FEATURE_SPACE


def test_the_weights_url_is_pytorch_fids():
    import pytorch_fid.inception

    from ganlab.inception import FID_WEIGHTS_URL

    assert FID_WEIGHTS_URL == pytorch_fid.inception.FID_WEIGHTS_URL
