#!/usr/bin/env bash
# Deep Speech 2 on an offline synthetic English corpus: espeak-ng reads fortune sentences
# with many voices; dev and test use sentences and voices that training never sees.
#
# Usage: ./run.sh [--stage N] [--stop-stage N] [--num-train N] [--overrides "train.epochs=2"] ...
# Stage 1 synthesises the corpus; stages 2-9 are the shared ones of egs/asr.sh (features, tokens,
# LMs, graphs, training, tuning, decoding, RESULTS.md). `rm -rf data exp` starts from scratch.
# A streaming model beside it (forward-only + row convolution; `ds2 transcribe --streaming`), in RESULTS.md too:
#   ./run.sh --stage 6 --config conf/ds2_streaming.yaml --tag streaming

set -euo pipefail
cd "$(dirname "$0")"

num_train=14000         # training utterances to synthesise
num_dev=200             # dev utterances (held-out sentences and voices)
num_test=300            # test utterances (held-out sentences and voices)
seed=0                  # seed of the corpus (texts, voices, speeds, pitches, noise)

# What the shared stages read (see egs/asr.sh)
prefix=synth            # corpus name of the manifests that stage 1 writes (synth_*)
train_sets=train        # the training set of stage 1
dev_set=dev             # validation, averaging and LM-weight tuning (held-out sentences and voices)
test_sets=test          # decoded and scored besides dev_set
token_type=char-en      # char-en (28 characters), char or bpe (with --vocab-size N)
lm_text=data/manifests/synth_lm_text.txt  # the LMs' text (stage 1 writes it: no dev or test sentence)

stage1_prepare() {
  run_stage data/.done/stage1.prepare \
    ds2 prepare synth data/manifests --audio-dir data/audio --num-train "$num_train" \
      --num-dev "$num_dev" --num-test "$num_test" --seed "$seed" --num-jobs "$num_jobs"
}

. ../path.sh
. ../asr.sh
