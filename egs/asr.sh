#!/usr/bin/env bash
# The stages every corpus shares, sourced at the end of egs/<corpus>/run.sh. That recipe first sets
#   prefix       corpus name in its manifests: data/manifests/<prefix>_{recordings,supervisions}_<set>.jsonl.gz
#   train_sets   training set(s), e.g. "train" or "train-clean-100 train-clean-360"
#   dev_set      the set of validation, averaging and tuning (decoded too)
#   test_sets    the other sets decoded and scored, e.g. "test" or "test-clean test-other"
#   token_type   char-en (28 English characters), char-zh (Mandarin: every character of the training
#                text, and <unk>; the LMs are character n-grams), char (every character) or bpe
#   lm_text      text of the n-gram LMs (a text file, plain or gzipped, or a supervisions manifest), with no dev
#                or test sentence
# and may set (stage 4)
#   lm_arpa, rescore_lm_arpa   ready ARPA files (plain or gzipped) of orders lm_order and rescore_lm_order,
#                imported instead of trained on lm_text (e.g. LibriSpeech's official LMs); their words are
#                lower-cased when the tokens spell them so.
#   lm_prune     lmplz's count thresholds of the LMs trained on lm_text, e.g. "0 1 1" (a large lm_text)
#   word_lm_text (char-zh) word-segmented text, words between spaces, with no dev or test sentence: a word
#                n-gram of order lm_order (data/lm_word) and its graphs (data/lang_word: each word spelled by
#                its characters, the output joined without spaces), decoded as the method hlg-word
# its own options, and stage1_prepare: stage 1 (download and prepare), a run_stage call. What follows from
# the options (a test set only when --test is given, the LM files of --lm-source) a recipe sets in a
# function options_parsed, called once they are parsed, before anything reads them.
# Stages: 1 prepare, 2 features, 3 tokens, 4 n-gram LMs, 5 graphs (H, L, G, HLG), 6 train (and average),
#         7 tune LM weights on dev, 8 decode every set with every method, 9 RESULTS.md.
# Each stage writes a marker under data/.done or exp/.done and is skipped while it exists.

: "${stage:=1}"                   # first stage to run
: "${stop_stage:=9}"              # last stage to run
: "${num_jobs:=2}"                # parallel processes for features (and the corpus's stage 1)
: "${feature_kind:=fbank}"        # fbank (80 log-mel bins) or spectrogram (DS2's 161-bin log spectrogram)
: "${pitch_features:=false}"      # true: fbank with two pitch features (Mandarin's tones), into data/fbank_pitch
: "${feature_window:=}"           # seconds per analysis window; empty: 0.025 for fbank (what sherpa-onnx computes), 0.02 spectrogram
: "${vocab_size:=500}"            # BPE units, blank included (token_type bpe)
: "${config:=conf/ds2.yaml}"      # model and training options
: "${tag:=ds2}"                   # experiment name: exp/<tag>
: "${overrides:=}"                # extra config overrides, e.g. "model.rnn_hidden=64 train.spec_augment=true"
: "${lm_order:=3}"                # n-gram order of the LM of beam search and HLG
: "${rescore_lm_order:=4}"        # n-gram order of the larger LM of nbest-rescore
: "${methods:=greedy ctc-graph beam hlg nbest-rescore}"   # decoding methods of stages 7 and 8 (and hlg-word,
                                                          # added when the recipe sets word_lm_text)
: "${decode_jobs:=2}"             # processes that run the searches
: "${world_size:=1}"              # training processes on this machine (torchrun --nproc-per-node; DDP)
: "${torchrun_args:=--standalone}"  # several machines: "--nnodes 2 --node-rank R --rdzv-endpoint HOST:29500"
: "${avg:=2}"                     # average the last N epochs; decoding uses the average if it beats best.pt
: "${speed_perturb:=}"            # speed factors of extra copies of the training sets, e.g. "0.9 1.1" (3x the features)
: "${noise:=}"                    # MUSAN parts mixed into training batches, e.g. "music noise" (train.noise_prob, noise_snr)
: "${musan_dir:=}"                # a MUSAN copy (holds music/ noise/ speech/); empty: downloaded into data/download
: "${musan_base_url:=https://www.openslr.org/resources}"  # OpenSLR or a mirror of it: <URL>/17/musan.tar.gz

_egs="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
. "$_egs/../utils/stage.sh"
. "$_egs/../utils/parse_options.sh"
check_stages 1 9
if [ "$(type -t options_parsed)" = function ]; then options_parsed; fi

