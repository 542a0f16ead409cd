#!/usr/bin/env bash
# Gets the checkout ready for the device call of benchmarks/gpu/session.sh.
#
#   bash benchmarks/gpu/prepare.sh [--untrack]     (then the `run` call, then restore.sh)
#
# Safe and idempotent: it moves, never deletes, and running it twice is the same as once.
# 1. Data: copies binarized_mnist.npz (3.8 MB) from /work/shared/data (or $SHARED_DATA) into
#    the ignored folder .gpu_data/ (carried; KERAS_VAE_DATA_DIR points there) and checks its
#    SHA-256 against the data folder's SHA256SUMS.
# 2. Wheels: keras, namex and optree for the device's Python 3.12 into the ignored .whl/
#    (carried; the device has jax and torch but no keras), unless already there.
# 3. Size: the working tree that travels is capped at 64 MiB and the preset weights
#    (keras_vae/preset_files/*/*.weights.h5, about 90 MB) take it over; the GPU job needs only
#    those of the presets whose NLL it measures (KEEP, session.py's NLL_PRESETS, 15 MB).
#    The others are MOVED (mv, a rename on one file system) to $GPU_STASH, by default
#    ../.gpu_stash_<checkout name> beside the checkout: outside the repository, so they do not
#    travel and `git clean` cannot reach them. A file already in the stash is only replaced
#    after `cmp` finds it identical. restore.sh moves them back.
#    While they are away, do not run tests or commit in this checkout (git shows them deleted).
#    --untrack also removes them from the index (`git rm --cached`): only if a device call is
#    refused with "the working tree is larger than 64 MiB" although the files are not on disk
#    (the README counts tracked files; unverified whether missing ones count).
# 4. Prints what will travel: tracked and untracked-not-ignored files on disk plus the carried
#    folders, against the 64 MiB limit; exits 1 when over it.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
ROOT=$PWD
SHARED_DATA=${SHARED_DATA:-$ROOT/../shared/data}
[ -d "$SHARED_DATA" ] || SHARED_DATA=/work/shared/data
GPU_STASH=${GPU_STASH:-$ROOT/../.gpu_stash_$(basename "$ROOT")}
KEEP="hvae_binarized_mnist vae_binarized_mnist"  # = NLL_PRESETS in benchmarks/gpu/session.py
UNTRACK=0
for arg in "$@"; do
  case $arg in
    --untrack) UNTRACK=1 ;;
    *) echo "prepare.sh: unknown argument $arg (only --untrack)" >&2; exit 2 ;;
  esac
done

# 1. Data.
mkdir -p .gpu_data/binarized_mnist
if [ ! -f .gpu_data/binarized_mnist/binarized_mnist.npz ]; then
  cp "$SHARED_DATA/binarized_mnist/binarized_mnist.npz" .gpu_data/binarized_mnist/
fi
want=$(awk '$2 == "binarized_mnist/binarized_mnist.npz" {print $1}' "$SHARED_DATA/SHA256SUMS")
have=$(sha256sum .gpu_data/binarized_mnist/binarized_mnist.npz | cut -d' ' -f1)
if [ "$want" != "$have" ]; then
  echo "prepare.sh: .gpu_data/binarized_mnist/binarized_mnist.npz does not match SHA256SUMS" >&2
  exit 1
fi
echo "data: .gpu_data/binarized_mnist/binarized_mnist.npz ($(du -h .gpu_data | tail -1 | cut -f1)), checksum OK"

# 2. Wheels for the device (Python 3.12, x86-64; no keras there).
if ! ls .whl/keras-3*.whl .whl/namex-*.whl .whl/optree-*cp312*.whl >/dev/null 2>&1; then
  kv() { python3 -c "import importlib.metadata as m; print(m.version('$1'))"; }
  python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 -d .whl \
    "keras==$(kv keras)" "namex==$(kv namex)" "optree==$(kv optree)"
fi
echo "wheels: $(cd .whl && ls *.whl | tr '\n' ' ')"

# 3. Move the preset weights out of the tree, but KEEP's.
moved=0
for f in keras_vae/preset_files/*/*.weights.h5; do
  [ -f "$f" ] || continue
  preset=$(basename "$(dirname "$f")")
  case " $KEEP " in *" $preset "*) continue ;; esac
  dest=$GPU_STASH/$f
  mkdir -p "$(dirname "$dest")"
  if [ -e "$dest" ]; then
    if cmp -s "$f" "$dest"; then
      rm "$f"  # an identical copy is in the stash
    else
      echo "prepare.sh: $dest exists and differs from $f; move one of them by hand" >&2
      exit 1
    fi
  else
    mv "$f" "$dest"
  fi
  moved=$((moved + 1))
done
echo "preset weights: moved $moved file(s) to $GPU_STASH ($(find "$GPU_STASH" -type f 2>/dev/null | wc -l) there); kept: $KEEP"
if [ $UNTRACK = 1 ]; then
  git ls-files -z 'keras_vae/preset_files/*.weights.h5' | while IFS= read -r -d '' f; do
    [ -e "$f" ] || git rm -q --cached -- "$f"
  done
  echo "untracked the moved weights (restore.sh puts them back in the index)"
fi

# 4. What travels.
carried=(.whl .gpu_data)
total=$(
  { git ls-files -z --cached --others --exclude-standard; \
    for c in "${carried[@]}"; do if [ -e "$c" ]; then find "$c" -type f -print0; fi; done; } |
  python3 -c '
import os, sys
paths = set(p for p in sys.stdin.buffer.read().split(b"\0") if p)
print(sum(os.path.getsize(p) for p in paths if os.path.isfile(p)))'
)
echo "travels: $total bytes ($((total / 1048576)) MiB of 64 MiB), carried: ${carried[*]}"
if [ "$total" -gt $((64 * 1048576)) ]; then
  echo "prepare.sh: over the 64 MiB limit" >&2
  exit 1
fi
