#!/usr/bin/env bash
# Rebuild the generative filter shipped in updp_napari/models/filter/ from scratch.
#
# Three runs of 6,000 steps, each on 1,200 new images: from random weights on the cohort of
# seed 1001, then trained further (--init) at a lower learning rate with a longer weight
# average on the cohorts of seeds 1002 and 1003. The cohorts and the training are fixed by
# their seeds, and training runs on one CPU thread, so the weights come out the same bit for
# bit on the same machine and library versions (updp_filter.json records the training
# times, which differ from run to run). About 2 hours 20 minutes on one core.
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

cohort() {  # cohort SEED: 300 patients x 4 studies at 256 px, five sites
    "$BIN/updp" make-cohort "$WORK/cohort-$1" --patients 300 --studies 4 --seed "$1" --size 256 \
        --sites 5 --quiet
}
cohort 1001
"$BIN/updp" train-filter "$WORK/cohort-1001" --out "$WORK/stage1" --size 128 --epochs 40 --seed 0 \
    --threads 1
cohort 1002
"$BIN/updp" train-filter "$WORK/cohort-1002" --out "$WORK/stage2" --init "$WORK/stage1" --epochs 40 \
    --seed 1 --threads 1 --learning-rate 3e-4 --ema-decay 0.999
cohort 1003
"$BIN/updp" train-filter "$WORK/cohort-1003" --out "$WORK/stage3" --init "$WORK/stage2" --epochs 40 \
    --seed 3 --threads 1 --learning-rate 3e-4 --ema-decay 0.999
rm -rf "$TARGET"
mkdir -p "$(dirname "$TARGET")"
cp -r "$WORK/stage3" "$TARGET"
sha256sum "$TARGET/unet/diffusion_pytorch_model.safetensors"
