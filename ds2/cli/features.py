"""`ds2 features`: compute and store features of prepared manifests."""

from __future__ import annotations

from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

import click


@click.command("features")
@click.argument("manifest_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("output_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--prefix", required=True, help="Corpus name in the manifest file names, e.g. synth.")
@click.option("--splits", default="train,dev,test", help="Comma-separated splits to process.")
@click.option("--stats-from", default="train", show_default=True,
              help="Comma-separated training set(s) whose features give the global mean/std, written as "
                   "PREFIX_stats_SET[+SET...].pt; computed when they are among --splits.")
@click.option("--kind", type=click.Choice(["fbank", "spectrogram"]), default="fbank",
              help="Log-mel filterbank (25 ms windows, 10 ms hop, as Kaldi and sherpa-onnx), or DS2's 161-bin "
                   "log spectrogram (20 ms window, 10 ms hop).")
@click.option("--window", type=click.FloatRange(min=0.005, max=0.1), default=None, metavar="SECONDS",
              help="Analysis window [default: 0.025 for fbank, the only one `ds2 export --format sherpa-onnx` "
                   "takes; 0.02 for spectrogram, 161 bins].")
@click.option("--num-mel-bins", type=click.IntRange(min=4), default=80, show_default=True,
              help="Filterbank channels (fbank only; at least 4).")
@click.option("--pitch", is_flag=True,
              help="fbank only: two pitch features after the bins (how periodic each frame is, and its log "
                   "pitch; ds2/data/pitch.py), for tonal languages such as Mandarin, as Kaldi's fbank+pitch.")
@click.option("--num-jobs", "-j", default=2, help="Parallel processes.")
@click.option("--speed-perturb", default="", metavar="FACTORS",
              help="Speed factors, e.g. 0.9,1.1: the --stats-from sets also get a copy of every cut played at each "
                   "speed (Lhotse perturb_speed, ids with _sp0.9 etc.), stored in the same cut set and counted in "
                   "the statistics. Other sets are never perturbed. [default: none]")
@click.option("--recordings-only", is_flag=True,
              help="Cuts of whole recordings from PREFIX_recordings_SPLIT.jsonl.gz alone (noise without "
                   "supervisions, e.g. MUSAN's from `ds2 prepare musan`, for train.noise_cuts); no statistics.")
def command(manifest_dir, output_dir, prefix, splits, stats_from, kind, window, num_mel_bins, pitch, num_jobs,
            speed_perturb, recordings_only):
    """Compute features of MANIFEST_DIR/PREFIX_{recordings,supervisions}_SPLIT.jsonl.gz.

    Writes OUTPUT_DIR/PREFIX_cuts_SPLIT.jsonl.gz with Lilcom-compressed features beside
    them, and the global mean/std of the --stats-from sets (PREFIX_stats_train.pt by default;
    PREFIX_stats_a+b.pt for --stats-from a,b) that the model stores for normalisation. Audio at another sampling rate is resampled to 16 kHz and
    several channels are mixed down to one, on the fly; unreadable audio is reported by id and
    skipped (and when a split has none that can be read, the command stops). A split's cut
    set is written last, atomically, so a cut set on disk is always complete; Ctrl-C stops with
    exit status 130 and removes the split's half-written features.

    --speed-perturb 0.9,1.1 triples the training sets with speed-perturbed copies (their features
    are computed here, so it triples this stage's time on them); --recordings-only computes the
    features of noise recordings that training mixes into its batches (train.noise_cuts).

    \b
    Examples:
      ds2 features data/manifests data/fbank --prefix synth
      ds2 features data/manifests data/fbank --prefix synth --speed-perturb 0.9,1.1
      ds2 features data/manifests data/fbank --prefix librispeech --splits train-clean-100,dev-clean \\
          --stats-from train-clean-100
      ds2 features data/manifests data/fbank --prefix musan --splits music,noise --recordings-only
    """
    try:
        from ds2.data.features import FeatureConfig, compute_features

        if pitch and kind != "fbank":
            raise ValueError("--pitch comes with --kind fbank only")
        cfg = FeatureConfig(kind=kind, num_mel_bins=num_mel_bins, pitch=pitch, window=window)
        written = compute_features(manifest_dir, output_dir, prefix, _names(splits), cfg, num_jobs,
                                   _names(stats_from), _factors(speed_perturb), recordings_only)
    except KeyboardInterrupt:
        click.echo("ds2 features: interrupted (the split in progress was not written)", err=True)
        raise click.exceptions.Exit(130) from None
    except (FileNotFoundError, ValueError) as e:
        raise click.ClickException(str(e)) from None
    except BrokenProcessPool:
        raise click.ClickException("a feature process died (killed, or out of memory?); the split in progress "
                                   "was not written: run again, with fewer --num-jobs if memory is short") from None
    for name, path in written.items():
        click.echo(f"{name}: {path}")


def _factors(text: str) -> list[float]:
    """The numbers of --speed-perturb, separated by commas or spaces ("0.9,1.1", "0.9 1.1")."""
    words = text.replace(",", " ").split()
    try:
        return [float(w) for w in words]
    except ValueError:
        raise click.ClickException(f"--speed-perturb {text!r} is not a list of numbers such as 0.9,1.1") from None


def _names(csv: str) -> list[str]:
    """Set names of a comma-separated option, in order, without blanks or repeats."""
    return list(dict.fromkeys(n.strip() for n in csv.split(",") if n.strip()))
