"""How much of a model's error on a set comes from its voice's pitch and formants: the set's audio
played at other speeds (resampled by `ds2.data.audio_augment.resample`: pitch, formants and tempo
together) and transcribed greedily by `ds2 transcribe`, one %CER per factor, factor 1 the audio itself.

    python bench/heldout_resampled.py egs/synth/exp/ds2 egs/synth/data/manifests/synth_supervisions_heldout.jsonl.gz \
        --num 100 --factors 1,0.9,0.8,0.75

A factor below 1 lowers the voice (0.8: pitch and formants x 0.8, 1.25x as long). egs/synth's
held-out voice is female and most training voices male: where 0.8 scores better than 1, training
on higher voices (run.sh's resampling range) is what the model lacks.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import soundfile as sf
from lhotse import RecordingSet, SupervisionSet

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from ds2.data.audio_augment import resample  # noqa: E402
from ds2.score import score  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="experiment folder of ds2 train (as ds2 transcribe takes it)")
    parser.add_argument("supervisions", type=Path, help="<prefix>_supervisions_<set>.jsonl.gz; its recordings beside it")
    parser.add_argument("--num", type=int, default=100, help="the set's first NUM utterances")
    parser.add_argument("--factors", default="1,0.9,0.8,0.75", help="comma-separated speed factors")
    args = parser.parse_args()
    sups = list(SupervisionSet.from_file(args.supervisions))[:args.num]
    recordings = {r.id: r for r in RecordingSet.from_file(str(args.supervisions).replace("_supervisions_", "_recordings_"))}
    refs = {s.id: s.text for s in sups}
    ds2 = str(Path(sys.executable).parent / "ds2")
    print(f"{len(sups)} utterances of {args.supervisions.name}, model {args.model}")
    print("| speed factor | %CER | %WER |\n| ---: | ---: | ---: |")
    audio = {s.id: recordings[s.recording_id].load_audio()[0] for s in sups}  # read once, played at each factor
    with tempfile.TemporaryDirectory() as tmp:
        for factor in (float(f) for f in args.factors.split(",")):
            files = []
            for uid, samples in audio.items():
                files.append(f"{tmp}/{uid}.wav")
                sf.write(files[-1], resample(samples, factor), 16000)
            out = subprocess.run([ds2, "transcribe", args.model, "--format", "json", *files],
                                 capture_output=True, text=True, check=True)
            hyps = {Path(r["id"]).stem: r["text"] for r in map(json.loads, out.stdout.splitlines())}
            wer, cer = score(refs, hyps)
            print(f"| {factor:g} | {cer.rate:.1f} | {wer.rate:.1f} |", flush=True)


if __name__ == "__main__":
    main()