feature_name=$feature_kind; [ "$pitch_features" = true ] && feature_name=${feature_kind}_pitch
feature_args=(--kind "$feature_kind"); [ "$pitch_features" = true ] && feature_args+=(--pitch)
[ -n "$feature_window" ] && feature_args+=(--window "$feature_window")
feats=data/$feature_name
lang=data/lang_char; [ "$token_type" = bpe ] && lang=data/lang_bpe_$vocab_size
lm_unit=word; [ "$token_type" = char-zh ] && lm_unit=char  # text without spaces: character n-grams
lm=data/lm/lm_${lm_order}gram
rescore_lm=data/lm/lm_${rescore_lm_order}gram
exp=exp/$tag
read -ra train_list <<< "$train_sets"
train_name=$(IFS=+; echo "${train_list[*]}")  # several training sets are combined under this name
cuts() { echo "$feats/${prefix}_cuts_$1.jsonl.gz"; }
sups() { echo "data/manifests/${prefix}_supervisions_$1.jsonl.gz"; }
csv() { echo "$*" | tr ' ' ','; }
decode_sets=()  # NAME=PATH of dev and the test sets
for s in $dev_set $test_sets; do decode_sets+=(--cuts "$s=$(cuts "$s")"); done
# every method takes the LMs and graphs it needs from these and ignores the others
resources=(--lm "$lm.bin" --rescore-lm "$rescore_lm.bin" --lang-dir "$lang")
word_lm=data/lm_word/lm_${lm_order}gram
word_lang=data/lang_word
if [ -n "${word_lm_text:-}" ] && [[ " $methods " == *" hlg "* ]] && [[ " $methods " != *" hlg-word "* ]]; then
  methods="$methods hlg-word"
fi
# method_args NAME: the ds2 decode/tune options of a method of $methods: hlg-word is hlg over the word LM's graph
method_args() {
  if [ "$1" = hlg-word ]; then
    echo --method hlg --name hlg-word --lm "$lm.bin" --rescore-lm "$rescore_lm.bin" --lang-dir "$word_lang"
  else
    echo --method "$1" "${resources[@]}"
  fi
}

if stage_selected 1; then
  log "Stage 1: download and prepare the corpus into data/manifests"
  stage1_prepare
fi

