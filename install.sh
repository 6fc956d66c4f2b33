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
# Each step below is skipped when a stamp in the venv says it already ran with the same inputs
# and its result still checks out, so running this script again on an installed venv (the
# README's test command does) changes nothing that is already right: in particular it does not
# let pip downgrade pyglet to gym's pin and put it back (an interrupted re-install would leave a
# venv that cannot render headless).
stamps="$venv/.mint_rl-install"
mkdir -p "$stamps"
digest() { cat "$@" 2>/dev/null | "$venv/bin/python" -c "import hashlib, sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest())"; }
fixes="pyglet==1.5.31 cloudpickle==3.1.2"
req_digest=$(printf '%s\n' "$torch_spec" "$fixes" | cat - "$here/requirements.txt" | digest /dev/stdin)
if [ "$(cat "$stamps/requirements" 2>/dev/null)" != "$req_digest" ] || \
   ! "$venv/bin/python" -c "import magical, imitation, stable_baselines3, torch_geometric" 2>/dev/null; then
  pip install -q -r "$here/requirements.txt"
  rm -f "$stamps/fixes"
  echo "$req_digest" > "$stamps/requirements"
fi
# gym 0.17 (pulled by magical-il) asks for pyglet<=1.5.0, which cannot render headless, and
# cloudpickle 1.6, which cannot load Python 3.11 code objects (SB3's PPO.load then fails on
# every saved schedule). pyglet 1.5.31 renders headless through EGL; cloudpickle 3.1 reads 3.11
# code. They must be a separate step: pip only warns about gym's pins afterwards.
if ! "$venv/bin/python" - "$fixes" <<'PY' 2>/dev/null
import importlib.metadata as md, sys
for spec in sys.argv[1].split():
    name, version = spec.split("==")
    assert md.version(name) == version, spec
PY
then
  pip install -q $fixes 2>&1 | grep -v "gym 0.17.3 requires\|dependency resolver\|^$" || true
fi
# The package itself: builds mint_rl._C (C++/OpenMP, plus CUDA when available) against the
# installed torch, hence --no-build-isolation; dependencies come from requirements.txt.
pkg_digest=$( (cat "$here/setup.py" "$here"/csrc/*; "$venv/bin/python" -c "import torch; print(torch.__version__)") | digest /dev/stdin)
if [ "$(cat "$stamps/package" 2>/dev/null)" != "$pkg_digest" ] || \
   ! "$venv/bin/python" -c "import mint_rl, sys; sys.exit(0 if mint_rl.has_extension() else 1)" 2>/dev/null; then
  pip install -q --no-build-isolation --no-deps -e "$here"
  echo "$pkg_digest" > "$stamps/package"
fi
"$venv/bin/python" -c "import mint_rl; print('mint_rl', mint_rl.__version__, 'installed; compiled kernels:', mint_rl.has_extension())"
