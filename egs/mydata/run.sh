#!/usr/bin/env bash
# Deep Speech 2 on your own data: a Kaldi data directory or a CSV/TSV file per set, from manifests to
# RESULTS.md, with a model (conf/ds2.yaml) sized for a few hours of speech on one GPU or a CPU.
#
# Usage: ./run.sh --train DIR|FILE --dev DIR|FILE [--test DIR|FILE] [--token-type char-en|char|bpe] ...
# An input is a Kaldi data directory (wav.scp of paths or "command |" lines, text, optional segments and
# utt2spk) or a CSV/TSV file with the header audio_path,text[,speaker] (audio paths relative to the file).
# Relative paths given here, and those of wav.scp, are taken from egs/mydata. Audio of any sampling rate
# and number of channels is fine. Stage 1 checks every utterance: missing or unreadable audio, an empty
# transcript and characters the tokens cannot spell are counted, named in the log and dropped. Stages 2-9
# are the shared ones of egs/asr.sh. Without --test, dev is the one set decoded (its LM weights are tuned
# on it too). Other inputs or another --token-type later: `rm -rf data exp` first (stage 1 says so).

set -euo pipefail
cd "$(dirname "$0")"

train=                  # training data: a Kaldi data directory or a CSV/TSV file
dev=                    # dev data (validation, averaging, LM-weight tuning; decoded), as --train
test=                   # test data, decoded and scored besides dev (optional), as --train
prefix=mydata           # corpus name of the manifests: data/manifests/<prefix>_{recordings,supervisions}_<set>.jsonl.gz

# What the shared stages read (see egs/asr.sh)
train_sets=train        # the set that --train becomes
dev_set=dev             # the set that --dev becomes
test_sets=              # "test" when --test is given (options_parsed below), else none
token_type=char-en      # char-en (English a-z ' and space), char (any character), bpe (--vocab-size) or char-zh
lm_text=                # text of the n-gram LMs (text file or supervisions manifest); empty: the training text

stage1_prepare() {
  if [ -z "$train" ] || [ -z "$dev" ]; then
    echo "$0: give your data: --train DIR|FILE --dev DIR|FILE [--test DIR|FILE] (see $0 --help)" >&2
    exit 1
  fi
  local cmd=(ds2 prepare mydata data/manifests --train "$train" --dev "$dev") marker=data/.done/stage1.prepare
  [ -n "$test" ] && cmd+=(--test "$test")
  cmd+=(--prefix "$prefix" --token-type "$token_type")
  # the later stages would silently reuse what was made of other data
  if [ -f "$marker" ] && [[ "$(<"$marker")" != "$(printf '%q ' "${cmd[@]}")"* ]]; then
    echo "$0: data/ was prepared from other inputs ($(<"$marker")): rm -rf data exp to start again" >&2
    exit 1
  fi
  run_stage "$marker" "${cmd[@]}" --num-jobs "$num_jobs"
}

# once the options are parsed: a test set only when --test is given; the LMs' text defaults to the
# training transcripts, under the prefix of the options
options_parsed() {
  [ -z "$test" ] || test_sets=test
  [ -n "$lm_text" ] || lm_text=data/manifests/${prefix}_supervisions_train.jsonl.gz
}

. ../path.sh
. ../asr.sh
