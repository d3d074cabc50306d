#!/usr/bin/env bash
# Deep Speech 2 on mini-LibriSpeech (OpenSLR 31): train-clean-5 (5 hours, 1,519 utterances) and
# dev-clean-2 (2 hours, 1,089 utterances), subsets of LibriSpeech; sized for one CPU machine of 2-4 cores
# (conf/ds2.yaml: a few hours of training). Output characters (char-en) or BPE pieces (--token-type bpe).
#
# Usage: ./run.sh [--stage N] [--stop-stage N] [--corpus-dir DIR] [--test-sets test-clean] ...
# Stage 1 downloads both parts (460 MB) into --download-dir, or takes a copy on disk (--corpus-dir, the
# folder holding LibriSpeech/), writes their manifests, and downloads LibriSpeech's official ARPA LMs
# (OpenSLR 11): 3-gram.pruned.1e-7 (34 MB) for beam search and HLG, 4-gram (1.3 GB) for nbest-rescore.
# Stages 2-9 are the shared ones of egs/asr.sh. `rm -rf data exp` starts from scratch.
#
# The test set: mini-LibriSpeech has no other set, so dev-clean-2 is the one set decoded and scored, as in
# Kaldi's mini_librispeech recipe; its LM weights are tuned on it too, which flatters the LM methods by
# the tuning. For a number from a set nothing was chosen on, add LibriSpeech's test-clean (--test-sets
# test-clean: stage 1 downloads it from OpenSLR 12, 346 MB).
# The LM: the official ARPAs, not the training transcripts. train-clean-5's 1,519 sentences make an
# n-gram of a few thousand words, and dev-clean-2's speakers read other books: many of its words would
# be outside such an LM, which neither HLG (its words are the LM's) nor beam search could recover. The
# official LMs come from 800 M words of other books (none of LibriSpeech's dev or test books), as the full
# recipe's --lm-source official does.

set -euo pipefail
cd "$(dirname "$0")"

base_url=https://www.openslr.org/resources   # OpenSLR or a mirror: <URL>/31/<part>.tar.gz (test-clean: <URL>/12/), the LMs <URL>/11/<name>
corpus_dir=                                   # a copy to use instead of downloading (holds LibriSpeech/train-clean-5 and dev-clean-2)
download_dir=data/download                    # where the archives are downloaded and untarred (the LM files in lm/)

# What the shared stages read (see egs/asr.sh)
prefix=librispeech                            # corpus name of the manifests that stage 1 writes (librispeech_*)
train_sets=train-clean-5                      # the part to train on
dev_set=dev-clean-2                           # validation, averaging, LM-weight tuning, and the set scored
test_sets=""                                  # sets decoded besides dev-clean-2: none (see above), or test-clean
token_type=char-en                            # char-en (28 characters) or bpe (with --vocab-size N)
lm_text=data/manifests/librispeech_supervisions_train-clean-5.jsonl.gz  # not read: the LMs are the official ARPAs
# Shared options with defaults for a CPU machine of 2-4 cores
: "${num_jobs:=2}"
: "${decode_jobs:=2}"
: "${avg:=3}"

stage1_prepare() {
  local corpus=(--download-dir "$download_dir" --base-url "$base_url") parts
  [ -n "$corpus_dir" ] && corpus=(--corpus-dir "$corpus_dir")
  parts=$(csv $train_sets $dev_set $test_sets)
  run_stage "data/.done/stage1.prepare.${parts//,/+}" \
    ds2 prepare librispeech data/manifests --parts "$parts" --num-jobs "$num_jobs" "${corpus[@]}"
  run_stage data/.done/stage1.lm.official ds2 prepare librispeech-lm data/manifests \
    --arpa 3-gram.pruned.1e-7.arpa.gz --arpa 4-gram.arpa.gz --download-dir "$download_dir/lm" --base-url "$base_url"
}

# once the options are parsed: stage 4 imports the official ARPAs (of orders lm_order 3 and rescore_lm_order 4)
options_parsed() {
  lm_arpa=$download_dir/lm/3-gram.pruned.1e-7.arpa.gz
  rescore_lm_arpa=$download_dir/lm/4-gram.arpa.gz
}

. ../path.sh
. ../asr.sh
