"""A word LM tells apart homophones that a character LM cannot: HLG over a word 3-gram decodes
公式 (formula) where HLG over a character 3-gram of the same text decodes 公事 (official business).

公式 and 公事 are both gōng shì: espeak-ng's `cmn-latn-pinyin` voice (the voice of
ds2/corpora/synth.py) speaks them as the same samples. A tiny bidirectional DeepSpeech2 is trained
here on espeak-ng audio of "A B 的 gōngshì" phrases, every utterance labelled once with 公式 and
once with 公事, so the model hears no difference and cannot learn one: at that syllable it gives
both characters about half of the probability. The LM decides.

The LM text is one word-segmented text: "研究 数学 的 公式" (study mathematics' formulas) twice,
"处理 日常 的 公事" (handle the daily official business) six times. A character 3-gram sees only
的公 before the homophone, and after 的公 事 is the more frequent: it writes 公事 after 研究数学的
too. A word 3-gram sees the two words before it, 数学 的, which only 公式 ever followed. Both graphs
are built by `build_graphs` with the same char-zh tokens, the word graph's lexicon spelling each
word with its characters.
"""

from __future__ import annotations

import io
import math
import subprocess

import numpy as np
import pytest
import soundfile as sf
import torch
from scipy.signal import resample_poly

from ds2.data.features import FeatureConfig, feature_settings
from ds2.decode.graph import GraphDecoder
from ds2.infer.frontend import FeatureFrontEnd
from ds2.lm.hlg import build_graphs
from ds2.lm.ngram import load_lm, train_ngram
from ds2.model import DeepSpeech2, ModelConfig
from ds2.text import CharTokenizer

FIRST, SECOND = ("研究", "处理"), ("数学", "日常")  # the phrases: FIRST SECOND 的 gōngshì
HOMOPHONES = ("公式", "公事")
RIGHT, WRONG = "研究数学的公式", "研究数学的公事"  # what the word LM and the character LM decode
CONTROL = "处理日常的公事"  # where both LMs choose 公事 (the word LM does not just prefer 公式)
LM_TEXT = ["研究 数学 的 公式"] * 2 + ["处理 日常 的 公事"] * 6
# (espeak-ng variant, speed, pitch) of the training speakers, and of the decoded phrases (a training
# speaker at another speed and pitch)
VOICES = [("m1", 175, 40), ("f2", 195, 60), ("m3", 185, 50), ("f4", 200, 55)]
TEST_VOICE = ("m1", 190, 45)
LM_MARGIN = 1.0  # nats by which each LM prefers its homophone, more than the acoustics prefer either
TOK = CharTokenizer.from_texts([f + s + "的" + h for f in FIRST for s in SECOND for h in HOMOPHONES], unk=True)
# 20 ms windows (the fbank default before 25 ms), which the model's training steps were sized for
FRONT_END = FeatureFrontEnd(feature_settings(FeatureConfig(kind="fbank", window=0.02), 16000))


