#!/usr/bin/env bash
# Deep Speech 2 on an offline synthetic English corpus: espeak-ng reads fortune sentences
# with many voices; dev and test use sentences and voices that training never sees.
#
# Usage: ./run.sh [--stage N] [--stop-stage N] [--num-train N] [--overrides "train.epochs=2"] ...
# Stages: 1 prepare, 2 features, 3 tokens, 4 n-gram LMs, 5 graphs (H, L, G, HLG), 6 train (and average),
#         7 tune LM weights on dev, 8 decode dev and test with every method, 9 results.
# Every stage writes a marker under data/.done or exp/.done and is skipped while it exists;
# `rm -rf data exp` starts from scratch.

set -euo pipefail
cd "$(dirname "$0")"

stage=1                 # first stage to run
stop_stage=9            # last stage to run
num_train=14000         # training utterances to synthesise
num_dev=200             # dev utterances (held-out sentences and voices)
num_test=300            # test utterances (held-out sentences and voices)
seed=0                  # seed of the corpus (texts, voices, speeds, pitches, noise)
num_jobs=2              # parallel processes for synthesis and features
feature_kind=fbank      # fbank (80 log-mel bins) or spectrogram (DS2's 161-bin log spectrogram)
config=conf/ds2.yaml    # model and training options
tag=ds2                 # experiment name: exp/<tag>
overrides=""            # extra config overrides, e.g. "train.epochs=1 model.rnn_hidden=64"
lm_order=3              # n-gram order of the LM of beam search and HLG
rescore_lm_order=4      # n-gram order of the larger LM of nbest-rescore
methods="greedy ctc-graph beam hlg nbest-rescore"   # decoding methods of stage 8
decode_jobs=2           # processes that run the searches
world_size=1            # training processes on this machine (torchrun --nproc-per-node; DDP, gloo/NCCL)
torchrun_args="--standalone"  # several machines: "--nnodes 2 --node-rank R --rdzv-endpoint HOST:29500"
avg=2                   # average the last N epochs; decoding uses the average if it beats best.pt on dev

. ./path.sh
. ../../utils/stage.sh
. ../../utils/parse_options.sh

feats=data/$feature_kind
exp=exp/$tag
lang=data/lang_char
lm=data/lm/lm_${lm_order}gram
rescore_lm=data/lm/lm_${rescore_lm_order}gram
dev_cuts=$feats/synth_cuts_dev.jsonl.gz
test_cuts=$feats/synth_cuts_test.jsonl.gz

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
  log "Stage 3: character tokens into $lang"
  run_stage data/.done/stage3.tokens ds2 tokens "$lang" --type char-en
fi

if stage_selected 4; then
  log "Stage 4: word n-gram LMs (KenLM) on the LM text, which holds no dev or test sentence"
  for order in $(printf '%s\n' "$lm_order" "$rescore_lm_order" | sort -u); do
    run_stage data/.done/stage4.lm.${order}gram \
      ds2 lm train data/manifests/synth_lm_text.txt data/lm --order "$order" \
        --dev-text data/manifests/synth_supervisions_dev.jsonl.gz
  done
fi

if stage_selected 5; then
  log "Stage 5: H, L, G and HLG graphs into $lang"
  run_stage data/.done/stage5.graph.${lm_order}gram ds2 lm graph "$lang" "$lm.arpa"
fi

if stage_selected 6; then
  log "Stage 6: train $exp"
  set_args=()
  for o in $overrides; do set_args+=(--set "$o"); done
  train=(ds2 train)
  if [ "$world_size" -gt 1 ]; then
    # shellcheck disable=SC2206
    train=(torchrun $torchrun_args --nproc-per-node "$world_size" "$(command -v ds2)" train)
  fi
  # --resume: an interrupted run continues from its newest checkpoint, mid-epoch (they are atomic).
  run_stage exp/.done/stage6.train.$tag \
    "${train[@]}" --config "$config" --exp-dir "$exp" --resume \
      --train-cuts "$feats/synth_cuts_train.jsonl.gz" --dev-cuts "$dev_cuts" \
      --stats "$feats/synth_stats_train.pt" --lang-dir "$lang" "${set_args[@]}"
  if [ "$avg" -gt 1 ]; then
    run_stage exp/.done/stage6.average.$tag ds2 average "$exp" --num "$avg" --dev-cuts "$dev_cuts"
  fi
fi

# The options of each decoding method; tuned weights come from stage 7's files.
method_args() {
  case "$1" in
    greedy) ;;
    ctc-graph) echo "--lang-dir $lang" ;;
    beam) echo "--lm $lm.bin" ;;
    hlg) echo "--lang-dir $lang" ;;
    nbest-rescore) echo "--lm $lm.bin --rescore-lm $rescore_lm.bin" ;;
  esac
}
# Tuned weights live next to the LM, one file per experiment and method.
tuned_file() { echo "data/lm/tuned_${tag}_$1.json"; }

if stage_selected 7; then
  log "Stage 7: tune the LM weights of beam, hlg and nbest-rescore on dev"
  for method in beam hlg nbest-rescore; do
    [[ " $methods " == *" $method "* ]] || continue
    first_pass=()  # nbest-rescore rescores the tuned beam search
    [ "$method" = nbest-rescore ] && first_pass=(--params "$(tuned_file beam)")
    # shellcheck disable=SC2046
    run_stage exp/.done/stage7.tune.$tag.$method \
      ds2 tune "$exp" --method "$method" $(method_args "$method") "${first_pass[@]}" \
        --cuts dev="$dev_cuts" --num-jobs "$decode_jobs" --output "$(tuned_file "$method")"
  done
fi

if stage_selected 8; then
  log "Stage 8: decode dev and test with: $methods"
  for method in $methods; do
    params=()
    [ -f "$(tuned_file "$method")" ] && params=(--params "$(tuned_file "$method")")
    # shellcheck disable=SC2046
    run_stage exp/.done/stage8.decode.$tag.$method \
      ds2 decode "$exp" --method "$method" $(method_args "$method") "${params[@]}" \
        --cuts dev="$dev_cuts" --cuts test="$test_cuts" --num-jobs "$decode_jobs"
  done
fi

if stage_selected 9; then
  log "Stage 9: RESULTS.md"
  # Always rewritten: it only reads what the earlier stages left.
  ds2 results . --output RESULTS.md
fi