if stage_selected 2; then
  log "Stage 2: compute $feature_name features of $train_sets $dev_set $test_sets into $feats"
  sp=""; [ -n "$speed_perturb" ] && sp=".sp$(echo $speed_perturb | tr -s ' ,' ',')"
  # the cut sets hold one speed_perturb setting's features: redoing them makes another setting's markers stale
  [ -f data/.done/stage2.features.$feature_name$sp ] || rm -f data/.done/stage2.{features,combine}.$feature_name{,.sp*}
  run_stage data/.done/stage2.features.$feature_name$sp \
    ds2 features data/manifests "$feats" --prefix "$prefix" "${feature_args[@]}" --num-jobs "$num_jobs" \
      --splits "$(csv $train_sets $dev_set $test_sets)" --stats-from "$(csv "${train_list[@]}")" \
      --speed-perturb "$speed_perturb"
  if [ "${#train_list[@]}" -gt 1 ]; then
    # shellcheck disable=SC2046
    run_stage data/.done/stage2.combine.$feature_name$sp \
      lhotse combine $(for s in "${train_list[@]}"; do cuts "$s"; done) "$(cuts "$train_name")"
  fi
  if [ -n "$noise" ]; then
    log "Stage 2: MUSAN ${noise//,/ }: recordings and their $feature_name features, the noise of training batches"
    musan=(--download-dir "${download_dir:-data/download}" --base-url "$musan_base_url")
    [ -n "$musan_dir" ] && musan=(--corpus-dir "$musan_dir")
    for part in ${noise//,/ }; do
      run_stage data/.done/stage2.musan.$part ds2 prepare musan data/manifests --parts "$part" "${musan[@]}"
      run_stage data/.done/stage2.musan.$part.$feature_name ds2 features data/manifests "$feats" --prefix musan \
        "${feature_args[@]}" --num-jobs "$num_jobs" --splits "$part" --recordings-only
    done
  fi
fi

if stage_selected 3; then
  log "Stage 3: $token_type tokens into $lang"
  text_args=(); [ "$token_type" = char-en ] || for s in "${train_list[@]}"; do text_args+=(--supervisions "$(sups "$s")"); done
  [ "$token_type" = bpe ] && text_args+=(--vocab-size "$vocab_size")
  run_stage data/.done/stage3.tokens.$token_type ds2 tokens "$lang" --type "$token_type" "${text_args[@]}"
fi

if stage_selected 4; then
  log "Stage 4: $lm_unit n-gram LMs (KenLM) of ${lm_arpa:-$lm_text} and ${rescore_lm_arpa:-$lm_text}"
  prune=(); [ -n "${lm_prune:-}" ] && prune=(--prune "$lm_prune")
  for order in $(printf '%s\n' "$lm_order" "$rescore_lm_order" | sort -u); do
    arpa=${lm_arpa:-}; [ "$order" = "$lm_order" ] || arpa=${rescore_lm_arpa:-}
    if [ -n "$arpa" ]; then
      run_stage "data/.done/stage4.lm.${order}gram.$(basename "$arpa")" \
        ds2 lm import "$arpa" data/lm --order "$order" --lang-dir "$lang" --dev-text "$(sups "$dev_set")"
    else
      run_stage data/.done/stage4.lm.${order}gram \
        ds2 lm train "$lm_text" data/lm --order "$order" --unit "$lm_unit" --dev-text "$(sups "$dev_set")" "${prune[@]}"
    fi
  done
  if [ -n "${word_lm_text:-}" ]; then
    run_stage data/.done/stage4.lm_word.${lm_order}gram \
      ds2 lm train "$word_lm_text" data/lm_word --order "$lm_order" --unit word "${prune[@]}"
  fi
fi

if stage_selected 5; then
  log "Stage 5: H, L, G and HLG graphs into $lang"
  run_stage data/.done/stage5.graph.$token_type.${lm_order}gram ds2 lm graph "$lang" "$lm.arpa"
  if [ -n "${word_lm_text:-}" ]; then
    run_stage data/.done/stage5.graph_word.$token_type.${lm_order}gram \
      ds2 lm graph "$lang" "$word_lm.arpa" --out-dir "$word_lang"
  fi
fi

if stage_selected 6; then
  log "Stage 6: train $exp on $train_sets${noise:+ (noise: MUSAN ${noise//,/ })}"
  set_args=()  # the noise of stage 2, then --overrides (which may set train.noise_prob, train.noise_snr)
  noise_cuts=$(for part in ${noise//,/ }; do echo "$feats/musan_cuts_$part.jsonl.gz"; done | paste -sd,)
  [ -n "$noise" ] && set_args+=(--set "train.noise_cuts=$noise_cuts")
  for o in $overrides; do set_args+=(--set "$o"); done
  train=(ds2 train)
  # shellcheck disable=SC2206
  [ "$world_size" -gt 1 ] && train=(torchrun $torchrun_args --nproc-per-node "$world_size" "$(command -v ds2)" train)
  # --resume: an interrupted run continues from its newest checkpoint, mid-epoch (they are atomic).
  run_stage exp/.done/stage6.train.$tag \
    "${train[@]}" --config "$config" --exp-dir "$exp" --resume --train-cuts "$(cuts "$train_name")" \
      --dev-cuts "$(cuts "$dev_set")" --stats "$feats/${prefix}_stats_$train_name.pt" --lang-dir "$lang" \
      "${set_args[@]}"
  if [ "$avg" -gt 1 ]; then
    run_stage exp/.done/stage6.average.$tag ds2 average "$exp" --num "$avg" --dev-cuts "$(cuts "$dev_set")"
  fi
fi

if stage_selected 7; then
  log "Stage 7: tune the LM weights of $methods on $dev_set (methods without weights have nothing to tune)"
  for method in $methods; do
    # shellcheck disable=SC2046  # method_args' words hold no spaces
    run_stage exp/.done/stage7.tune.$tag.$method ds2 tune "$exp" $(method_args "$method") \
      --cuts "$dev_set=$(cuts "$dev_set")" --num-jobs "$decode_jobs"
  done
fi

if stage_selected 8; then
  log "Stage 8: decode $dev_set $test_sets with: $methods"
  for method in $methods; do
    # shellcheck disable=SC2046
    run_stage exp/.done/stage8.decode.$tag.$method ds2 decode "$exp" $(method_args "$method") \
      "${decode_sets[@]}" --num-jobs "$decode_jobs"
  done
fi

if stage_selected 9; then
  log "Stage 9: RESULTS.md"
  ds2 results . --output RESULTS.md  # always rewritten: it only reads what the earlier stages left
fi
