#!/usr/bin/env bash
# Deep Speech 2 on AISHELL-1 (OpenSLR 33): 178 hours of Mandarin read speech, 400 speakers; output
# characters (char-zh), character n-gram LMs and a word 3-gram (hlg-word) of the training transcripts,
# results as CER.
#
# Usage: ./run.sh [--stage N] [--stop-stage N] [--world-size GPUS] [--corpus-dir DIR] [--overrides "..."] ...
# Stage 1 downloads AISHELL-1 into --download-dir (about 50 GB with the untarred WAVs), or takes a copy
# on disk (--corpus-dir, the folder holding data_aishell/; a relative path is relative to egs/aishell),
# and writes its manifests; stages 2-9 are the shared ones of egs/asr.sh. Training takes GPUs:
# --world-size N trains on N of them (torchrun, DDP). `rm -rf exp data/{.done,manifests,fbank,lang_char,lm}`
# starts from scratch without downloading again; `rm -rf data exp` removes the download too.

set -euo pipefail
cd "$(dirname "$0")"

base_url=https://www.openslr.org/resources   # OpenSLR or a mirror: <URL>/33/data_aishell.tgz, resource_aishell.tgz
corpus_dir=                                   # an AISHELL-1 copy to use instead of downloading (holds data_aishell/)
download_dir=data/download                    # where the archives are downloaded and untarred

# What the shared stages read (see egs/asr.sh)
prefix=aishell          # corpus name of the manifests that stage 1 writes (aishell_*)
train_sets=train        # AISHELL-1's training set (150 h)
dev_set=dev             # validation, averaging and LM-weight tuning
test_sets=test          # decoded and scored besides dev_set
token_type=char-zh      # Mandarin characters (and <unk>); the LMs are character n-grams
lm_text=data/manifests/aishell_supervisions_train.jsonl.gz  # training transcripts (as Kaldi's, WeNet's recipes)
word_lm_text=data/manifests/aishell_words_train.txt  # the same with AISHELL-1's word segmentation: the word
                        # 3-gram and its HLG (data/lang_word, decoded as hlg-word), as Kaldi's and icefall's recipes
# Shared options with AISHELL-1's defaults: 141,600 utterances of features, 14,326 dev utterances to tune on
: "${num_jobs:=8}"
: "${decode_jobs:=8}"
: "${avg:=5}"

stage1_prepare() {
  local corpus=(--download-dir "$download_dir" --base-url "$base_url")
  [ -n "$corpus_dir" ] && corpus=(--corpus-dir "$corpus_dir")
  run_stage data/.done/stage1.prepare ds2 prepare aishell data/manifests "${corpus[@]}"
}

. ../path.sh
. ../asr.sh
