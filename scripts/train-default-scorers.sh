#!/usr/bin/env bash
# Rebuild the scorers shipped in updp_napari/models/scorers/ (reid/ and pathology/) from
# scratch: a synthetic cohort of a fixed seed, then `updp train-scorers` with a fixed seed on
# one CPU thread. The same versions of torch and this package give the same weights; only the
# training times in the cards differ. About ten minutes on one core.
#
#   scripts/train-default-scorers.sh            # uses .venv/bin
#   BIN=/path/to/venv/bin scripts/train-default-scorers.sh
#   DEST=/tmp/check scripts/train-default-scorers.sh && python -c "from safetensors.numpy import \
#       load_file as f; a, b = f('/tmp/check/reid/model.safetensors'), \
#       f('updp_napari/models/scorers/reid/model.safetensors'); print(all((a[k] == b[k]).all() \
#       for k in a))"
# (compare the tensors, not the bytes: the order of the file's metadata entries varies.)
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
DEST=${DEST:-updp_napari/models/scorers}   # another DEST to compare with the shipped files
# Cohort seed 1001 is kept for training; evaluate on cohorts of other seeds.
COHORT_ARGS=(--patients 400 --studies 4 --seed 1001 --size 256 --sites 5)
TRAIN_ARGS=(--size 128 --epochs 20 --reid-steps 600 --seed 0 --threads 1)

work=$(mktemp -d "${TMPDIR:-/tmp}/updp-scorers.XXXXXX")
trap 'rm -rf "$work"' EXIT
"$BIN/updp" make-cohort "$work/cohort" "${COHORT_ARGS[@]}" --quiet
"$BIN/updp" train-scorers "$work/cohort" --out "$work/scorers" "${TRAIN_ARGS[@]}" --quiet
rm -rf "$DEST/reid" "$DEST/pathology"
mkdir -p "$DEST"
cp -r "$work/scorers/reid" "$work/scorers/pathology" "$DEST/"
du -sh "$DEST"
