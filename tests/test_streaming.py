"""Streaming equals the whole utterance: features, and forward-only models chunk by chunk.

Models are random (no training needed to compare two computations of the same function), with
batch-norm statistics and feature normalisation that are not the identity; the audio is real
espeak-ng speech of the tiny corpus.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from ds2.decode.greedy import collapse
from ds2.data.features import FeatureConfig, feature_settings, make_extractor
from ds2.infer.acoustic import TorchAcousticModel
from ds2.infer.frontend import FeatureFrontEnd
from ds2.infer.stream import StreamingRecognizer
from ds2.model import ModelConfig
from random_checkpoint import random_checkpoint
from streams import lockstep


def wavs(corpus, n=4):
    paths = sorted((corpus / "audio").glob("*.wav"))
    by_length = sorted(paths, key=lambda p: sf.info(str(p)).frames)
    return [by_length[0], by_length[len(by_length) // 2], by_length[-1]][:n]  # short, middle, longest


@pytest.mark.parametrize("kind", ["fbank", "spectrogram", "fbank-pitch"])
def test_features_match_lhotse_and_stream_exactly(tiny_corpus, kind):
    """The NumPy front-end gives Lhotse's features (what training used) and, fed in random pieces
    from 1 sample to 1 s, the same frames as on the whole utterance (pitch features included, whose
    windows reach further than the filterbank's)."""
    cfg = FeatureConfig(kind=kind.split("-")[0], pitch=kind.endswith("pitch"))
    extractor, fe = make_extractor(cfg), FeatureFrontEnd(feature_settings(cfg, 16000))
    rng = np.random.default_rng(0)
    for path in wavs(tiny_corpus):
        x, rate = sf.read(str(path), dtype="float32")
        whole = fe(x)
        ref = extractor.extract(x, rate)
        assert whole.shape == ref.shape
        # float64 here, float32 in Lhotse: differences only where the power is tiny (log of ~1e-9)
        assert np.abs(whole - ref).max() < (3e-2 if kind == "spectrogram" else 2e-3)
        assert np.median(np.abs(whole - ref)) < 1e-4
        stream, parts, i = fe.stream(), [], 0
        while i < len(x):
            n = int(rng.choice([1, 7, 160, 333, 3200, 16000]))
            parts.append(stream.accept(x[i:i + n]))
            i += n
        parts.append(stream.finish())
        streamed = np.concatenate(parts)
        assert streamed.shape == whole.shape
        np.testing.assert_allclose(streamed, whole, atol=1e-5)


def random_model(tmp_path, name: str, **model_options) -> TorchAcousticModel:
    """A random forward-only model (`random_checkpoint`), loaded for inference."""
    options = {"feature_norm": "global", "bidirectional": False, "rnn_hidden": 48, "rnn_layers": 2, **model_options}
    path = random_checkpoint(tmp_path / f"{name}.pt", ModelConfig(**options), seed=sum(map(ord, name)))
    return TorchAcousticModel(path)


MODELS = {
    # the ModelConfig default front-end: two convolutions, time strides 2 and 1, kernels 11
    "gru_two_convs": dict(lookahead=5),
    "gru_stride3": dict(conv_channels=[8], conv_kernels=[[11, 21]], conv_strides=[[3, 4]], lookahead=10),
    "lstm_three_convs": dict(rnn_type="lstm", conv_channels=[4, 4, 4], conv_kernels=[[5, 11], [3, 5], [7, 5]],
                             conv_strides=[[2, 2], [2, 1], [1, 2]], lookahead=2),
    "rnn_no_lookahead": dict(rnn_type="rnn", conv_channels=[8], conv_kernels=[[4, 11]], conv_strides=[[2, 2]],
                             lookahead=0),
    "gru_no_batch_norm": dict(conv_channels=[8], conv_kernels=[[11, 21]], conv_strides=[[3, 4]], lookahead=4,
                              batch_norm=False),
}


@pytest.mark.parametrize("name", list(MODELS))
def test_streaming_equals_one_forward_pass(tiny_corpus, tmp_path, name):
    """Chunks of random size (10 ms to 1 s): exactly the tokens of one forward pass on the whole
    utterance, and log-probs within 1e-4; the partial text only grows towards the final one."""
    am = random_model(tmp_path, name, **MODELS[name])
    rng = np.random.default_rng(1)
    for path in wavs(tiny_corpus):
        x, _ = sf.read(str(path), dtype="float32")
        whole = am.log_probs([am.front_end(x)])[0]
        rec = StreamingRecognizer(am)
        i, partials = 0, []
        while i < len(x):
            n = int(rng.integers(160, 16001))  # 10 ms to 1 s
            partials.append(rec.accept(x[i:i + n]))
            i += n
        streamed = rec.finish()
        assert streamed.shape == whole.shape
        assert np.abs(streamed - whole).max() < 1e-4
        assert (streamed.argmax(1) == whole.argmax(1)).all()
        final = am.tokenizer.decode(collapse(whole.argmax(1)))
        for a, b in zip(partials, partials[1:]):
            assert b.startswith(a[:-1]) or len(a) <= 1  # the partial grows (its last token may still merge)
        assert final.startswith(partials[-1][:-1])


def test_bidirectional_and_utterance_normalised_models_refuse_to_stream(tmp_path):
    for options, words in (({"bidirectional": True}, "bidirectional"), ({"feature_norm": "utterance"}, "utterance")):
        am = random_model(tmp_path, words, **options)
        assert not am.streaming and words in am.streaming_problem
        with pytest.raises(ValueError, match="cannot stream"):
            am.stream_start()


@pytest.mark.parametrize("name", ["gru_two_convs", "lstm_three_convs"])
def test_streams_batched_together_equal_each_alone(tiny_corpus, tmp_path, name):
    """Streams that start and end at different times, their steps run as one batch per round
    (run_steps, as ds2 serve does): each gets the whole-utterance log-probs (within 1e-4), and
    the forward passes really hold several streams."""
    am = random_model(tmp_path, name, **MODELS[name])
    audios = [sf.read(str(p), dtype="float32")[0] for p in wavs(tiny_corpus)]
    for quantum in (0, 4 * am.geometry.stride):  # chunks of 100 ms, or of one quantum of frames
        streamed, sizes = lockstep(am, audios, chunk=160 * quantum or 1600, quantum=quantum)
        for x, out in zip(audios, streamed):
            whole = am.log_probs([am.front_end(x)])[0]
            assert out.shape == whole.shape and np.abs(out - whole).max() < 1e-4
        assert sum(sizes) > len(sizes)  # some passes hold several streams
        if quantum:  # steps of equal size: all the streams that are running share each pass
            assert max(sizes) == len(audios)


@pytest.mark.parametrize("rates", [(48000, 16000), (44100, 16000), (22050, 16000), (8000, 16000), (16000, 16000)])
def test_stream_resampler_equals_resample_poly_on_the_whole_signal(rates):
    """ds2 serve resamples a stream as it arrives: pieces of random size (1 sample to 0.3 s) give
    scipy's resample_poly of the whole signal (what `ds2 transcribe` does to a file), same length."""
    import math

    from scipy.signal import resample_poly

    from ds2.infer.audio import StreamResampler

    rate_in, rate_out = rates
    rng = np.random.default_rng(rate_in)
    x = rng.normal(scale=0.3, size=2 * rate_in + 123).astype(np.float32)
    g = math.gcd(rate_in, rate_out)
    want = resample_poly(x, rate_out // g, rate_in // g)
    resampler, parts, i = StreamResampler(rate_in, rate_out), [], 0
    while i < len(x):
        n = int(rng.integers(1, int(0.3 * rate_in)))
        parts.append(resampler.accept(x[i:i + n]))
        i += n
    parts.append(resampler.finish())
    got = np.concatenate(parts)
    assert got.shape == want.shape and np.abs(got - want).max() < 1e-5
