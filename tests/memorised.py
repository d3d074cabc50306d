"""A forward-only (streamable) model that has memorised one espeak-ng sentence, for the inference
tests (transcribe, export, serve).

It spells TEXT back only when the audio reaches it at the right rate through the right front-end
(read at a wrong rate, CER 0.54-0.86), so a wrong resampling shows as a wrong text; trained on
shifted, padded, quieter and band-limited copies, it does not depend on where a microphone starts.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from scipy.signal import resample_poly

from ds2.config import ExperimentConfig, config_to_dict
from ds2.data.features import FeatureConfig, feature_settings
from ds2.infer.frontend import FeatureFrontEnd
from ds2.model import DeepSpeech2, ModelConfig
from ds2.score import score
from ds2.text import CharTokenizer

TEXT = "the quick brown fox jumps over the lazy dog"


def cer(hyp: str, ref: str = TEXT) -> float:
    return score({"u": ref}, {"u": hyp})[1].rate / 100


def memorise(root: Path) -> tuple[Path, Path]:
    """(experiment folder root/exp/memo, folder of audio files of TEXT): espeak_22050.wav,
    s16k.{wav,flac,ogg}, s8k.wav, stereo_44100.wav and broken.wav (not audio)."""
    audio = root / "audio"
    audio.mkdir(parents=True)
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(audio / "espeak_22050.wav"), TEXT], check=True)
    x, rate = sf.read(str(audio / "espeak_22050.wav"), dtype="float32")
    assert rate == 22050
    x16 = resample_poly(x, 320, 441).astype(np.float32)
    sf.write(str(audio / "s16k.wav"), x16, 16000)
    sf.write(str(audio / "s16k.flac"), x16, 16000)
    sf.write(str(audio / "s16k.ogg"), x16, 16000, format="OGG", subtype="VORBIS")
    sf.write(str(audio / "s8k.wav"), resample_poly(x16, 1, 2), 8000, subtype="PCM_16")
    x44 = resample_poly(x16, 441, 160)
    sf.write(str(audio / "stereo_44100.wav"), np.stack([x44, 0.6 * x44], axis=1), 44100)
    (audio / "broken.wav").write_bytes(b"RIFF....WAVEfmt garbage, not audio" * 10)

    # 20 ms windows, the fbank default before 25 ms: the tests of inference keep covering models trained
    # on them (each checkpoint carries its own window), and this sentence is memorised to the letter
    settings = feature_settings(FeatureConfig(kind="fbank", window=0.02), 16000)
    front_end = FeatureFrontEnd(settings)
    rng = np.random.default_rng(0)

    narrow = resample_poly(resample_poly(x16, 1, 2), 2, 1).astype(np.float32)  # telephone bandwidth

    def variant(i: int) -> np.ndarray:
        """The sentence as a microphone may deliver it: cut 0-30 ms into, 0-0.4 s of silence around it,
        at 0.3-1.0 of its level, a quarter of them band-limited to 4 kHz (a model of the one clean
        utterance spells it only when it is aligned as in training: the browser test's fake
        microphone starts a few ms into its file)."""
        cut = int(rng.integers(0, 480))
        before, after = (np.zeros(int(rng.integers(0, 6400)), np.float32) for _ in range(2))
        source = narrow if i % 4 == 3 else x16
        return np.concatenate([before, source[cut:] * np.float32(rng.uniform(0.3, 1.0)), after])

    variants = [x16] + [variant(i) for i in range(15)]
    feats = [torch.from_numpy(front_end(v)) for v in variants]
    tokenizer = CharTokenizer()
    torch.manual_seed(0)
    cfg = ModelConfig(feature_norm="global", bidirectional=False, conv_channels=[8], conv_kernels=[[11, 21]],
                      conv_strides=[[3, 4]], rnn_layers=2, rnn_hidden=96, lookahead=3)
    model = DeepSpeech2(cfg, 80, tokenizer.vocab_size)
    model.set_normalization(feats[0].mean(0), feats[0].std(0))
    target = torch.tensor(tokenizer.encode(TEXT))

    def batch():
        chosen = [feats[0]] + [feats[i] for i in rng.choice(np.arange(1, len(feats)), 3, replace=False)]
        return chosen, [target] * len(chosen)

    fit(model, batch, steps=400)
    exp = save_experiment(root / "exp" / "memo", model, cfg, tokenizer, settings)  # a recipe's layout: RECIPE/exp/TAG
    return exp, audio


def fit(model: DeepSpeech2, batch, steps: int, lr: float = 3e-3, stop_loss: float = 0.02) -> float:
    """Train `model` with CTC on `batch()`'s (feature matrices, target id tensors) for up to `steps`
    Adam steps, stopping after 100 once the loss is below `stop_loss`; returns the last loss."""
    opt = torch.optim.Adam(model.parameters(), lr)
    for step in range(steps):
        feats, targets = batch()
        lengths = torch.tensor([len(f) for f in feats])
        padded = torch.nn.utils.rnn.pad_sequence(feats, batch_first=True)
        model.train()
        log_probs, out_lens = model(padded, lengths)
        loss = torch.nn.functional.ctc_loss(log_probs.transpose(0, 1), torch.nn.utils.rnn.pad_sequence(
            targets, batch_first=True), out_lens, torch.tensor([len(t) for t in targets]))
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step >= 100 and loss.item() < stop_loss:
            break
    return loss.item()


def save_experiment(exp: Path, model: DeepSpeech2, cfg: ModelConfig, tokenizer, settings: dict) -> Path:
    """`model` as `ds2 train` leaves an experiment folder: config.yaml and checkpoints/best.pt."""
    (exp / "checkpoints").mkdir(parents=True)
    ecfg = ExperimentConfig(model=cfg)
    (exp / "config.yaml").write_text(json.dumps(config_to_dict(ecfg)))
    torch.save({"model": model.state_dict(), "config": config_to_dict(ecfg), "tokenizer": tokenizer.to_dict(),
                "num_features": model.num_features, "frame_shift": settings["frame_shift"], "features": settings},
               exp / "checkpoints" / "best.pt")
    return exp


def memorise_sentences(exp: Path, sentences: list[tuple[str, Path]], tokenizer, cfg: ModelConfig,
                       settings: dict, steps: int = 600, seed: int = 0) -> Path:
    """An experiment folder `exp` of a `cfg` model that has memorised each (text, 16 kHz audio file) of
    `sentences` through features of `settings` (each also 0.6 as loud, after 0.2 s of silence)."""
    front_end = FeatureFrontEnd(settings)
    feats, targets = [], []
    for text, path in sentences:
        x, rate = sf.read(str(path), dtype="float32")
        assert rate == 16000, path
        for variant in (x, np.concatenate([np.zeros(3200, np.float32), 0.6 * x])):
            feats.append(torch.from_numpy(front_end(variant)))
            targets.append(torch.tensor(tokenizer.encode(text)))
    torch.manual_seed(seed)
    model = DeepSpeech2(cfg, front_end.num_features, tokenizer.vocab_size)
    everything = torch.cat(feats)
    model.set_normalization(everything.mean(0), everything.std(0))
    loss = fit(model, lambda: (feats, targets), steps, stop_loss=0.01)
    assert loss < 0.1, f"the model did not memorise its {len(sentences)} sentences (CTC loss {loss:.3f})"
    return save_experiment(exp, model, cfg, tokenizer, settings)
