#!/usr/bin/env bash
# One GPU session of codec training, prepared so that the device's minutes go to training, not set-up:
# resume from training/codec16-resume.pt, train with the full recipe (a new MS-STFT discriminator of the
# paper's width, 32 filters, in place of the checkpoint's 16-filter one, which stayed at chance on the CPU,
# warmed alone for 300 steps on the resumed generator's output while the generator is held (reconstruction-only
# steps would pull it back towards a low-pass), then on every step; the paper's batch of 64,
# learning rate and loss weights; every setting given, since the checkpoint carries its CPU runs' departures)
# for MINUTES of wall time,
# evaluate with the spectral gate and the quality table, and leave a new compact resume checkpoint in $OUT.
#
# Here, once:  python training/pack_gpu_corpus.py corpus/ training/gpu   (audio + wheels, ~45 MB)
# On the device (the `run` tool), carrying training/gpu:
#              bash training/gpu_run.sh 6
# Then here:   cp $OUT/codec16-resume.pt training/   and record the run in training/LOG.md, with PESQ and STOI
#              from benchmarks/quality.py run here on the whole validation split (the device's quality.md has
#              neither: pesq has no wheel for its Python 3.12, and nothing can be built there).
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${1:-6}
batch=${BATCH_SIZE:-64}  # the paper's; a CPU dry run of this script takes BATCH_SIZE=2
out=${OUT:-training/gpu/out}
python=${PYTHON:-python3}
mkdir -p "$out"
[ -d training/gpu/corpus ] || { echo "training/gpu/corpus missing: run training/pack_gpu_corpus.py first" >&2; exit 1; }
"$python" -c "import pedalboard, constriction" 2>/dev/null ||
    "$python" -m pip install --quiet --no-index --no-deps training/gpu/wheels/*.whl
"$python" -c "import encodec_fx" 2>/dev/null || "$python" -m pip install --quiet --no-deps --no-build-isolation -e .
run=$(mktemp -d)/run
"$python" -m training.compact unpack training/codec16-resume.pt "$run"
step=$("$python" -c "import torch,sys; print(torch.load(sys.argv[1], weights_only=True)['step'])" "$run/training_state.pt")
device=$("$python" -c "import torch; print('cuda' if torch.cuda.is_available() else 'cpu')")
echo "resuming at step $step on $device for $minutes minutes" | tee "$out/gpu_run.log"
"$python" -m encodec_fx.cli train-codec training/gpu/corpus "$run" --resume --validation-dir training/gpu/validation \
    --batch-size "$batch" --learning-rate 0.0003 --discriminator-learning-rate-factor 1 \
    --new-discriminator --discriminator-filters 32 --adversarial-start "$step" --discriminator-warmup 300 \
    --warmup-generator hold \
    --adversarial-every 1 --discriminator-precision float32 --synthetic-share 0 --time-loss-cutoff 0 \
    --loss-weight time=0.1 --loss-weight mel=1 --loss-weight adversarial=3 --loss-weight feature=3 \
    --steps 1000000 --eval-every 100 --checkpoint-every 100 \
    --minutes "$minutes" --device "$device" 2>&1 | tee -a "$out/gpu_run.log"
"$python" -m training.compact pack "$run" "$out/codec16-resume.pt" | tee -a "$out/gpu_run.log"
"$python" benchmarks/quality.py training/gpu/validation --model "$run/model" --opus --bandwidths 1.5 6 24 \
    > "$out/quality.md" || true   # the gate's verdict is in the table; a failing gate is not a failed run
echo "wrote $out: codec16-resume.pt, quality.md, gpu_run.log"
