"""The synthetic corpus's engines (espeak-ng, festival's three voices, flite's two), its waveform
augmentations, and the voice held out of training."""

import dataclasses
import io
import subprocess

import numpy as np
import pytest
import soundfile as sf
import torch
from lhotse import SupervisionSet

from ds2.corpora.engines import ENGINES, EngineError, split_voice, to_16k
from ds2.corpora.synth import (HELD_OUT_SET, SynthOptions, Utterance, _synthesise, degrade, list_variants,
                               plan_utterances, prepare_synth, read_sentences)
from ds2.data.audio_augment import add_noise, resample, reverberate, telephone, vocode
from ds2.data.augment import FrequencyWarp
from ds2.data.features import FeatureConfig, make_extractor

SENTENCE = "the quick brown fox jumps over the lazy dog and runs away"  # 12 words
VOICES = ["en-us+m3", "en-gb-x-rp+f2", "festival/kal_diphone", "festival/ked_diphone",
          "festival/cmu_us_slt_arctic_hts", "flite/rms", "flite/awb"]
HTS = "festival/cmu_us_slt_arctic_hts"


def speak(voice, rate=1.0, pitch=1.0, text=SENTENCE):
    engine, name = split_voice(voice)
    return engine.synthesise(text, name, rate, pitch)


def f0(audio, sr=16000):
    """Median F0 (Hz) of the voiced 40 ms frames, by autocorrelation."""
    values = []
    for start in range(0, len(audio) - 640, 320):
        x = audio[start:start + 640].astype(np.float64)
        if np.sqrt(np.mean(x**2)) < 0.02:
            continue
        c = np.correlate(x, x, "full")[639:]
        lo, hi = sr // 400, sr // 60
        values.append(sr / (lo + int(np.argmax(c[lo:hi]))))
    return float(np.median(values))


def fbank(audio):
    return make_extractor(FeatureConfig()).extract(audio.astype(np.float32), 16000)


@pytest.mark.parametrize("voice", VOICES)
def test_each_engine_speaks_16k_audio_of_a_plausible_length(voice):
    audio = speak(voice)
    assert audio.dtype == np.float32 and audio.ndim == 1
    seconds = len(audio) / 16000  # the engines return 16 kHz (the HTS voice's 32 kHz resampled)
    assert 0.2 < seconds / 12 < 0.6, f"{voice}: {seconds:.2f} s for 12 words"
    assert 0.05 < np.max(np.abs(audio)) <= 1.0
    # faster speech is shorter
    assert len(speak(voice, rate=1.4)) < 0.85 * len(speak(voice, rate=0.8))


@pytest.mark.parametrize("voice", ["en-us+m3", "festival/kal_diphone", "festival/ked_diphone"])
def test_pitch_moves_the_voices_f0(voice):
    low, high = f0(speak(voice, pitch=0.7)), f0(speak(voice, pitch=1.4))
    assert high > 1.25 * low, (low, high)


def test_rate_and_pitch_one_are_each_engines_own_defaults(tmp_path):
    # speed and pitch perturbation at strength zero: the voice as its engine speaks it by default
    default = subprocess.run(["espeak-ng", "-v", "en-us+m3", "--stdout", SENTENCE], capture_output=True, check=True).stdout
    audio, sr = sf.read(io.BytesIO(default), dtype="float32")
    assert sr == 22050
    assert np.array_equal(fbank(speak("en-us+m3")), fbank(to_16k(audio, sr)))
    for voice in ("kal_diphone", "cmu_us_slt_arctic_hts"):
        subprocess.run(["text2wave", "-eval", f"(voice_{voice})", "-o", str(tmp_path / "a.wav")],
                       input=SENTENCE.encode(), capture_output=True, check=True)
        audio, sr = sf.read(tmp_path / "a.wav", dtype="float32")
        assert np.array_equal(fbank(speak(f"festival/{voice}")), fbank(to_16k(audio, sr))), voice


def test_festival_speaks_many_in_one_process_as_one_by_one():
    festival = ENGINES["festival"]
    requests = [(SENTENCE, "kal_diphone", 1.2, 0.8), ("a short one", "ked_diphone", 0.9, 1.3),
                (SENTENCE, "kal_diphone", 1.0, 1.0)]
    together = festival.synthesise_many(requests)
    for request, audio in zip(requests, together):
        assert np.array_equal(audio, festival.synthesise(*request))