def speak(text: str, variant: str, speed: int, pitch: int) -> np.ndarray:
    """16 kHz samples of espeak-ng reading `text` (as ds2/corpora/synth.py's Mandarin voice)."""
    wav = subprocess.run(["espeak-ng", "-v", f"cmn-latn-pinyin+{variant}", "-s", str(speed), "-p", str(pitch),
                          "--stdout", text], capture_output=True, check=True).stdout
    audio, rate = sf.read(io.BytesIO(wav), dtype="float32")
    g = np.gcd(rate, 16000)
    return resample_poly(audio, 16000 // g, rate // g).astype(np.float32)


def features(text: str, voice: tuple[str, int, int]) -> torch.Tensor:
    return torch.from_numpy(FRONT_END(speak(text, *voice)))


def train_model() -> DeepSpeech2:
    """The tiny bidirectional model, trained on every phrase in every training voice, each
    utterance once with each homophone's label (the same features both times)."""
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    examples = []
    for f in FIRST:
        for s in SECOND:
            spoken = f + s + "的" + HOMOPHONES[0]  # the audio: 公式 and 公事 are the same samples
            for voice in VOICES:
                feats = features(spoken, voice)
                examples += [(feats, torch.tensor(TOK.encode(f + s + "的" + h))) for h in HOMOPHONES]
    cfg = ModelConfig(conv_channels=[8], conv_kernels=[[11, 21]], conv_strides=[[3, 4]], rnn_layers=2,
                      rnn_hidden=64, bidirectional=True)
    model = DeepSpeech2(cfg, 80, TOK.vocab_size)
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    model.train()
    for _ in range(400):
        batch = [examples[i] for i in rng.choice(len(examples), 8, replace=False)]
        feats = torch.nn.utils.rnn.pad_sequence([b[0] for b in batch], batch_first=True)
        log_probs, out_lens = model(feats, torch.tensor([len(b[0]) for b in batch]))
        targets = torch.nn.utils.rnn.pad_sequence([b[1] for b in batch], batch_first=True)
        loss = torch.nn.functional.ctc_loss(log_probs.transpose(0, 1), targets, out_lens,
                                            torch.tensor([len(b[1]) for b in batch]))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval()


@pytest.fixture(scope="module")
def decoded(tmp_path_factory):
    """({RIGHT, CONTROL: the model's log-probs of TEST_VOICE reading it},
    {"char", "word": (lang dir of the 3-gram's graphs, the 3-gram)})."""
    model = train_model()
    with torch.no_grad():
        lps = {}
        for text in (RIGHT, CONTROL):
            feats = features(text, TEST_VOICE)
            lp, _ = model(feats[None], torch.tensor([len(feats)]))
            lps[text] = lp[0].numpy()
    d = tmp_path_factory.mktemp("word_lm")
    (d / "text.txt").write_text("\n".join(LM_TEXT) + "\n", encoding="utf-8")
    langs = {}
    for unit in ("char", "word"):
        arpa, binary = train_ngram(d / "text.txt", d / f"lm_{unit}", order=3, unit=unit)
        TOK.save(d / f"lang_{unit}")
        build_graphs(d / f"lang_{unit}", arpa, TOK)
        langs[unit] = (d / f"lang_{unit}", load_lm(binary))
    return lps, langs


def hlg(lang_dir) -> GraphDecoder:
    return GraphDecoder(lang_dir / "HLG.fst", TOK, lang_dir / "words.txt", lm_scale=1.0)


def test_the_lms_disagree_on_the_homophone_by_their_context(decoded):
    _, langs = decoded
    char_lm, word_lm = langs["char"][1], langs["word"][1]
    ln10 = math.log(10)

    def char_score(s):
        return char_lm.score(" ".join(s), bos=True, eos=True) * ln10

    def word_score(s):
        return word_lm.score(s, bos=True, eos=True) * ln10

    # after 的公 the character 3-gram prefers 事 (6 of 8), whatever came before; the word 3-gram
    # prefers 公式 after 数学 的 and 公事 after 日常 的: each by more than a nat (1.25 and more),
    # more than the acoustic model's doubt between 式 and 事 (below)
    assert char_score(WRONG) - char_score(RIGHT) > LM_MARGIN
    assert char_score(CONTROL) - char_score("处理日常的公式") > LM_MARGIN
    assert word_score("研究 数学 的 公式") - word_score("研究 数学 的 公事") > LM_MARGIN
    assert word_score("处理 日常 的 公事") - word_score("处理 日常 的 公式") > LM_MARGIN


def test_the_acoustic_model_cannot_tell_the_homophones_apart(decoded):
    lps, _ = decoded
    assert np.array_equal(speak(CONTROL, *TEST_VOICE), speak("处理日常的公式", *TEST_VOICE))  # the same samples
    shi = [TOK.encode(h[1])[0] for h in HOMOPHONES]  # 式, 事
    for text, lp in lps.items():
        probs = np.exp(lp)
        greedy = TOK.decode([k for i, k in enumerate(lp.argmax(1)) if i == 0 or k != lp[i - 1].argmax()])
        # everything but the homophone is heard right; the homophone is either character
        assert greedy in (text[:-1] + "式", text[:-1] + "事"), greedy
        frame = probs[:, shi].sum(1).argmax()  # the frame of the syllable shì
        p_shi = probs[frame, shi]
        # both about half (0.34-0.66 over six seeds): the acoustics prefer one by less than the LMs'
        # margin, so the LM decides
        assert p_shi.sum() > 0.6 and p_shi.min() > 0.25, (text, p_shi)
        assert abs(math.log(p_shi[0] / p_shi[1])) < LM_MARGIN, (text, p_shi)


def test_hlg_of_the_word_lm_decodes_the_homophone_the_character_lm_gets_wrong(decoded):
    lps, langs = decoded
    char_hlg, word_hlg = hlg(langs["char"][0]), hlg(langs["word"][0])
    assert char_hlg.decode(lps[RIGHT]) == WRONG
    assert word_hlg.decode(lps[RIGHT]) == RIGHT
    # the word LM chooses by the words before the homophone, not one homophone always
    assert word_hlg.decode(lps[CONTROL]) == CONTROL
    assert char_hlg.decode(lps[CONTROL]) == CONTROL
    # the word graph's lexicon spells the two words with their characters
    lexicon = (langs["word"][0] / "lexicon.txt").read_text(encoding="utf-8").splitlines()
    assert "公式 公 式" in lexicon and "公事 公 事" in lexicon
