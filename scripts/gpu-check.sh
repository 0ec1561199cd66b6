#!/usr/bin/env bash
# The GPU checks in one prepared script: the CUDA path of every feature, into one JSON and one
# Markdown table (OUT/gpu-check.json, OUT/gpu-check.md). The logic is scripts/gpu_check.py; its
# docstring lists the steps. Run from the repository root on a GPU machine, with Fashion-MNIST's
# four IDX .gz files in .device-data/fashion-mnist/:
#
#   scripts/gpu-check.sh [--out DIR] [--data-dir DIR] [--budget SECONDS] [--only STEP,...]
#   scripts/gpu-check.sh --dry-run     # the plan, then its toy version on the CPU
#
# PYTHON picks the interpreter (default: python3, the one that has torch).
set -uo pipefail
exec "${PYTHON:-python3}" "$(dirname "$0")/gpu_check.py" "$@"