def test_a_bad_festival_request_is_refused():
    with pytest.raises(EngineError, match="unknown voice"):
        ENGINES["festival"].synthesise("hello", "nobody_diphone")
    with pytest.raises(ValueError, match="unknown engine"):
        split_voice("sapi/david")


@pytest.mark.parametrize("voice", ["slt", "kal", "awb_time"])
def test_flite_never_speaks_the_held_out_speaker_or_its_other_voices(voice):
    with pytest.raises(EngineError, match="may not speak: one of rms, awb"):
        ENGINES["flite"].synthesise("hello", voice)


def test_each_augmentation_at_strength_zero_leaves_the_features_unchanged():
    audio = speak("en-us+m3")
    rng = np.random.default_rng(0)
    clean = fbank(audio)
    assert np.array_equal(fbank(add_noise(audio, float("inf"), rng)), clean)  # noise at no power
    assert np.array_equal(fbank(reverberate(audio, 0.0, rng)), clean)  # a room without reverberation
    assert np.array_equal(fbank(resample(audio, 1.0)), clean)  # resampled at speed factor 1
    utt = Utterance("u", "train", SENTENCE, "en-us+m3", 175, 50, None, 7)  # no noise, no room, no line
    assert np.array_equal(fbank(degrade(audio, utt)), clean)
    feats = torch.from_numpy(np.stack([clean, clean]))
    assert FrequencyWarp(0.0)(feats).equal(feats)
    # and each at strength above zero changes them
    assert not np.array_equal(fbank(add_noise(audio, 20.0, rng)), clean)
    assert not np.array_equal(fbank(reverberate(audio, 0.5, rng)), clean)
    assert not np.array_equal(fbank(telephone(audio)), clean)
    faster = resample(audio, 1.2)
    assert abs(len(faster) - len(audio) / 1.2) < 2 and f0(faster) > 1.1 * f0(audio)


@pytest.mark.parametrize("voice", ["en-us+m3", "festival/kal_diphone"])
def test_a_resampled_utterance_keeps_its_tempo_and_moves_its_pitch(voice, tmp_path):
    def spoken(factor):
        utt = Utterance(f"u{factor}", "train", SENTENCE, voice, 175, 50, None, 7, resample=factor)
        path = tmp_path / f"{utt.id}.wav"
        (_, samples), = _synthesise([(utt, str(path))])
        audio, rate = sf.read(path, dtype="float32")
        assert rate == 16000 and len(audio) == samples
        return audio

    plain, higher, lower = spoken(None), spoken(1.25), spoken(0.85)
    # the voice spoke 1/f as fast before the resampling by f: the duration is the drawn speed's
    assert abs(len(higher) / len(plain) - 1) < 0.1 and abs(len(lower) / len(plain) - 1) < 0.1
    assert f0(higher) > 1.15 * f0(plain) and f0(lower) < 0.92 * f0(plain)


def test_every_training_voice_speaks_a_speed_at_one_tempo(tmp_path):
    sentences = read_sentences()[:6]
    words = sum(len(t.split()) for t in sentences)

    def words_a_minute(voice):
        name = voice.replace("/", "_")
        jobs = [(Utterance(f"{name}{i}", "train", t, voice, 175, 50, None, 1), str(tmp_path / f"{name}{i}.wav"))
                for i, t in enumerate(sentences)]
        return 60 * words / (sum(n for _, n in _synthesise(jobs)) / 16000)

    espeak = np.mean([words_a_minute(v) for v in ("en-us+m3", "en-gb-x-rp+f2")])
    # festival's 1.18x and flite's rms 1.2x slower without TEMPO
    for voice in ("festival/kal_diphone", "festival/ked_diphone", "flite/rms", "flite/awb"):
        assert abs(words_a_minute(voice) / espeak - 1) < 0.08, voice


