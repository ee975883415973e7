"""The standard FID feature space: Inception-v3 pool3 (2048-D) exactly as pytorch-fid computes it
(catalogue §A8; mseitzer/pytorch-fid 0.3.0, Apache-2.0).

Weights. pytorch-fid's port of the TF FID graph, `pt_inception-2015-12-05-6726825d.pth`, is looked up at an
explicit path (params `evaluate.inception_weights`) or in the torch hub cache,
`$TORCH_HOME/hub/checkpoints/` (TORCH_HOME defaults to `~/.cache/torch`), and fetched from the
pytorch-fid release (`FID_WEIGHTS_URL`) when online. Nothing here downloads implicitly: pytorch-fid's own
`fid_inception_v3()` calls `load_state_dict_from_url`, so the network is assembled here from
pytorch-fid's own classes and loaded with `torch.load(weights_only=True)`.

Verification, honestly stated: no full checksum of the file is published. The torch hub name carries the
first 8 hex digits of its sha256 (`6726825d`); that prefix is what can be checked against a published
value. The full sha256 is computed, written into every metrics file that uses the weights, and recorded
on first acquisition in `data/acquired_checksums.json` (like the datasets without published hashes), so a
later, different file is refused even if its prefix matched.

When the weights are absent or fail verification, callers record the Inception metrics as the string
`"unavailable: <reason>"`: never a number computed from other weights.

Input convention (pytorch-fid's CLI: PIL `.convert("RGB")` + `ToTensor()`): uint8 (N, H, W, C) ->
float32 (N, 3, H, W) in [0, 1], grayscale replicated to 3 channels; inside the network: bilinear resize
to 299x299 (align_corners=False) and 2x - 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ganlab.data.download import ChecksumMismatch, DownloadError, download, hash_file, record_sha256, recorded_sha256

FID_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"  # the file name torch hub caches it under
# pytorch_fid.inception.FID_WEIGHTS_URL (tests/test_inception.py checks they agree); pytorch_fid itself is imported
# only to build the network: it pulls in torchvision (~1 s), which a stage without the weights does not need.
FID_WEIGHTS_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{FID_WEIGHTS_NAME}"
FID_WEIGHTS_SHA256_PREFIX = "6726825d"  # torch hub convention: first 8 hex digits of the file's sha256
FEATURE_SPACE = "inception-v3-pool3-2048-pytorch-fid"  # its name in every metrics file
POOL3_DIM = 2048
INPUT_SIZE = 299

__all__ = [
    "FEATURE_SPACE",
    "FID_WEIGHTS_NAME",
    "FID_WEIGHTS_SHA256_PREFIX",
    "FID_WEIGHTS_URL",
    "FIDInceptionPool3",
    "InceptionUnavailable",
    "InceptionWeights",
    "default_weights_path",
    "embed_inception",
    "fetch_weights",
    "load_inception",
    "record_weights",
    "to_inception_input",
    "unavailable",
    "verify_weights",
    "weights_from_record",
    "weights_record",
]


class InceptionUnavailable(RuntimeError):
    """The Inception weights cannot be used; `reason` says why and what to do."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


def unavailable(reason: str) -> str:
    """The value recorded in place of an Inception metric that could not be computed."""
    return f"unavailable: {reason}"


@dataclass(frozen=True)
class InceptionWeights:
    """A verified weights file: its path, its full sha256 (hex) and size in bytes."""

    path: Path
    sha256: str
    size_bytes: int


# ----------------------------------------------------------------------------------------------------
# Finding, verifying and fetching the weights


