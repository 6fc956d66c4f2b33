"""Build script for mint_rl.

The compiled extension ``mint_rl._C`` (csrc/) holds the local-entropy kernels (C++ with OpenMP
for CPU tensors, and CUDA kernels when torch is a CUDA build and nvcc is found) and the CPU
kernels of the detector inference path (fused soft-argmax + status head, fused bias + LeakyReLU
of the phase-stacked transposed convolutions; :mod:`mint_rl.inference` falls back to torch
without them). It is built against the torch already installed, so install with::

    pip install --no-build-isolation --no-deps -e .

(``install.sh`` does this; without ``--no-deps`` pip re-resolves gym's pins and downgrades
pyglet, and MAGICAL can no longer render headless). Without torch at build time the package
installs without the extension and falls back, with a warning at run time, to a pure-torch implementation.
Set ``MINT_RL_NO_CUDA=1`` to skip the CUDA kernels on a GPU machine.
"""

import os
import sys

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def _extension_kwargs() -> dict:
    try:
        import torch
        from torch.utils import cpp_extension
    except ImportError:
        print(
            "mint_rl: torch is not importable at build time, so the compiled entropy kernels are "
            "not built (pure-torch fallback). Install torch first, then "
            "`pip install --no-build-isolation --no-deps -e .`.",
            file=sys.stderr,
        )
        return {}
    csrc = os.path.join(HERE, "csrc")
    sources = ["csrc/entropy_cpu.cpp", "csrc/inference_cpu.cpp"]  # + the fused inference-path kernels
    define_macros = []
    extra = {"cxx": ["-O3", "-fopenmp"]}
    use_cuda = (
        torch.version.cuda is not None
        and cpp_extension.CUDA_HOME is not None
        and os.environ.get("MINT_RL_NO_CUDA") != "1"
    )
    if use_cuda:
        sources.append("csrc/entropy_cuda.cu")
        define_macros.append(("MINT_WITH_CUDA", None))
        extra["nvcc"] = ["-O3"]
        ext_cls = cpp_extension.CUDAExtension
    else:
        ext_cls = cpp_extension.CppExtension
    ext = ext_cls(
        "mint_rl._C",
        sources,
        depends=["csrc/entropy_kernels.h"],  # per-pixel functions shared by the CPU and CUDA code
        include_dirs=[csrc],
        define_macros=define_macros,
        extra_compile_args=extra,
        extra_link_args=["-fopenmp"],
    )
    return {
        "ext_modules": [ext],
        "cmdclass": {"build_ext": cpp_extension.BuildExtension.with_options(no_python_abi_suffix=False)},
    }


def _version() -> str:
    with open(os.path.join(HERE, "mint_rl", "__init__.py")) as f:
        for line in f:
            if line.startswith("__version__"):
                return line.split("=")[1].strip().strip("\"'")
    raise RuntimeError("no __version__ in mint_rl/__init__.py")


setup(
    name="mint_rl",
    version=_version(),
    description="MINT (Maximum Information keypoiNTs) keypoints for RL and imitation learning",
    long_description=open(os.path.join(HERE, "README.md")).read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["mint_rl", "mint_rl.*"]),
    package_data={"mint_rl": ["pretrained/*.safetensors", "pretrained/*.json"]},
    install_requires=[
        "torch>=2.1",
        "numpy",
        "gymnasium>=0.29,<0.30",
        "stable-baselines3>=2.2,<2.3",
        "imitation==1.0.1",
        "torch-geometric>=2.5",
        "magical-il==0.0.1a4",
        "six",
        "safetensors",
        "tqdm",
        "tensorboard",
        "matplotlib",
        "imageio",
        "imageio-ffmpeg",
        "pycocotools",
        "opencv-python-headless",
    ],
    **_extension_kwargs(),
)
