"""Never a silently wrong number: bad input to decoding, features, LMs and the recipe either
gets a correct result or stops with one line naming the problem (no traceback).

Every test runs the real `ds2` command (or run.sh) as a subprocess on the tiny espeak-ng corpus.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from lhotse import AudioSource, CutSet, Recording, RecordingSet, SupervisionSegment, SupervisionSet
from lhotse.utils import fastcopy

from ds2.precision import resolve_dtype
from ds2.score import parse_wer_file
from ds2.atomic import save_atomic
from ds2.checkpoint import load_checkpoint
from ds2.config import resolve_config
from ds2.lm.ngram import train_ngram
from test_train_scale import train_args, write_config

DS2 = str(Path(sys.executable).with_name("ds2"))
REPO = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}


def ds2(*args, ok: bool = True, cwd: Path | None = None) -> subprocess.CompletedProcess:
    out = subprocess.run([DS2, *map(str, args)], capture_output=True, text=True, env=ENV, timeout=300, cwd=cwd)
    if ok:
        assert out.returncode == 0, out.stderr[-3000:]
    return out


def assert_one_line_error(out: subprocess.CompletedProcess, *needles: str):
    assert out.returncode != 0, out.stdout + out.stderr
    assert "Traceback" not in out.stderr, out.stderr[-3000:]
    for needle in needles:
        assert needle in out.stderr, out.stderr[-3000:]


@pytest.fixture(scope="module")
def exp(tiny_corpus, lang, tmp_path_factory) -> Path:
    """A tiny model trained for one epoch (a few seconds): something to decode with."""
    d = tmp_path_factory.mktemp("decode")
    ds2(*train_args(tiny_corpus, lang, d / "exp", write_config(d / "conf.yaml", max_cuts=8)))
    return d / "exp"


def recogs_ids(decode_dir: Path) -> list[str]:
    return sorted({line.split(":\t")[0] for line in (decode_dir / "recogs.txt").read_text().splitlines()})


def test_every_cut_is_decoded_and_unspellable_or_undecodable_ones_are_counted(tiny_corpus, exp, tmp_path):
    cuts = CutSet.from_file(tiny_corpus / "fbank/synth_cuts_test.jsonl.gz").to_eager()
    items = list(cuts)
    unspellable = [fastcopy(c, supervisions=[fastcopy(s, text="caf\u00e9 n\u00b042 " + s.text) for s in c.supervisions])
                   for c in items[:2]]
    broken = fastcopy(items[2], features=fastcopy(items[2].features, storage_path=str(tmp_path / "gone")))
    mixed = CutSet.from_cuts([*unspellable, broken, *items[3:]])
    mixed.to_file(tmp_path / "mixed.jsonl.gz")
    all_bad = CutSet.from_cuts([fastcopy(c, supervisions=[fastcopy(s, text="\u4f60\u597d " + s.text)
                                                          for s in c.supervisions]) for c in items])
    all_bad.to_file(tmp_path / "allbad.jsonl.gz")
    out = ds2("decode", exp, "--cuts", f"mixed={tmp_path / 'mixed.jsonl.gz'}",
              "--cuts", f"allbad={tmp_path / 'allbad.jsonl.gz'}", "--num-jobs", "1")
    assert "Traceback" not in out.stderr

    mixed_dir = exp / "decode_mixed_greedy"
    assert recogs_ids(mixed_dir) == sorted(c.id for c in mixed)  # all of them, the bad ones too
    wer_txt = (mixed_dir / "wer.txt").read_text()
    assert "references the tokenizer cannot spell: 2 " in wer_txt, wer_txt
    assert "cuts that could not be decoded: 1 " in wer_txt and broken.id in wer_txt, wer_txt
    ref_words = sum(len(s.text.split()) for c in mixed for s in c.supervisions)
    wer = parse_wer_file(mixed_dir / "wer.txt")["WER"]
    assert wer.ref == ref_words  # the undecodable cut's words are in the total ...
    assert wer.dels >= len(broken.supervisions[0].text.split())  # ... as deletions
    assert "1 of 8 cuts could not be decoded" in out.stderr and "cannot spell (scored as written)" in out.stderr

    allbad = parse_wer_file(exp / "decode_allbad_greedy/wer.txt")["WER"]
    assert allbad.ref == sum(len(s.text.split()) for c in all_bad for s in c.supervisions) > 0
    assert allbad.rate > 0  # not "%WER 0.00 [ 0 / 0 ]"
    assert recogs_ids(exp / "decode_allbad_greedy") == sorted(c.id for c in all_bad)
    assert "references the tokenizer cannot spell: 8 " in (exp / "decode_allbad_greedy/wer.txt").read_text()


def test_log_prob_cache_is_keyed_by_the_cuts_file_not_the_set_name(tiny_corpus, exp):
    test_cuts, dev_cuts = (tiny_corpus / f"fbank/synth_cuts_{s}.jsonl.gz" for s in ("test", "dev"))
    ds2("decode", exp, "--cuts", f"eval={test_cuts}", "--num-jobs", "1")
    assert recogs_ids(exp / "decode_eval_greedy") == sorted(c.id for c in CutSet.from_file(test_cuts))
    out = ds2("decode", exp, "--cuts", f"eval={dev_cuts}", "--cuts", f"dev={dev_cuts}", "--num-jobs", "1")
    assert recogs_ids(exp / "decode_eval_greedy") == sorted(c.id for c in CutSet.from_file(dev_cuts))
    # The same numbers as dev decoded under its own name (the first line is the header with the set name).
    eval_lines = (exp / "decode_eval_greedy/wer.txt").read_text().splitlines()[1:]
    dev_lines = (exp / "decode_dev_greedy/wer.txt").read_text().splitlines()[1:]
    assert eval_lines == dev_lines
    assert "log-probs from" not in out.stderr  # eval's cached log-probs (of test) were not used


def test_a_cut_set_computed_with_a_relative_folder_is_read_from_any_folder(tiny_corpus, exp, tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    ds2("features", tiny_corpus / "manifests", "fbank", "--prefix", "synth", "--splits", "test", "-j", "1",
        cwd=tmp_path / "a")
    cuts = tmp_path / "a/fbank/synth_cuts_test.jsonl.gz"
    assert all(Path(c.features.storage_path).is_absolute() for c in CutSet.from_file(cuts))
    out = ds2("decode", exp, "--cuts", f"moved={cuts}", "--num-jobs", "1", cwd=tmp_path / "b")
    assert "could not be decoded" not in out.stderr, out.stderr
    assert recogs_ids(exp / "decode_moved_greedy") == sorted(c.id for c in CutSet.from_file(cuts))
    ds2("shar", cuts, "shar", "--shard-size", "4", cwd=tmp_path / "b")
    shards = CutSet.from_shar(in_dir=tmp_path / "b/shar").to_eager()
    assert len(shards) == len(CutSet.from_file(cuts)) and shards[0].load_features().shape[0] > 0


def test_a_set_of_which_no_cut_can_be_read_stops_train_tune_and_decode(tiny_corpus, lang, exp, tmp_path):
    """Cuts naming feature files relative to another folder (as ds2 features wrote them before its
    paths were absolute): nothing can be read, so no score, no tuned weights, no best.pt."""
    lost = CutSet.from_cuts(fastcopy(c, features=fastcopy(c.features, storage_path=f"fbank/{Path(c.features.storage_path).name}"))
                            for c in CutSet.from_file(tiny_corpus / "fbank/synth_cuts_dev.jsonl.gz"))
    lost.to_file(tmp_path / "lost.jsonl.gz")
    out = ds2("decode", exp, "--cuts", f"lost={tmp_path / 'lost.jsonl.gz'}", "--num-jobs", "1", ok=False)
    assert_one_line_error(out, "lost: none of the 8 cuts", "could not be decoded", "ds2 features")
    assert not (exp / "decode_lost_greedy").exists()
    (tmp_path / "text.txt").write_text("the cat sat on the mat\na dog ran in the park\n" * 5)
    _, lm = train_ngram(tmp_path / "text.txt", tmp_path / "lm", order=2)
    out = ds2("tune", exp, "--method", "beam", "--lm", lm, "--cuts", f"lost={tmp_path / 'lost.jsonl.gz'}",
              "--num-jobs", "1", "--output", tmp_path / "beam.json", ok=False)
    assert_one_line_error(out, "could not be decoded")
    assert not (tmp_path / "beam.json").exists()
    args = train_args(tiny_corpus, lang, tmp_path / "exp", write_config(tmp_path / "conf.yaml", max_cuts=8))
    args[args.index("--dev-cuts") + 1] = tmp_path / "lost.jsonl.gz"
    out = ds2(*args, ok=False)
    assert_one_line_error(out, "dev: no cut is left to validate on", "8 features not found", "ds2 features")
    assert not (tmp_path / "exp/checkpoints/best.pt").exists()
    # the files are there but hold no features: training stops at the first validation
    for path in {c.features.storage_path for c in lost}:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(os.urandom(4000))
    out = ds2(*args, ok=False, cwd=tmp_path)
    assert_one_line_error(out, "dev: not one cut could be evaluated", "ds2 features")
    assert not (tmp_path / "exp/checkpoints/best.pt").exists()
    out = ds2("average", exp, "--num", "1", "--dev-cuts", tmp_path / "lost.jsonl.gz", ok=False, cwd=tmp_path)
    assert_one_line_error(out, "dev: not one cut could be evaluated")
    assert not (exp / "checkpoints/averaged.json").exists()


def test_decoding_precision_follows_the_device_not_the_training_dtype(tiny_corpus, exp, tmp_path):
    ckpt = load_checkpoint(exp / "checkpoints/best.pt")
    ckpt["config"]["train"]["dtype"] = "bfloat16"
    bf16 = tmp_path / "exp_bf16"
    save_atomic(ckpt, bf16 / "checkpoints/best.pt")
    out = ds2("decode", bf16, "--cuts", f"t={tiny_corpus / 'fbank/synth_cuts_test.jsonl.gz'}", "--num-jobs", "1")
    expected, _ = resolve_dtype("auto", torch.device("cpu"))
    assert f"decoding in {expected} (auto: " in out.stderr and "trained in bfloat16" in out.stderr, out.stderr


def test_missing_checkpoint_bad_lm_and_unreadable_corpus_are_one_line_errors(tiny_corpus, exp, tmp_path):
    test_cuts = tiny_corpus / "fbank/synth_cuts_test.jsonl.gz"
    (tmp_path / "empty_exp").mkdir()
    assert_one_line_error(ds2("decode", tmp_path / "empty_exp", "--cuts", f"t={test_cuts}", ok=False),
                          "no checkpoint")
    not_lm = tmp_path / "words.txt"
    not_lm.write_text("this is a text file\nnot a language model\n")
    assert_one_line_error(ds2("decode", exp, "--method", "beam", "--lm", not_lm, "--cuts", f"t={test_cuts}", ok=False),
                          "is not a KenLM language model")

    manifests = tmp_path / "manifests"
    manifests.mkdir()
    recs, sups = [], []
    for i in range(3):
        junk = tmp_path / f"junk{i}.wav"
        junk.write_bytes(os.urandom(3000))
        recs.append(Recording(id=f"junk{i}", sources=[AudioSource(type="file", channels=[0], source=str(junk))],
                              sampling_rate=16000, num_samples=16000, duration=1.0))
        sups.append(SupervisionSegment(id=f"junk{i}", recording_id=f"junk{i}", start=0, duration=1.0, text="a b"))
    RecordingSet.from_recordings(recs).to_file(manifests / "junk_recordings_train.jsonl.gz")
    SupervisionSet.from_segments(sups).to_file(manifests / "junk_supervisions_train.jsonl.gz")
    out = ds2("features", manifests, tmp_path / "fbank", "--prefix", "junk", "--splits", "train", "-j", "1", ok=False)
    assert_one_line_error(out, "none of the 3 cuts has readable audio")
    assert not (tmp_path / "fbank/junk_cuts_train.jsonl.gz").exists()
    assert not (tmp_path / "fbank/junk_feats_train").exists()


def test_a_wav_shorter_than_its_header_says_is_skipped_by_features_not_read_short(tiny_corpus, tmp_path):
    """Manifests written elsewhere (not by `ds2 prepare`) naming a WAV cut to a third of its bytes:
    soundfile reads what is there, so only the header tells; its cut is left out and named."""
    recs = RecordingSet.from_file(tiny_corpus / "manifests/synth_recordings_test.jsonl.gz").to_eager()
    sups = SupervisionSet.from_file(tiny_corpus / "manifests/synth_supervisions_test.jsonl.gz").to_eager()
    kept = list(recs)[:3]
    cut_short = tmp_path / "cut_short.wav"
    data = Path(kept[0].sources[0].source).read_bytes()
    cut_short.write_bytes(data[: len(data) // 3])
    kept[0] = fastcopy(kept[0], sources=[fastcopy(kept[0].sources[0], source=str(cut_short))])
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    RecordingSet.from_recordings(kept).to_file(manifests / "x_recordings_test.jsonl.gz")
    SupervisionSet.from_segments([s for s in sups if s.recording_id in {r.id for r in kept}]).to_file(
        manifests / "x_supervisions_test.jsonl.gz")
    out = ds2("features", manifests, tmp_path / "fbank", "--prefix", "x", "--splits", "test", "-j", "1")
    assert f"skipping {kept[0].id}: unreadable audio" in out.stderr and "is truncated (header " in out.stderr, out.stderr
    cuts = CutSet.from_file(tmp_path / "fbank/x_cuts_test.jsonl.gz")
    assert sorted(c.recording_id for c in cuts) == sorted(r.id for r in kept[1:])


def test_8khz_and_44khz_stereo_audio_is_resampled_and_mixed_down(tiny_corpus, tmp_path):
    wav = Path(RecordingSet.from_file(tiny_corpus / "manifests/synth_recordings_test.jsonl.gz")[0].sources[0].source)
    audio, sr = sf.read(wav, dtype="float32")
    assert sr == 16000
    narrow, wide = tmp_path / "narrow8k.wav", tmp_path / "stereo44k.wav"
    sf.write(narrow, audio[::2], 8000)  # every other sample: the same speech at 8 kHz
    t44 = np.interp(np.arange(int(len(audio) * 44100 / 16000)) * 16000 / 44100, np.arange(len(audio)), audio)
    sf.write(wide, np.stack([t44, 0.5 * t44], axis=1).astype(np.float32), 44100)
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    recs = [Recording.from_file(p, recording_id=p.stem) for p in (narrow, wide)]
    assert [(r.sampling_rate, r.num_channels) for r in recs] == [(8000, 1), (44100, 2)]
    sups = [SupervisionSegment(id=r.id, recording_id=r.id, start=0, duration=r.duration, text="hello world")
            for r in recs]
    RecordingSet.from_recordings(recs).to_file(manifests / "odd_recordings_train.jsonl.gz")
    SupervisionSet.from_segments(sups).to_file(manifests / "odd_supervisions_train.jsonl.gz")
    out = ds2("features", manifests, tmp_path / "fbank", "--prefix", "odd", "--splits", "train", "-j", "1")
    assert "unreadable audio" not in out.stderr and "Traceback" not in out.stderr
    cuts = list(CutSet.from_file(tmp_path / "fbank/odd_cuts_train.jsonl.gz"))
    assert sorted(s.recording_id for c in cuts for s in c.supervisions) == ["narrow8k", "stereo44k"]  # once each
    for cut in cuts:
        feats = cut.load_features()
        assert feats.shape[1] == 80 and abs(feats.shape[0] - 100 * cut.duration) <= 2 and np.isfinite(feats).all()
    assert torch.load(tmp_path / "fbank/odd_stats_train.pt")["mean"].shape == (80,)


def test_lm_of_too_little_text_and_graph_of_an_empty_arpa_are_refused(lang, tmp_path):
    (tmp_path / "empty.txt").write_text("\n\n")
    (tmp_path / "one.txt").write_text("just one sentence\n")
    assert_one_line_error(ds2("lm", "train", tmp_path / "empty.txt", tmp_path / "lm", ok=False), "holds no sentence")
    assert_one_line_error(ds2("lm", "train", tmp_path / "one.txt", tmp_path / "lm", ok=False),
                          "holds only one sentence")
    assert not (tmp_path / "lm/lm_3gram.arpa").exists()
    arpa = tmp_path / "empty.arpa"
    arpa.write_text("\\data\\\nngram 1=3\n\n\\1-grams:\n-1.0\t<unk>\t0\n0\t<s>\t-0.5\n-0.5\t</s>\t0\n\n\\end\\\n")
    graph_lang = tmp_path / "lang"
    shutil.copytree(lang, graph_lang)
    assert_one_line_error(ds2("lm", "graph", graph_lang, arpa, ok=False), "has no words besides <s>, </s> and <unk>")
    assert not (graph_lang / "HLG.fst").exists()


def test_run_sh_rejects_bad_stage_stray_arguments_and_bad_tag_and_its_help_example_works(tmp_path):
    recipe = tmp_path / "egs/synth"  # a copy: a check that failed to stop it must not touch egs/synth/data
    recipe.mkdir(parents=True)
    shutil.copy(REPO / "egs/synth/run.sh", recipe / "run.sh")
    for name in ("asr.sh", "path.sh"):
        shutil.copy(REPO / "egs" / name, tmp_path / "egs" / name)
    shutil.copytree(REPO / "utils", tmp_path / "utils")

    def run_sh(*args):
        return subprocess.run(["bash", "run.sh", *args], cwd=recipe, env=ENV, capture_output=True, text=True,
                              timeout=60)

    cases = {("--stage", "abc"): "option --stage takes an integer, not 'abc'",
             ("--stop-stage=9x",): "option --stop-stage takes an integer, not '9x'",
             ("--stop-stage", "0", "stray"): "unexpected argument 'stray'",
             ("--stop-stage", "0", "--tag", "../elsewhere"): "--tag '../elsewhere' must be a plain name"}
    for args, message in cases.items():
        out = run_sh(*args)
        assert out.returncode == 1 and message in out.stderr and "integer expression" not in out.stderr, (args, out)
    # every share of run.sh takes a fraction (a share defaulting to `0` was an integer option)
    shares = re.findall(r"^(\w+_prob|\w+_share)=", (recipe / "run.sh").read_text(), re.M)
    assert {"festival_share", "reverb_prob", "telephone_prob", "vocode_prob"} <= set(shares)
    for name in shares:  # taken: the one complaint is about the stages, which come after the options
        out = run_sh("--stop-stage", "0", f"--{name.replace('_', '-')}", "0.25")
        assert out.returncode == 1 and out.stderr.strip().endswith("selects no stage (the stages are 1 to 9)"), \
            (name, out.stderr)
    # a reversed or empty range runs nothing: that is an error, never a silent exit 0
    for args in (("--stage", "7", "--stop-stage", "3"), ("--stage", "10"), ("--stop-stage", "-1")):
        out = run_sh(*args)
        assert out.returncode == 1 and "selects no stage (the stages are 1 to 9)" in out.stderr, (args, out)
        assert len(out.stderr.strip().splitlines()) == 1, out.stderr
    assert not (recipe / "data").exists() and not (recipe / "exp").exists()

    out = run_sh("--help")
    assert out.returncode == 0 and "--stop-stage 9" in out.stdout and "--rescore-lm-order 4" in out.stdout
    example = re.search(r'--overrides .*e\.g\. "([^"]+)"', out.stdout).group(1)
    assert example == "model.rnn_hidden=64 train.spec_augment=true"
    resolve_config(None, example.split())  # every key of the example is one `ds2 train --set` knows
    # from another folder, by a relative path (run.sh changes to its own folder first)
    elsewhere = subprocess.run(["bash", "egs/synth/run.sh", "--help"], cwd=tmp_path, env=ENV, capture_output=True,
                               text=True, timeout=60)
    assert elsewhere.returncode == 0 and elsewhere.stdout == out.stdout, elsewhere.stderr


def start_features_on_a_big_split(tiny_corpus: Path, tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    """`ds2 features --num-jobs 2` on about 3000 cuts, in a session of its own (so that a signal
    can go to its whole process group, as Ctrl-C does), returned once a worker has written
    features. Returns the process and its stderr file."""
    manifests = tmp_path / "manifests"
    manifests.mkdir()
    recs = RecordingSet.from_file(tiny_corpus / "manifests/synth_recordings_train.jsonl.gz").to_eager()
    sups = SupervisionSet.from_file(tiny_corpus / "manifests/synth_supervisions_train.jsonl.gz").to_eager()
    copies = 75  # about 3000 cuts: enough work left to interrupt on a loaded machine
    RecordingSet.from_recordings([fastcopy(r, id=f"{r.id}-{k}") for k in range(copies) for r in recs]).to_file(
        manifests / "big_recordings_train.jsonl.gz")
    SupervisionSet.from_segments([fastcopy(s, id=f"{s.id}-{k}", recording_id=f"{s.recording_id}-{k}")
                                  for k in range(copies) for s in sups]).to_file(
        manifests / "big_supervisions_train.jsonl.gz")
    log = tmp_path / "stderr.txt"
    with open(log, "w") as err:
        proc = subprocess.Popen([DS2, "features", str(manifests), str(tmp_path / "fbank"), "--prefix", "big",
                                 "--splits", "train", "--num-jobs", "2"], stdout=subprocess.DEVNULL, stderr=err,
                                env=ENV, start_new_session=True, preexec_fn=_default_sigint)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        # a worker has written features: the workers run (the progress bar, written to a file,
        # shows a line only every 10 s)
        if any(p.stat().st_size for p in (tmp_path / "fbank" / "big_feats_train").glob("feats-*")):
            break
        time.sleep(0.1)
    assert proc.poll() is None, log.read_text()[-3000:]
    return proc, log


def _default_sigint():
    # a suite started in the background of a non-interactive shell (`make test &`, nohup) passes on
    # SIGINT ignored, and Python keeps it so: the child would never see the Ctrl-C this test sends
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def assert_split_not_written(fbank: Path):
    assert not (fbank / "big_cuts_train.jsonl.gz").exists()
    assert not (fbank / "big_feats_train").exists()
    assert not list(fbank.glob("*.tmp*"))


def test_ctrl_c_during_features_ends_with_one_line_and_status_130(tiny_corpus, tmp_path):
    proc, log = start_features_on_a_big_split(tiny_corpus, tmp_path)
    try:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    stderr = log.read_text()
    assert proc.returncode == 130, stderr[-3000:]
    assert "interrupted" in stderr.splitlines()[-1] and "Traceback" not in stderr, stderr[-3000:]
    assert_split_not_written(tmp_path / "fbank")


def child_pids(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def test_a_killed_feature_worker_ends_features_with_one_line_not_a_hang(tiny_corpus, tmp_path):
    proc, log = start_features_on_a_big_split(tiny_corpus, tmp_path)
    try:
        workers = [c for c in child_pids(proc.pid) if "spawn_main" in Path(f"/proc/{c}/cmdline").read_text()]
        assert workers, child_pids(proc.pid)
        os.kill(workers[0], signal.SIGKILL)  # as the kernel's out-of-memory killer would
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    stderr = log.read_text()
    assert proc.returncode == 1, stderr[-3000:]
    assert "a feature process died" in stderr.splitlines()[-1] and "Traceback" not in stderr, stderr[-3000:]
    assert_split_not_written(tmp_path / "fbank")


CTRL_C_AT_START = '''
import os, signal, sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from lhotse import CutSet, RecordingSet, SupervisionSet
from ds2.data.features import FeatureConfig, compute_cut_features, make_extractor

real_submit = ProcessPoolExecutor.submit

def submit(self, *args, **kwargs):  # Ctrl-C while the workers are being started
    future = real_submit(self, *args, **kwargs)
    os.kill(os.getpid(), signal.SIGINT)
    return future

if __name__ == "__main__":
    ProcessPoolExecutor.submit = submit
    manifests, out = Path(sys.argv[1]), Path(sys.argv[2])
    cuts = CutSet.from_manifests(RecordingSet.from_file(manifests / "synth_recordings_train.jsonl.gz"),
                                 SupervisionSet.from_file(manifests / "synth_supervisions_train.jsonl.gz"))
    try:
        compute_cut_features(cuts.trim_to_supervisions().to_eager(), make_extractor(FeatureConfig()), out, 2, "x")
    except KeyboardInterrupt:
        print("interrupted; features left:", out.exists())
        sys.exit(130)
    print("went on to the end")
'''


def test_ctrl_c_while_the_feature_workers_start_is_not_lost(tiny_corpus, tmp_path):
    """A Ctrl-C that arrives while the worker processes are being started stops the run (it was
    ignored there: the run went on to the end and exited 0), and no worker dies of it."""
    script = tmp_path / "ctrl_c.py"
    script.write_text(CTRL_C_AT_START)
    proc = subprocess.run([sys.executable, str(script), str(tiny_corpus / "manifests"), str(tmp_path / "feats")],
                          capture_output=True, text=True, timeout=300, preexec_fn=_default_sigint)
    assert proc.returncode == 130, proc.stdout + proc.stderr[-3000:]
    assert "interrupted; features left: False" in proc.stdout
    assert "Traceback" not in proc.stderr and "KeyboardInterrupt" not in proc.stderr, proc.stderr[-3000:]
