#!/usr/bin/env bash
# Deep Speech 2 on an offline synthetic English corpus: espeak-ng reads fortune sentences
# with many voices; dev and test use sentences and voices that training never sees.
#
# Usage: ./run.sh [--stage N] [--stop-stage N] [--num-train N] [--overrides "train.epochs=2"] ...
# Stages: 1 prepare, 2 features, 3 tokens, 4 train, 5 decode, 6 results.
# Every stage writes a marker under data/.done or exp/.done and is skipped while it exists;
# `rm -rf data exp` starts from scratch.

set -euo pipefail
cd "$(dirname "$0")"

stage=1                 # first stage to run
stop_stage=6            # last stage to run
num_train=16000         # training utterances to synthesise
num_dev=200             # dev utterances (held-out sentences and voices)
num_test=300            # test utterances (held-out sentences and voices)
seed=0                  # seed of the corpus (texts, voices, speeds, pitches, noise)
num_jobs=2              # parallel processes for synthesis and features
feature_kind=fbank      # fbank (80 log-mel bins) or spectrogram (DS2's 161-bin log spectrogram)
config=conf/ds2.yaml    # model and training options
tag=ds2                 # experiment name: exp/<tag>
overrides=""            # extra config overrides, e.g. "train.epochs=1 model.rnn_hidden=64"

. ./path.sh
. ../../utils/stage.sh
. ../../utils/parse_options.sh

feats=data/$feature_kind
exp=exp/$tag

if stage_selected 1; then
  log "Stage 1: synthesise the corpus with espeak-ng into data/manifests"
  run_stage data/.done/stage1.prepare \
    ds2 prepare synth data/manifests --audio-dir data/audio --num-train "$num_train" \
      --num-dev "$num_dev" --num-test "$num_test" --seed "$seed" --num-jobs "$num_jobs"
fi

if stage_selected 2; then
  log "Stage 2: compute $feature_kind features into $feats"
  run_stage data/.done/stage2.features.$feature_kind \
    ds2 features data/manifests "$feats" --prefix synth --kind "$feature_kind" --num-jobs "$num_jobs"
fi

if stage_selected 3; then
  log "Stage 3: character tokens into data/lang_char"
  run_stage data/.done/stage3.tokens ds2 tokens data/lang_char --type char-en
fi

if stage_selected 4; then
  log "Stage 4: train $exp"
  set_args=()
  for o in $overrides; do set_args+=(--set "$o"); done
  # --resume: an interrupted run continues from its last finished epoch (checkpoints are atomic).
  run_stage exp/.done/stage4.train.$tag \
    ds2 train --config "$config" --exp-dir "$exp" --resume \
      --train-cuts "$feats/synth_cuts_train.jsonl.gz" --dev-cuts "$feats/synth_cuts_dev.jsonl.gz" \
      --stats "$feats/synth_stats_train.pt" --lang-dir data/lang_char "${set_args[@]}"
fi

if stage_selected 5; then
  log "Stage 5: greedy decoding of dev and test"
  run_stage exp/.done/stage5.decode.$tag.greedy \
    ds2 decode "$exp" --method greedy \
      --cuts dev="$feats/synth_cuts_dev.jsonl.gz" --cuts test="$feats/synth_cuts_test.jsonl.gz"
fi

if stage_selected 6; then
  log "Stage 6: RESULTS.md"
  # Always rewritten: it only reads what the earlier stages left.
  ds2 results . --output RESULTS.md
fi
