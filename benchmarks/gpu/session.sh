#!/usr/bin/env bash
# The device command of the GPU session (issue 24 part 5, issue 21 part 4).
#
#   bash benchmarks/gpu/session.sh [session.py options]          # on the device, $OUT set
#   OUT=/tmp/gpu_smoke bash benchmarks/gpu/session.sh --smoke --block-tf   # CPU dry run
#
# Installs the carried wheels (.whl/: keras, namex, optree) when keras is missing, points
# KERAS_VAE_DATA_DIR at the carried .gpu_data/, and runs benchmarks/gpu/session.py with
# what is left of $TIMEOUT_S (the run call's timeout_s, default 600) less 60 s of margin.
set -u
START=$(date +%s)
TIMEOUT_S=${TIMEOUT_S:-600}
cd "$(dirname "$0")/../.."
OUT=${OUT:-$PWD/gpu_out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
if ! "$PY" -c "import keras" 2>/dev/null; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi
export KERAS_VAE_DATA_DIR=$PWD/.gpu_data
export PYTHONUNBUFFERED=1
BUDGET=$((TIMEOUT_S - 60 - ($(date +%s) - START)))
case " $* " in
  *" --smoke "*) exec "$PY" benchmarks/gpu/session.py --out "$OUT" "$@" ;;
  *) exec "$PY" benchmarks/gpu/session.py --out "$OUT" --budget-s "$BUDGET" "$@" ;;
esac
