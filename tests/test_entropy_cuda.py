"""CUDA side of the entropy layer: a compile-only nvcc check and runtime parity tests.

* ``nvcc``: compiles ``csrc/entropy_cuda.cu`` (compile-only) against the installed torch's
  headers when ``nvcc`` is on PATH; works with a CPU-only torch wheel. ~20-80 s.
* ``cuda``: CUDA kernels == CPU kernels on random inputs; skipped without a GPU or without the
  extension's CUDA kernels.
"""

from __future__ import annotations

import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest
import torch

from mint_rl._ext import has_cuda_kernels, load_extension
from mint_rl.entropy import local_entropy, local_entropy_torch

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.nvcc
def test_cuda_source_compiles(tmp_path):
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        pytest.skip("nvcc not on PATH")
    from torch.utils.cpp_extension import include_paths

    abi = int(torch._C._GLIBCXX_USE_CXX11_ABI)
    cmd = [
        nvcc,
        "-c",
        str(REPO / "csrc" / "entropy_cuda.cu"),
        "-o",
        str(tmp_path / "entropy_cuda.o"),
        *[f"-I{p}" for p in include_paths()],
        f"-I{sysconfig.get_paths()['include']}",
        f"-I{REPO / 'csrc'}",
        "-std=c++20",  # what torch.utils.cpp_extension passes for this torch
        "-gencode",
        "arch=compute_90,code=sm_90",
        "-DMINT_WITH_CUDA",
        f"-D_GLIBCXX_USE_CXX11_ABI={abi}",
        "--expt-relaxed-constexpr",
        "-O3",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"nvcc failed:\n{' '.join(cmd)}\n{proc.stderr[-4000:]}"
    assert (tmp_path / "entropy_cuda.o").stat().st_size > 0


def _need_cuda():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA GPU")
    if load_extension(warn=False) is None or not has_cuda_kernels():
        pytest.skip("mint_rl._C built without CUDA kernels")


@pytest.mark.cuda
@pytest.mark.parametrize("region", [1, 3, 5, 11])
@pytest.mark.parametrize("pre", [True, False])
def test_cuda_hard_equals_cpu(region, pre):
    _need_cuda()
    g = torch.Generator().manual_seed(region)
    frames = torch.randint(0, 256, (3, 3, 37, 41), generator=g, dtype=torch.uint8)
    frames[1] //= 40  # repeated values
    cpu = local_entropy(frames, region_size=region, preprocess=pre)
    gpu = local_entropy(frames.cuda(), region_size=region, preprocess=pre)
    assert gpu.is_cuda and gpu.shape == cpu.shape
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=0, atol=1e-5)
    # the pure-torch fallback sums the histogram terms in another order on the GPU: 1e-5 relative
    torch.testing.assert_close(local_entropy_torch(frames.cuda(), region_size=region, preprocess=pre).cpu(),
                               cpu, rtol=1e-5, atol=1e-5)


@pytest.mark.cuda
@pytest.mark.parametrize("bandwidth", [1e-3, 0.5, 4.0])
def test_cuda_soft_equals_cpu(bandwidth):
    _need_cuda()
    g = torch.Generator().manual_seed(1)
    frames = torch.rand(2, 3, 19, 23, generator=g, dtype=torch.float64) * 255
    cpu = local_entropy(frames, bandwidth=bandwidth, preprocess=False)
    gpu = local_entropy(frames.cuda(), bandwidth=bandwidth, preprocess=False)
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=0, atol=1e-5)
    gpu32 = local_entropy(frames.float().cuda(), bandwidth=bandwidth, preprocess=False)
    torch.testing.assert_close(gpu32.cpu(), local_entropy(frames.float(), bandwidth=bandwidth, preprocess=False),
                               rtol=0, atol=1e-5)


@pytest.mark.cuda
def test_cuda_published_kernel_agrees_on_integers():
    _need_cuda()
    ext = load_extension(warn=False)
    g = torch.Generator().manual_seed(2)
    frames = torch.randint(0, 256, (2, 3, 16, 18), generator=g, dtype=torch.uint8)
    pub = ext.published_entropy_cuda(frames.float().cuda(), 3, 1e-3)
    torch.testing.assert_close(pub.cpu(), local_entropy(frames, preprocess=False), rtol=0, atol=1e-5)
