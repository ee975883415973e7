"""Pictures of what a trained GAN learned, beyond its samples (report 002): BiGAN reconstructions x vs G(E(x))
and class interpolations of a conditional generator. Pure functions of the networks and their inputs; the
stages save the returned uint8 images with `ganlab.images.save_grid`.

- `reconstructions(E, G, x)`: real test images above their reconstructions G(E(x)) (Donahue et al. 2017,
  Fig. 3). E(x) lives in the space of the code z that D sees next to G(z) (`ganlab.train`: D scores (x, E(x))
  against (G(z), z) with z = prior(ε)), so G is the raw generator fed E(x) directly, without the prior's
  transform (e.g. the uniform prior's 2Φ(ε) − 1, which maps ε to z; E(x) is already a z).
- `class_interpolation(G, ...)`: rows of pairs of classes a -> b, columns the conditioning vector moved
  linearly from v(a) to v(b) (the one-hot vector, or report 002's learned 3-d cWGAN embedding), one fixed
  latent per row from an integer seed (Mirza & Osindero 2014; report 002: "interpolation between classes").
  The networks take integer labels only; the generator's own `LabelVector` is made to return the
  interpolated vectors by a forward hook for the duration of the call, so the generator's forward runs as
  is (no copy of its layers here, no change to `ganlab.nets`).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ganlab.data.arrays import to_model, to_uint8
from ganlab.nets.layers import LabelVector
from ganlab.samplers.latent import seeded_normal
from ganlab.sampling import evaluation_seeds

if TYPE_CHECKING:  # type only: importing ganlab.modules here would make every user depend on the networks
    from ganlab.modules import LatentGenerator

RECON_IMAGES = 32  # the first 32 test images: 8 grid rows of 8 (real, reconstruction, real, ...)
RECON_PER_ROW = 8
INTERPOLATION_STEPS = 10  # columns of an interpolation row, endpoints included (t = 0, 1/9, ..., 1)


@torch.no_grad()
def reconstructions(encoder: nn.Module, generator: nn.Module, images: np.ndarray, device: torch.device,
                    *, per_row: int = RECON_PER_ROW) -> np.ndarray:
    """Real images interleaved with their reconstructions, ready for `save_grid(out, path, nrow=per_row)`.

    images: uint8 (N, H, W, C), N >= 1 (the caller picks them, e.g. the first N of the test split). Returns
    uint8 (2·R·per_row, H, W, C), R = ceil(N / per_row): grid rows alternate `per_row` real images x and, below
    them, G(E(x)) in the same order; the real rows are `images` unchanged; a short last pair of rows is
    completed with black (zero) images. E and G are put in eval mode (BatchNorm uses its
    running statistics, so a reconstruction does not depend on the other images) and left so. G is the raw
    generator (`GANModules.generator`: z (B, nz) -> (B, C, H, W) in [-1, 1]), called without a label, as for
    every unconditional BiGAN of the catalogue; a conditional G raises its own "pass a label" error.
    Deterministic: no randomness is drawn.
    """
    images = np.asarray(images)
    n, shape = len(images), images.shape[1:]
    if n == 0 or per_row < 1:
        raise ValueError(f"reconstructions: need at least one image and one per row, got {n} and {per_row}")
    encoder.eval()
    generator.eval()
    codes = encoder(to_model(images).to(device))  # (N, nz): a point of the prior's z space
    recon = to_uint8(generator(codes)).cpu().numpy()  # (N, H, W, C)
    rows = -(-n // per_row)
    blank = np.zeros((rows * per_row - n, *shape), dtype=np.uint8)
    rows_real = np.concatenate([images, blank]).reshape(rows, per_row, *shape)
    rows_recon = np.concatenate([recon, blank]).reshape(rows, per_row, *shape)
    return np.stack([rows_real, rows_recon], axis=1).reshape(2 * rows * per_row, *shape)  # real row, its recon row


def label_vector_of(net: nn.Module) -> LabelVector | None:
    """The conditional generator's `LabelVector` (the y -> one-hot / embedding map), None when `net` has none.
    Raises ValueError when `net` holds more than one (which one to interpolate would be ambiguous)."""
    found = [m for m in net.modules() if isinstance(m, LabelVector)]
    if len(found) > 1:
        raise ValueError(f"the generator has {len(found)} label maps; class interpolation needs exactly one")
    return found[0] if found else None


def cyclic_pairs(num_classes: int) -> list[tuple[int, int]]:
    """(0, 1), (1, 2), ..., (C-1, 0): every class starts one row and ends another."""
    return [(a, (a + 1) % num_classes) for a in range(num_classes)]


def check_interpolable(generator: LatentGenerator) -> LabelVector:
    """The generator's `LabelVector`, or ValueError saying why `class_interpolation` cannot run on it: no label
    map (an unconditional G), or a prior whose z depends on the class (e.g. a supervised mixture: moving the
    label alone would keep class a's latent), checked by mapping one ε with every class."""
    label = label_vector_of(generator.net)
    if label is None:
        raise ValueError("the generator is not class-conditional (no label map): nothing to interpolate")
    prior, device = generator.prior, next(generator.net.parameters()).device
    classes = torch.arange(label.num_classes, device=device)
    eps = torch.ones(label.num_classes, generator.nz, device=device)
    with torch.no_grad():
        z = prior(eps, classes)  # (C, nz)
    if not torch.equal(z, z[:1].expand_as(z)):
        raise ValueError(f"the latent of prior {type(prior).__name__} depends on the class; class interpolation "
                         "moves the label vector only and needs z = prior(ε) for every class (class_normal)")
    return label


@contextlib.contextmanager
def _conditioning_vectors(label: LabelVector, vectors: torch.Tensor) -> Iterator[None]:
    """While active, `label` returns `vectors` (B, dim) whatever integer labels it is given: a forward hook that
    returns a value replaces the module's output (torch.nn.Module.register_forward_hook)."""

    def replace(module: nn.Module, inputs, output: torch.Tensor) -> torch.Tensor:
        if output.shape != vectors.shape:
            raise ValueError(f"conditioning vectors {tuple(vectors.shape)} do not match the label map's output "
                             f"{tuple(output.shape)}")
        return vectors.to(output.dtype)

    handle = label.register_forward_hook(replace)
    try:
        yield
    finally:
        handle.remove()


@torch.no_grad()
def class_interpolation(generator: LatentGenerator, *, steps: int = INTERPOLATION_STEPS, seed: int,
                        device: torch.device, pairs: Sequence[tuple[int, int]] | None = None) -> np.ndarray:
    """Images of a class-conditional generator along straight lines between class conditioning vectors.

    generator: what `ganlab.modules.load_sampler` returns (ε [+ k] -> G(prior(ε, k), y)) whose
    net holds one `LabelVector` (DCGAN `conditional: true`; one-hot or a learned `label_embedding`). Row r is
    the pair (a, b) = pairs[r] (default `cyclic_pairs(C)`); column j is G(z_r, v) with
    v = (1 - t_j)·v(a) + t_j·v(b), t_j = j / (steps - 1), v(·) the generator's own label vector, so column 0 is
    the sample of class a and the last column the sample of class b with the same latent. Raises ValueError
    for a generator `check_interpolable` refuses, steps < 2 or a class outside 0..C-1.

    Randomness: row r's ε is `seeded_normal` of evaluation seed r under `seed` (`ganlab.sampling`:
    seed·10⁶ + r), i.e. the latent of evaluation sample r; nothing else is random (G in eval mode), so the
    same seed gives the same images.

    Returns uint8 (len(pairs)·steps, H, W, C), row-major: `save_grid(out, path, nrow=steps)`.
    """
    label = check_interpolable(generator)
    if steps < 2:
        raise ValueError(f"steps: {steps}; an interpolation needs at least 2 (its two endpoints)")
    pairs = list(pairs) if pairs is not None else cyclic_pairs(label.num_classes)
    for a, b in pairs:
        if not (0 <= a < label.num_classes and 0 <= b < label.num_classes):
            raise ValueError(f"pairs: ({a}, {b}) is outside the generator's classes 0..{label.num_classes - 1}")
    generator.eval()
    rows = len(pairs)
    eps = seeded_normal(evaluation_seeds(rows, seed).tolist(), (generator.nz,), device)  # (R, nz)
    k_a = torch.tensor([a for a, _ in pairs], device=device)  # (R,)
    k_b = torch.tensor([b for _, b in pairs], device=device)
    t = torch.linspace(0.0, 1.0, steps, device=device)[None, :, None]  # (1, S, 1); t_0 = 0 and t_S-1 = 1 exactly
    v_a, v_b = label(k_a)[:, None, :], label(k_b)[:, None, :]  # (R, 1, dim)
    vectors = ((1 - t) * v_a + t * v_b).reshape(rows * steps, -1)  # (R·S, dim): exactly v(a), v(b) at the ends
    eps_grid = eps.repeat_interleave(steps, dim=0)  # (R·S, nz): one latent per row
    with _conditioning_vectors(label, vectors):
        images = generator(eps_grid, k_a.repeat_interleave(steps))  # the labels only size the hooked output
    return to_uint8(images).cpu().numpy()
