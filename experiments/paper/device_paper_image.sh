#!/usr/bin/env bash
# The image table's cells on a lent GPU machine (docs/results/paper.md §1a, cells with train_device
# "cuda (...)"): the encoders train on the GPU, the BC heads and the closed-loop evaluation run on
# the machine's CPU cores (one worker per core, MuJoCo rendering through EGL on the GPU), and
# every finished cell is appended to docs/results/paper-image.jsonl exactly as on a CPU machine,
# so the run resumes from the committed cells and merges back into them. Before it, the CUDA
# training-speed figures of docs/BENCHMARKS.md.
#
# Run from the repository root of a copy on that machine, with the wheels the machine lacks in
# .whl/ (mujoco, metaworld, gymnasium, farama-notifications, glfw, pyopengl for Python 3.12), the
# EGL/GL loader packages in .gl/ (/work/.library/device/README.md) and the 2-demo reference renders
# of this machine in .devref/ (python -m experiments.paper.render_diff --subset), e.g.
#     experiments/paper/device_paper_image.sh 560 14   # seconds for the whole script, worker processes
# Results land in $OUT: paper-image.jsonl, BENCHMARKS.md, render_diff.jsonl, logs.
set -u
DEADLINE=$(( $(date +%s) + ${1:-560} ))
JOBS=${2:-14}
OUT=${OUT:-/tmp/device-out}
mkdir -p "$OUT"

for f in .gl/*.deb; do dpkg -x "$f" /; done
ldconfig
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=$PWD:/tmp/site MUJOCO_GL=egl PYOPENGL_PLATFORM=egl PYTHONUNBUFFERED=1
export __EGL_VENDOR_LIBRARY_FILENAMES=${__EGL_VENDOR_LIBRARY_FILENAMES:-/usr/local/nvidia/share/glvnd/egl_vendor.d/10_nvidia.json}
[ -f "$__EGL_VENDOR_LIBRARY_FILENAMES" ] || unset __EGL_VENDOR_LIBRARY_FILENAMES
ACTJEPA="python3 -m actjepa_core.cli"

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch, os; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'cpus', os.cpu_count())"
} 2>&1 | tee "$OUT/machine.txt"

# CUDA training speed (state: ours vs the paper's reference; image: in memory vs streaming);
# SKIP_BENCH=1 leaves the whole time to the table
[ "${SKIP_BENCH:-0}" = 1 ] || timeout -s INT 90 $ACTJEPA bench train --device cuda --steps 300 --repeats 3 \
    --out docs/BENCHMARKS.md > "$OUT/bench_train.log" 2>&1
[ "${SKIP_BENCH:-0}" = 1 ] || timeout -s INT 100 $ACTJEPA bench train --obs image --device cuda --steps 100 --workers 2 \
    --out docs/BENCHMARKS.md > "$OUT/bench_train_image.log" 2>&1
cp docs/BENCHMARKS.md "$OUT/"

# the image table: resumes from the committed cells, stops cleanly at the time limit
timeout -s INT -k 20 $(( DEADLINE - $(date +%s) - 40 )) python3 -m experiments.paper.run --config experiments/paper/paper_image.yaml \
    --device cuda --jobs "$JOBS" --quiet > "$OUT/paper.log" 2>&1
pkill -f spawn_main; sleep 1
cp docs/results/paper-image.jsonl "$OUT/"

for task in reach-v3 push-v3 pick-place-v3; do
    python3 -m experiments.paper.render_diff ".devref/$task.hdf5" "runs/paper/demos/$task-100-64px.hdf5"
done > "$OUT/render_diff.jsonl" 2>&1
find runs/paper/image -name metrics.csv | tar czf "$OUT/metrics.tgz" -T - 2>/dev/null
ls -la "$OUT"
