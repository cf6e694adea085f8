#!/usr/bin/env bash
# Five-minute check of a GPU machine (see benchmarks/gpu_check.py): installs electra-tf with
# a CUDA TensorFlow into a fresh venv, then times the ELECTRA-Small and -Base pre-training
# steps with XLA and bfloat16 and prints steps/s and MFU. Extra flags go to gpu_check.py.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${VENV:-/tmp/electra-gpu-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --upgrade pip
  "$venv/bin/pip" install -q "tensorflow[and-cuda]" && "$venv/bin/pip" install -q -e .
fi
exec "$venv/bin/python" benchmarks/gpu_check.py "$@"
