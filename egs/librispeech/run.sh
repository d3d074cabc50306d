#!/usr/bin/env bash
# Deep Speech 2 on LibriSpeech (OpenSLR 12): 960 hours of read English audiobooks; output characters
# (char-en) or BPE pieces (--token-type bpe --vocab-size N), word n-gram LMs, results as WER.
#
# Usage: ./run.sh [--stage N] [--stop-stage N] [--world-size GPUS] [--corpus-dir DIR] [--lm-source official|corpus] ...
# Stage 1 downloads the parts of train_sets, dev_set and test_sets into --download-dir (about 60 GB of
# archives for the 960 h, as much again untarred), or takes a copy on disk (--corpus-dir, the folder
# holding LibriSpeech/; a relative path is relative to egs/librispeech), writes their manifests, and
# downloads the LM resources of OpenSLR 11 (--lm-source official: the 3-gram.pruned.1e-7 ARPA for beam
# search and HLG, 34 MB, and the 4-gram for nbest-rescore, 1.3 GB; corpus: librispeech-lm-norm.txt.gz,
# 1.4 GB, normalised for KenLM n-grams pruned by --lm-prune). Stages 2-9 are the shared ones of egs/asr.sh.
# Training takes GPUs: --world-size N trains on N of them (torchrun, DDP), and several machines take
# --torchrun-args "--nnodes M --node-rank R --rdzv-endpoint HOST:29500" on each. The default model
# (conf/ds2.yaml) has the paper's size (88.8 M parameters); conf/ds2_medium.yaml (--config) is one GPU's
# day. `rm -rf exp data/{.done,manifests,fbank,lang_*,lm}` starts from scratch without downloading again.

set -euo pipefail
cd "$(dirname "$0")"

base_url=https://www.openslr.org/resources   # OpenSLR or a mirror: <URL>/12/<part>.tar.gz, the LM files <URL>/11/<name>
corpus_dir=                                   # a LibriSpeech copy to use instead of downloading (holds LibriSpeech/<part>/)
download_dir=data/download                    # where the archives are downloaded and untarred (the LM files in lm/)
lm_source=official                            # official: OpenSLR 11's ARPAs (3-gram.pruned.1e-7, 4-gram); corpus: KenLM on librispeech-lm-norm.txt
lm_prune="0 1 2"                              # lm_source=corpus: lmplz count thresholds per order (the last repeats), n-grams seen fewer times dropped

# What the shared stages read (see egs/asr.sh)
prefix=librispeech                            # corpus name of the manifests that stage 1 writes (librispeech_*)
train_sets="train-clean-100 train-clean-360 train-other-500"  # parts to train on (combined): the 960 h
dev_set=dev-clean                             # validation, averaging and LM-weight tuning
test_sets="dev-other test-clean test-other"   # decoded and scored besides dev_set
token_type=char-en                            # char-en (28 characters) or bpe (with --vocab-size N)
lm_text=data/manifests/librispeech_lm_text.txt.gz  # lm_source=corpus: the normalised LM corpus (stage 1 writes it)
# Shared options with LibriSpeech's defaults: 281,241 training utterances of features, 2,703 dev utterances
: "${num_jobs:=8}"
: "${decode_jobs:=8}"
: "${avg:=5}"

# the official ARPAs of orders lm_order (3) and rescore_lm_order (4)
official_arpas=(3-gram.pruned.1e-7.arpa.gz 4-gram.arpa.gz)

check_lm_source() {
  case "$lm_source" in
    official|corpus) ;;
    *) echo "$0: --lm-source is official or corpus, not '$lm_source'" >&2; exit 1 ;;
  esac
}

stage1_prepare() {
  check_lm_source
  local corpus=(--download-dir "$download_dir" --base-url "$base_url") parts lm=(--text)
  [ -n "$corpus_dir" ] && corpus=(--corpus-dir "$corpus_dir")
  parts=$(csv $train_sets $dev_set $test_sets)
  run_stage "data/.done/stage1.prepare.${parts//,/+}" \
    ds2 prepare librispeech data/manifests --parts "$parts" --num-jobs "$num_jobs" "${corpus[@]}"
  [ "$lm_source" = official ] && lm=(--arpa "${official_arpas[0]}" --arpa "${official_arpas[1]}")
  run_stage "data/.done/stage1.lm.$lm_source" ds2 prepare librispeech-lm data/manifests "${lm[@]}" \
    --download-dir "$download_dir/lm" --base-url "$base_url" --num-jobs "$num_jobs"
}

# once the options are parsed: stage 4 imports the official ARPAs; with lm_source=corpus it trains n-grams on lm_text
options_parsed() {
  check_lm_source
  if [ "$lm_source" = official ]; then
    lm_arpa=$download_dir/lm/${official_arpas[0]}
    rescore_lm_arpa=$download_dir/lm/${official_arpas[1]}
  fi
}

. ../path.sh
. ../asr.sh