def default_weights_path() -> Path:
    """Where torch hub (and pytorch-fid) cache the file: `<torch.hub.get_dir()>/checkpoints/<name>`,
    i.e. `$TORCH_HOME/hub/checkpoints/...` (TORCH_HOME defaults to `$XDG_CACHE_HOME/torch`, `~/.cache/torch`)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / FID_WEIGHTS_NAME


def verify_weights(
    path: str | Path,
    *,
    sha256_prefix: str = FID_WEIGHTS_SHA256_PREFIX,
    checksums_path: Path | None = None,
) -> InceptionWeights:
    """Hash the file at `path` and check that its sha256 starts with `sha256_prefix` and, when
    `checksums_path` holds a recorded digest for `FID_WEIGHTS_NAME`, equals it. Raises InceptionUnavailable
    (missing file, wrong prefix, a digest other than the recorded one)."""
    path = Path(path)
    if not path.is_file():
        raise InceptionUnavailable(
            f"no Inception weights at {path}; place {FID_WEIGHTS_NAME} there (from {FID_WEIGHTS_URL}) "
            "or set evaluate.inception_weights"
        )
    hashes = hash_file(path)
    if not hashes["sha256"].startswith(sha256_prefix.lower()):
        raise InceptionUnavailable(
            f"{path}: sha256 {hashes['sha256']} does not start with the expected prefix {sha256_prefix}; "
            "not the pytorch-fid Inception weights (corrupted or partial download? delete it and fetch again)"
        )
    recorded = recorded_sha256(checksums_path, FID_WEIGHTS_NAME) if checksums_path is not None else None
    if recorded is not None and recorded != hashes["sha256"]:
        raise InceptionUnavailable(
            f"{path}: sha256 {hashes['sha256']} differs from the one recorded on first acquisition "
            f"({recorded}, in {checksums_path})"
        )
    return InceptionWeights(path, hashes["sha256"], hashes["size_bytes"])


def fetch_weights(
    dest: str | Path | None = None,
    *,
    urls: tuple[str, ...] = (FID_WEIGHTS_URL,),
    sha256_prefix: str = FID_WEIGHTS_SHA256_PREFIX,
    checksums_path: Path | None = None,
    timeout_s: float = 30.0,
    retries: int = 3,
) -> InceptionWeights:
    """A verified weights file at `dest` (default `default_weights_path()`): reused when present and valid,
    else downloaded (resumable, via `ganlab.data.download.download`). A download whose sha256 lacks the
    prefix is deleted. The full sha256 is recorded in `checksums_path` (if given) on first acquisition.
    Raises InceptionUnavailable with the download errors when no URL works."""
    dest = Path(dest) if dest is not None else default_weights_path()
    if dest.is_file():
        try:
            weights = verify_weights(dest, sha256_prefix=sha256_prefix, checksums_path=checksums_path)
        except InceptionUnavailable:
            dest.unlink()  # a wrong or partial file: fetch it again (pytorch-fid#99)
        else:
            record_weights(weights, checksums_path, source="cache")
            return weights
    try:
        # no full hash is published: `download` checks none, the prefix is checked right after
        result = download(urls, dest, timeout_s=timeout_s, retries=retries)
    except DownloadError as exc:
        raise InceptionUnavailable(f"could not download the Inception weights: {exc}") from None
    try:
        weights = verify_weights(dest, sha256_prefix=sha256_prefix, checksums_path=checksums_path)
    except InceptionUnavailable:
        dest.unlink(missing_ok=True)
        raise
    record_weights(weights, checksums_path, source=result["url"])
    return weights


def record_weights(weights: InceptionWeights, checksums_path: Path | None, *, source: str) -> None:
    """Record the full sha256 on first acquisition (no-op if `checksums_path` is None); InceptionUnavailable
    if a different digest is already recorded."""
    if checksums_path is None:
        return
    try:
        record_sha256(checksums_path, FID_WEIGHTS_NAME, weights.sha256, weights.size_bytes, source)
    except ChecksumMismatch as exc:
        raise InceptionUnavailable(str(exc)) from None


def weights_record(weights: InceptionWeights | None, reason: str | None = None) -> dict:
    """What `fetch_inception` writes (data/inception/weights.json) and later stages read: the verified
    file's path and full sha256, or why there is none."""
    if weights is None:
        return {"available": False, "reason": reason, "feature_space": FEATURE_SPACE, "url": FID_WEIGHTS_URL}
    return {
        "available": True,
        "path": str(weights.path),
        "sha256": weights.sha256,
        "size_bytes": weights.size_bytes,
        # only the prefix is published (the torch hub file name); the full hash is recorded on first use
        "verification": f"sha256 prefix {FID_WEIGHTS_SHA256_PREFIX} (torch hub name); full sha256 recorded",
        "feature_space": FEATURE_SPACE,
        "url": FID_WEIGHTS_URL,
    }


def weights_from_record(record: dict, *, sha256_prefix: str = FID_WEIGHTS_SHA256_PREFIX) -> InceptionWeights:
    """Re-verify the file a `weights_record` names: same prefix check, and the same full sha256 as when it
    was recorded. Raises InceptionUnavailable (with the record's reason when it has no weights)."""
    if not record.get("available"):
        raise InceptionUnavailable(record.get("reason") or "no Inception weights recorded")
    weights = verify_weights(record["path"], sha256_prefix=sha256_prefix)
    if weights.sha256 != record["sha256"]:
        raise InceptionUnavailable(
            f"{weights.path}: sha256 {weights.sha256} changed since it was recorded ({record['sha256']}); "
            "run `dvc repro fetch_inception` again"
        )
    return weights


# ----------------------------------------------------------------------------------------------------
# The network


