#!/usr/bin/env bash
# Rebuild the generative filter shipped in updp_napari/models/filter/ from scratch.
#
# The cohort and the training are fixed by their seeds, and training runs on one CPU
# thread, so the weights come out the same bit for bit on the same machine and library
# versions (updp_filter.json records the training time, which differs from run to run).
# About 45 minutes on one core.
#
#   scripts/train-default-filter.sh                      # replaces the shipped model
#   DEST=/tmp/check scripts/train-default-filter.sh && cmp \
#       /tmp/check/unet/diffusion_pytorch_model.safetensors \
#       updp_napari/models/filter/unet/diffusion_pytorch_model.safetensors
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${VENV:-.venv}/bin"
TARGET=${DEST:-updp_napari/models/filter}   # another DEST to compare with the shipped files
WORK="$(mktemp -d "${TMPDIR:-/tmp}/updp-filter.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT

"$BIN/updp" make-cohort "$WORK/cohort" --patients 300 --studies 4 --seed 1001 --size 256 \
    --sites 5 --quiet
"$BIN/updp" train-filter "$WORK/cohort" --out "$WORK/filter" --size 128 --epochs 40 --seed 0 \
    --threads 1
rm -rf "$TARGET"
mkdir -p "$(dirname "$TARGET")"
cp -r "$WORK/filter" "$TARGET"
sha256sum "$TARGET/unet/diffusion_pytorch_model.safetensors"