def test_reverberation_and_telephone_do_what_they_say():
    audio = speak("en-us+m3")
    wet = reverberate(audio, 0.8, np.random.default_rng(1))
    assert len(wet) == len(audio)
    # aligned with the direct path, at the input's power, and smeared: the envelope decays more slowly
    assert abs(np.mean(wet**2) / np.mean(audio**2) - 1) < 0.05
    assert np.corrcoef(wet, audio)[0, 1] > 0.3
    silent_after = np.mean(np.abs(audio[-800:])), np.mean(np.abs(wet[-800:]))
    assert silent_after[1] > silent_after[0]
    phone = telephone(audio)
    spectrum, freqs = np.abs(np.fft.rfft(phone)), np.fft.rfftfreq(len(phone), 1 / 16000)
    assert spectrum[freqs > 4000].sum() < 0.01 * spectrum.sum()  # nothing above the 8 kHz line's band
    assert spectrum[freqs < 200].sum() < 0.02 * spectrum.sum()


@pytest.mark.parametrize("voice", ["en-us+m3", "festival/kal_diphone"])
def test_the_vocoder_keeps_timing_pitch_and_formants_and_replaces_the_excitation(voice):
    audio = speak(voice)
    out = vocode(audio, np.random.default_rng(0))
    assert out.dtype == np.float32 and len(out) == len(audio)
    assert abs(np.mean(out**2) / np.mean(audio**2) - 1) < 0.05
    assert abs(f0(out) / f0(audio) - 1) < 0.08  # the pulses at the voice's F0
    # frame energies (the timing) and each loud frame's mel spectrum (the formants) follow the input's
    # (the frames 37 later, another sound, as far as chance takes them: about 0.2) ...
    a, b = fbank(audio), fbank(out)
    assert np.corrcoef(a.mean(axis=1), b.mean(axis=1))[0, 1] > 0.9
    loud = a.mean(axis=1) > np.median(a.mean(axis=1))
    assert np.mean([np.corrcoef(x, y)[0, 1] for x, y in zip(a[loud], b[loud])]) > 0.85
    assert np.mean([np.corrcoef(x, y)[0, 1] for x, y in zip(a[loud], np.roll(b, 37, axis=0)[loud])]) < 0.5
    # ... but the waveform is another one: the voice's own excitation is gone
    assert abs(np.corrcoef(audio, out)[0, 1]) < 0.3


def test_an_augmentations_share_changes_no_other_draw():
    sentences, variants = read_sentences(), list_variants()
    base = SynthOptions(num_train=400, num_dev=20, num_test=20, festival_share=0.3)
    plain = plan_utterances(sentences, variants, base)
    wet = plan_utterances(sentences, variants, dataclasses.replace(base, train_reverb_prob=0.5, train_telephone_prob=0.5,
                                                                   train_resample_prob=0.5, train_vocode_prob=0.5))
    assert [dataclasses.replace(u, reverb_t60=None, telephone=False, resample=None, vocoded=False) for u in wet] == plain
    train = [u for u in wet if u.split == "train"]
    assert 0.4 < np.mean([u.reverb_t60 is not None for u in train]) < 0.6
    assert 0.4 < np.mean([u.telephone for u in train]) < 0.6
    assert 0.4 < np.mean([u.resample is not None for u in train]) < 0.6
    assert 0.4 < np.mean([u.vocoded for u in train]) < 0.6
    assert all(u.reverb_t60 is None and not u.telephone for u in wet if u.split != "train")
    # festival takes its share of training and leaves the espeak-ng utterances as they were planned
    espeak_only = plan_utterances(sentences, variants, dataclasses.replace(base, festival_share=0.0))
    voices = [u.voice for u in plain if u.split == "train"]
    assert 0.25 < np.mean([v.startswith("festival/") for v in voices]) < 0.35
    assert all(a == b for a, b in zip(plain, espeak_only) if not a.voice.startswith("festival/"))
    # flite takes its share from espeak-ng's utterances: festival's stay, and only the voice changes
    with_flite = plan_utterances(sentences, variants, dataclasses.replace(base, flite_share=0.2))
    flite = [u for u in with_flite if u.voice.startswith("flite/")]
    assert {u.voice for u in flite} == {"flite/rms", "flite/awb"} and {u.split for u in flite} == {"train"}
    assert 0.15 < len(flite) / len(voices) < 0.25
    assert [dataclasses.replace(u, voice="") for u in with_flite] == [dataclasses.replace(u, voice="") for u in plain]
    assert all(a == b for a, b in zip(with_flite, plain) if not a.voice.startswith("flite/"))


