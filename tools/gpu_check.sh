#!/usr/bin/env bash
# On a machine with one NVIDIA GPU and this repository: install the [gpu] extra into .venv-gpu and run
# tools/gpu_check.py (provider really used, CUDA vs CPU output in fp32 and fp16, model-only frames/s at
# 1280x720 for batch 1/4/8, restyle-video --device cuda at 1280x720). Fails loudly if anything fell back
# to the CPU. Meant to finish in under 5 minutes (most of it the first install).
# Usage: bash tools/gpu_check.sh [gpu_check.py options, e.g. --device cuda:1 --tensorrt]
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || { echo "GPU CHECK FAILED: nvidia-smi found no GPU" >&2; exit 1; }
if [ ! -x .venv-gpu/bin/python ]; then
    python3 -m venv .venv-gpu
fi
. .venv-gpu/bin/activate
pip install -q -e ".[gpu]"
echo "installed in $(( $(date +%s) - start )) s"
python tools/gpu_check.py "$@"
echo "gpu_check took $(( $(date +%s) - start )) s in all"
