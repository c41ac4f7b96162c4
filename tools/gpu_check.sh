#!/usr/bin/env bash
# On a machine with one NVIDIA GPU and this repository: install the [gpu] extra into .venv-gpu and run
# tools/gpu_check.py (provider really used, CUDA vs CPU output, frames/s at 1280x720, restyle-video on
# CUDA). Fails loudly if anything fell back to the CPU. Usage: bash tools/gpu_check.sh [gpu_check.py options]
set -euo pipefail
cd "$(dirname "$0")/.."
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || { echo "GPU CHECK FAILED: nvidia-smi found no GPU" >&2; exit 1; }
if [ ! -x .venv-gpu/bin/python ]; then
    python3 -m venv .venv-gpu
fi
. .venv-gpu/bin/activate
pip install -q -e ".[gpu]"
python tools/gpu_check.py "$@"