def test_the_held_out_voice_is_never_planned_outside_its_set():
    opts = SynthOptions(num_train=14000, num_dev=200, num_test=300, festival_share=0.3, held_out_voice=HTS)
    utts = plan_utterances(read_sentences(), list_variants(), opts)
    assert {u.voice for u in utts if u.split == HELD_OUT_SET} == {HTS}
    assert HTS not in {u.voice for u in utts if u.split != HELD_OUT_SET}
    test_texts = [u.text for u in utts if u.split == "test"]
    assert [u.text for u in utts if u.split == HELD_OUT_SET] == test_texts[:200]
    with pytest.raises(ValueError, match="is one of the training voices"):
        SynthOptions(festival_share=0.3, held_out_voice="festival/kal_diphone")


@pytest.mark.parametrize("args, message", [
    (["--festival-share", "1.5"], "festival_share must be in"),
    (["--held-out-voice", "festival/nobody"], "festival has no voice nobody"),
    (["--held-out-voice", "sapi/david"], "unknown engine 'sapi'"),
    (["--festival-voices", "kal_diphone,rab_diphone", "--festival-share", "0.2"], "festival has no voice rab_diphone"),
    (["--language", "zh", "--festival-share", "0.2"], "festival's voices speak English only"),
    (["--language", "zh", "--flite-share", "0.2"], "flite's voices speak English only"),
    (["--festival-share", "0.6", "--flite-share", "0.5"], "add up to more than all of training"),
])
def test_bad_corpus_options_are_one_line_errors_before_any_work(tmp_path, args, message):
    from click.testing import CliRunner

    from ds2.cli import main

    result = CliRunner().invoke(main, ["prepare", "synth", str(tmp_path / "m"), *args])
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / "m").exists()


@pytest.fixture(scope="module")
def engines_corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("engines")
    opts = SynthOptions(num_train=24, num_dev=4, num_test=6, num_dev_voices=4, num_test_voices=4, seed=5,
                        festival_share=0.4, flite_share=0.3, train_reverb_prob=0.3, train_telephone_prob=0.3, train_resample_prob=0.3,
                        held_out_voice=HTS,
                        num_held_out=4)
    prepare_synth(root / "manifests", root / "audio", opts, num_jobs=2)
    return root


def test_the_held_out_engine_never_appears_in_training_manifests(engines_corpus):
    def speakers(split):
        return [s.speaker for s in SupervisionSet.from_file(engines_corpus / "manifests" / f"synth_supervisions_{split}.jsonl.gz")]

    train = speakers("train")
    assert {"festival/kal_diphone", "festival/ked_diphone"} <= set(train)
    assert {s for s in train if s.startswith("flite/")} == {"flite/rms", "flite/awb"}
    for split in ("train", "dev", "test"):  # neither the HTS voice nor flite's voice of its speaker
        assert not [s for s in speakers(split) if "hts" in s or "slt" in s], split
    assert speakers(HELD_OUT_SET) == [HTS] * 4
    sups = list(SupervisionSet.from_file(engines_corpus / "manifests" / "synth_supervisions_train.jsonl.gz"))
    assert any(s.custom["reverb_t60"] for s in sups) and any(s.custom["telephone"] for s in sups)
    assert any(s.custom["resample"] for s in sups)
    for sup in SupervisionSet.from_file(engines_corpus / "manifests" / f"synth_supervisions_{HELD_OUT_SET}.jsonl.gz"):
        info = sf.info(engines_corpus / "audio" / f"{sup.id}.wav")
        assert info.samplerate == 16000 and 0.2 < info.duration / len(sup.text.split()) < 0.7


@pytest.mark.parametrize("engine, share, install", [("festival", "--festival-share", "apt-get install -y festival festvox-"),
                                                    ("flite", "--flite-share", "apt-get install -y flite")])
def test_a_missing_engine_stops_stage_1_with_one_line_naming_its_apt_package(monkeypatch, tmp_path, engine, share,
                                                                             install):
    import shutil

    from click.testing import CliRunner

    from ds2.cli import main

    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name: None if name == engine else real(name))
    result = CliRunner().invoke(main, ["prepare", "synth", str(tmp_path / "m"), "--num-train", "4", "--num-dev", "2",
                                       "--num-test", "2", share, "0.5"])
    assert result.exit_code == 1 and result.output.strip().splitlines()[-1].startswith(f"Error: {engine} is not installed")
    assert install in result.output and "Traceback" not in result.output, result.output
    assert not (tmp_path / "m").exists() or not list((tmp_path / "m").iterdir())
