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
@click.option("--kind", type=click.Choice(["fbank", "spectrogram"]), default="fbank",
              help="Log-mel filterbank, or DS2's 161-bin log spectrogram (20 ms window, 10 ms hop).")
@click.option("--num-mel-bins", default=80, help="Filterbank channels (fbank only).")
@click.option("--num-jobs", "-j", default=2, help="Parallel processes.")
def command(manifest_dir, output_dir, prefix, splits, kind, num_mel_bins, num_jobs):
    """Compute features of MANIFEST_DIR/PREFIX_{recordings,supervisions}_SPLIT.jsonl.gz.

    Writes OUTPUT_DIR/PREFIX_cuts_SPLIT.jsonl.gz with Lilcom-compressed features beside
    them, and on the train split the global mean/std (PREFIX_stats_train.pt) that the
    model stores for normalisation. Audio at another sampling rate is resampled to 16 kHz and
    several channels are mixed down to one, on the fly; unreadable audio is reported by id and
    skipped (and when a split has none that can be read, the command stops). A split's cut
    set is written last, atomically, so a cut set on disk is always complete; Ctrl-C stops with
    exit status 130 and removes the split's half-written features.

    Example: ds2 features data/manifests data/fbank --prefix synth
    """
    try:
        from ds2.data.features import FeatureConfig, compute_features

        cfg = FeatureConfig(kind=kind, num_mel_bins=num_mel_bins)
        written = compute_features(manifest_dir, output_dir, prefix, splits.split(","), cfg, num_jobs)
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
