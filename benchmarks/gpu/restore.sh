#!/usr/bin/env bash
# Undoes prepare.sh and brings a device session's files home.
#
#   bash benchmarks/gpu/restore.sh [FILES_AT]
#
# 1. Moves the preset weights back from $GPU_STASH (never overwriting a different file in the
#    tree: it stops and says so), and puts back in the index any that prepare.sh --untrack
#    removed (only paths staged as deleted).
# 2. With FILES_AT (the `files_at` folder of the run call's reply, holding what came back
#    from $OUT): copies results.json and session.log into
#    benchmarks/gpu/results/<UTC time>/ for the record.
# Idempotent: with nothing in the stash and no FILES_AT it does nothing.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
ROOT=$PWD
GPU_STASH=${GPU_STASH:-$ROOT/../.gpu_stash_$(basename "$ROOT")}

# 1. The preset weights.
if [ -d "$GPU_STASH" ]; then
  (cd "$GPU_STASH" && find . -type f -print0) | while IFS= read -r -d '' f; do
    f=${f#./}
    if [ -e "$f" ]; then
      if cmp -s "$f" "$GPU_STASH/$f"; then
        rm "$GPU_STASH/$f"
      else
        echo "restore.sh: $f exists and differs from $GPU_STASH/$f; left both" >&2
        exit 1
      fi
    else
      mkdir -p "$(dirname "$f")"
      mv "$GPU_STASH/$f" "$f"
    fi
  done
  find "$GPU_STASH" -depth -type d -empty -delete
fi
git diff --cached --name-only -z --diff-filter=D -- 'keras_vae/preset_files/*.weights.h5' |
  while IFS= read -r -d '' f; do
    [ -f "$f" ] && git reset -q -- "$f"
  done
echo "preset weights: $(ls keras_vae/preset_files/*/*.weights.h5 | wc -l) in the tree; git status of them:"
git status --short -- keras_vae/preset_files | head -20

# 2. What came back from the device.
[ $# -ge 1 ] || exit 0
FILES_AT=$1
[ -f "$FILES_AT/results.json" ] || { echo "restore.sh: no results.json in $FILES_AT" >&2; exit 1; }
stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "benchmarks/gpu/results/$stamp"
cp "$FILES_AT/results.json" "benchmarks/gpu/results/$stamp/"
[ -f "$FILES_AT/session.log" ] && cp "$FILES_AT/session.log" "benchmarks/gpu/results/$stamp/"
echo "results: benchmarks/gpu/results/$stamp/"
