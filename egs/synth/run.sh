#!/usr/bin/env bash
# Deep Speech 2 on an offline synthetic English corpus: espeak-ng reads fortune sentences with
# many voices, festival's two diphone voices and flite's two clustergen voices a share each; dev and test use sentences and
# espeak-ng voices that training never sees, and the set heldout has test sentences read by a
# synthesiser never heard (festival's HTS voice). Half of the training audio is resampled to higher
# (or a little lower) pitch and formants, and 30 % gets noise; reverberation and a telephone channel
# are options (egs/synth/ABLATION.md: what each did).
#
# Usage: ./run.sh [--stage N] [--stop-stage N] [--num-train N] [--overrides "train.epochs=2"] ...
# Stage 1 synthesises the corpus; stages 2-9 are the shared ones of egs/asr.sh (features, tokens,
# LMs, graphs, training, tuning, decoding, RESULTS.md). `rm -rf data exp` starts from scratch.
# A streaming model beside it (forward-only + row convolution; `ds2 transcribe --streaming`), in RESULTS.md too:
#   ./run.sh --stage 6 --config conf/ds2_streaming.yaml --tag streaming

set -euo pipefail
cd "$(dirname "$0")"

num_train=18000         # training utterances to synthesise
num_dev=200             # dev utterances (held-out sentences and voices)
num_test=300            # test utterances (held-out sentences and voices)
seed=0                  # seed of the corpus (texts, voices, speeds, pitches, noise)
festival_share=0.2      # share of training utterances spoken by festival's kal_diphone and ked_diphone
flite_share=0.2         # share of training utterances spoken by flite's rms and awb (never its slt)
noise_prob=0.3          # share of training utterances with white or brown noise (15-35 dB SNR)
reverb_prob=0.0         # share of training utterances in a random room (T60 0.2-0.8 s)
telephone_prob=0.0      # share of training utterances through a telephone channel (8 kHz, 300-3400 Hz)
resample_prob=0.5       # share of training utterances resampled: pitch and formants (tempo kept) by --resample
resample="0.95 1.3"     # range of that factor (above 1: higher, as a shorter vocal tract; the held-out voice is female)
vocode_prob=0.0         # share of training utterances re-synthesised by a pulse/noise vocoder (as HTS voices sound)
speed="140 200"         # speaking rate range, words a minute (175: a voice's normal rate)
pitch="25 75"           # pitch range on espeak-ng's 0-99 scale (50: a voice's own)
held_out_voice=festival/cmu_us_slt_arctic_hts  # never in training, dev or test: it reads test sentences
num_held_out=200        # utterances of the held-out voice (set heldout)

# What the shared stages read (see egs/asr.sh)
prefix=synth            # corpus name of the manifests that stage 1 writes (synth_*)
train_sets=train        # the training set of stage 1
dev_set=dev             # validation, averaging and LM-weight tuning (held-out sentences and voices)
test_sets="test heldout"  # decoded and scored besides dev_set
token_type=char-en      # char-en (28 characters), char or bpe (with --vocab-size N)
lm_text=data/manifests/synth_lm_text.txt  # the LMs' text (stage 1 writes it: no dev or test sentence)

stage1_prepare() {
  run_stage data/.done/stage1.prepare \
    ds2 prepare synth data/manifests --audio-dir data/audio --num-train "$num_train" \
      --num-dev "$num_dev" --num-test "$num_test" --seed "$seed" --num-jobs "$num_jobs" \
      --festival-share "$festival_share" --flite-share "$flite_share" --train-noise-prob "$noise_prob" --train-reverb-prob "$reverb_prob" \
      --train-telephone-prob "$telephone_prob" --train-resample-prob "$resample_prob" --resample $resample --train-vocode-prob "$vocode_prob" --speed $speed --pitch $pitch \
      --held-out-voice "$held_out_voice" --num-held-out "$num_held_out"
}

. ../path.sh
. ../asr.sh