class FIDInceptionPool3(nn.Module):
    """pytorch-fid's `InceptionV3([3], resize_input=True, normalize_input=True, use_fid_inception=True)`,
    assembled without a download: float (B, 3, H, W) in [0, 1] -> (B, 2048) pool3 features.

    Same construction as `pytorch_fid.inception.fid_inception_v3` (torchvision Inception3 with 1008 classes,
    no aux logits, no init, patched with FIDInceptionA/C/E_1/E_2: TF-style pooling); the weights are loaded
    into the whole Inception3 (strict, so a file for another architecture is refused) and the forward pass
    runs pytorch-fid's blocks 0-3.
    """

    def __init__(self) -> None:
        super().__init__()
        from pytorch_fid.inception import FIDInceptionA, FIDInceptionC, FIDInceptionE_1, FIDInceptionE_2, _inception_v3

        inception = _inception_v3(num_classes=1008, aux_logits=False, weights=None)
        inception.Mixed_5b = FIDInceptionA(192, pool_features=32)
        inception.Mixed_5c = FIDInceptionA(256, pool_features=64)
        inception.Mixed_5d = FIDInceptionA(288, pool_features=64)
        inception.Mixed_6b = FIDInceptionC(768, channels_7x7=128)
        inception.Mixed_6c = FIDInceptionC(768, channels_7x7=160)
        inception.Mixed_6d = FIDInceptionC(768, channels_7x7=160)
        inception.Mixed_6e = FIDInceptionC(768, channels_7x7=192)
        inception.Mixed_7b = FIDInceptionE_1(1280)
        inception.Mixed_7c = FIDInceptionE_2(2048)
        self.inception = inception
        # pytorch-fid's blocks 0..3, in order (its InceptionV3.__init__)
        self.blocks = nn.Sequential(
            inception.Conv2d_1a_3x3,
            inception.Conv2d_2a_3x3,
            inception.Conv2d_2b_3x3,
            nn.MaxPool2d(kernel_size=3, stride=2),  # (B, 64, 73, 73)
            inception.Conv2d_3b_1x1,
            inception.Conv2d_4a_3x3,
            nn.MaxPool2d(kernel_size=3, stride=2),  # (B, 192, 35, 35)
            inception.Mixed_5b,
            inception.Mixed_5c,
            inception.Mixed_5d,
            inception.Mixed_6a,
            inception.Mixed_6b,
            inception.Mixed_6c,
            inception.Mixed_6d,
            inception.Mixed_6e,  # (B, 768, 17, 17)
            inception.Mixed_7a,
            inception.Mixed_7b,
            inception.Mixed_7c,  # (B, 2048, 8, 8)
            nn.AdaptiveAvgPool2d(output_size=(1, 1)),  # (B, 2048, 1, 1): pool3
        )
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(f"expected (B, 3, H, W) images in [0, 1], got shape {tuple(x.shape)}")
        x = F.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False)
        x = 2 * x - 1  # [0, 1] -> [-1, 1], what the TF graph expects
        return self.blocks(x).flatten(1)  # (B, 2048)


def load_inception(weights: InceptionWeights, device: torch.device) -> FIDInceptionPool3:
    """The network with `weights` loaded (eval mode, no grad). Re-hashes nothing: pass the result of
    `verify_weights`/`fetch_weights`."""
    model = FIDInceptionPool3()
    state_dict = torch.load(weights.path, map_location="cpu", weights_only=True)
    model.inception.load_state_dict(state_dict)  # strict: every key of the TF port, nothing else
    return model.to(device).eval()


def to_inception_input(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W, C), C in {1, 3} -> float32 (N, 3, H, W) in [0, 1]: x / 255, grayscale replicated to
    3 channels (what PIL `.convert("RGB")` + `ToTensor()` give pytorch-fid's CLI)."""
    images = torch.as_tensor(images)
    if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[3] not in (1, 3):
        raise ValueError(f"expected uint8 (N, H, W, 1 or 3) images, got {images.dtype} {tuple(images.shape)}")
    x = images.permute(0, 3, 1, 2).float() / 255.0
    return x.expand(-1, 3, -1, -1).contiguous() if x.shape[1] == 1 else x


@torch.no_grad()
def embed_inception(
    model: FIDInceptionPool3, images: np.ndarray, *, device: torch.device, batch_size: int = 50
) -> np.ndarray:
    """uint8 (N, H, W, C) -> float32 (N, 2048) pool3 features. Batches are independent (eval mode), so the
    result does not depend on `batch_size` beyond float rounding."""
    model.eval()
    out = [
        model(to_inception_input(images[i : i + batch_size]).to(device)).cpu().numpy()
        for i in range(0, len(images), batch_size)
    ]
    if not out:
        return np.zeros((0, POOL3_DIM), np.float32)
    return np.concatenate(out).astype(np.float32)


@dataclass(frozen=True)
class InceptionSpace:
    """Inception-v3 pool3 (2048-D) with verified weights; `weights_sha256` is the weights *file's* sha256."""

    model: FIDInceptionPool3
    weights: InceptionWeights
    batch_size: int = 50
    name: str = FEATURE_SPACE

    @property
    def weights_sha256(self) -> str:
        return self.weights.sha256

    def embed(self, images: np.ndarray, *, device: torch.device) -> np.ndarray:
        return embed_inception(self.model, images, device=device, batch_size=self.batch_size)


def load_inception_space(
    record: dict, *, device: torch.device, sha256_prefix: str = FID_WEIGHTS_SHA256_PREFIX
) -> InceptionSpace:
    """The Inception space from a `weights_record` (the fetch_inception stage's output),
    its file re-verified. Raises `InceptionUnavailable` with the reason."""
    weights = weights_from_record(record, sha256_prefix=sha256_prefix)
    return InceptionSpace(load_inception(weights, device), weights)
