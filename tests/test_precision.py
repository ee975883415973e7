"""The `precision` knob: auto picks bf16 autocast exactly where the hardware runs bf16 matrix products."""

from __future__ import annotations

import pytest
import torch

from ganlab.runtime import bf16_native, resolve_precision
from ganlab.schema import ConfigError

CPU = torch.device("cpu")
AVX512 = "fpu vme sse sse2 avx avx2 avx512f avx512bw avx512vl"


def _cpuinfo(tmp_path, flags: str):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: test\nflags\t\t: {flags}\n\nprocessor\t: 1\nflags\t\t: {flags}\n")
    return path


@pytest.mark.parametrize("flags, native", [
    (AVX512 + " avx512_bf16", True),  # AMD Zen 4, Intel Cooper Lake
    (AVX512 + " amx_bf16 amx_tile", True),  # Intel Sapphire Rapids
    (AVX512, False),  # AVX-512 without bf16 (Skylake-X): bf16 would be emulated, slower than fp32
    ("fpu sse2 avx2 fma", False),
])
def test_auto_is_bf16_exactly_where_the_cpu_has_bf16_matrix_products(tmp_path, flags, native):
    info = _cpuinfo(tmp_path, flags)
    assert bf16_native(CPU, info) is native
    assert resolve_precision("auto", CPU, info) == ("bf16" if native else "fp32")
    for forced in ("bf16", "fp32"):  # an explicit choice is kept whatever the hardware
        assert resolve_precision(forced, CPU, info) == forced


def test_an_unreadable_cpuinfo_means_fp32(tmp_path):
    assert resolve_precision("auto", CPU, tmp_path / "missing") == "fp32"


def test_an_unknown_precision_names_the_allowed_values():
    with pytest.raises(ConfigError, match=r"precision: 'fp16'; allowed: auto, bf16, fp32"):
        resolve_precision("fp16", CPU)
