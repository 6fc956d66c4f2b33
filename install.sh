#!/usr/bin/env bash
# Sets up mint_rl in a virtual environment (default: ./.venv) on Python 3.11.
#
#   bash install.sh [VENV_DIR]
#
# Environment variables:
#   PYTHON         interpreter used to create the venv (default: python3.11, else python3)
#   MINT_RL_TORCH  pip spec for torch (default: torch==2.13.0, the CPU wheel on a CPU machine;
#                  on a GPU machine with internet the same spec is the CUDA wheel).
#                  Set MINT_RL_TORCH=keep to reuse the torch of the creating interpreter
#                  (the venv is then made with --system-site-packages), e.g. your CUDA build.
# The compiled entropy kernels (csrc/) are built against whichever torch is installed: with a
# CUDA torch and nvcc present the CUDA kernels are built too.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${1:-"$here/.venv"}
py=${PYTHON:-$(command -v python3.11 || command -v python3)}
torch_spec=${MINT_RL_TORCH:-torch==2.13.0}

if [ ! -x "$venv/bin/python" ]; then
  if [ "$torch_spec" = keep ]; then
    "$py" -m venv --system-site-packages "$venv"
  else
    "$py" -m venv "$venv"
  fi
fi
pip() { "$venv/bin/python" -m pip --disable-pip-version-check "$@"; }
pip install -q --upgrade pip setuptools wheel
if [ "$torch_spec" = keep ]; then
  "$venv/bin/python" -c "import torch; print('mint_rl install: keeping torch', torch.__version__)"
elif ! "$venv/bin/python" -c "import torch" 2>/dev/null; then
  pip install -q "$torch_spec"
fi
pip install -q -r "$here/requirements.txt"
# The package itself: builds mint_rl._C (C++/OpenMP, plus CUDA when available) against the
# installed torch, hence --no-build-isolation; dependencies come from requirements.txt.
pip install -q --no-build-isolation --no-deps -e "$here"
# gym 0.17 (pulled by magical-il) asks for pyglet<=1.5.0, which cannot render headless;
# 1.5.31 can (EGL). It must be a separate step: pip only warns about gym's pin afterwards.
pip install -q pyglet==1.5.31 2>&1 | grep -v "pyglet<=1.5.0\|dependency resolver\|^$" || true
"$venv/bin/python" -c "import mint_rl; print('mint_rl', mint_rl.__version__, 'installed; compiled kernels:', mint_rl.has_extension())"
