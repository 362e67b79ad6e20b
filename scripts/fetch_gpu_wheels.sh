#!/usr/bin/env bash
# Run HERE (with network to PyPI): downloads the pure-Python wheels that snapflow-bench needs on the lent GPU
# machine and that its image lacks (its package list: /work/.library/device/KINDS.md), into .whl/ at the repo
# root. scripts/gpu_bench.sh installs them there with --no-index --no-deps. Total about 15 MB.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
mkdir -p .whl
# lerobot 0.6.1 and its import-time deps missing from the image; transformers pinned because lerobot 0.6.1 needs
# <5.6 (the image has 5.17), and transformers 5.5.4 checks at import time tokenizers<=0.23.0 (the image has
# 0.23.2) and regex>=2025.10.22; hydra for the snapflow-bench CLI; num2words for SmolVLMProcessor.
"$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d .whl \
  lerobot==0.6.1 transformers==5.5.4 draccus==0.11.6 mergedeep==1.3.4 toml==0.10.2 \
  gymnasium==1.4.0 farama-notifications==0.0.6 termcolor==3.3.0 \
  hydra-core==1.3.8 omegaconf==2.3.1 num2words==0.5.14 tokenizers==0.22.2 regex==2026.11.19 2>&1 | tail -3 || {
  echo "pip download failed; rerun with network access to PyPI" >&2; exit 1; }
# antlr4-python3-runtime 4.9.3 (omegaconf's pin) and docopt 0.6.2 (num2words') are published as sdists only:
# build their pure wheels here.
ls .whl/antlr4_python3_runtime-4.9.3-*.whl .whl/docopt-0.6.2-*.whl >/dev/null 2>&1 || \
  "$PY" -m pip wheel --no-deps -q -w .whl antlr4-python3-runtime==4.9.3 docopt==0.6.2
ls -la .whl && du -sh .whl
