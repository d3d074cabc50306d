"""`ds2 prepare <corpus>`: download and/or prepare Lhotse manifests of a corpus."""

from __future__ import annotations

from pathlib import Path

import click


@click.group("prepare")
def command():
    """Prepare Lhotse manifests of a corpus (public corpora: use `lhotse prepare <corpus>`)."""


@command.command("synth")
@click.argument("output_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--audio-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the WAV files go [default: OUTPUT_DIR/../audio].")
@click.option("--num-train", default=3000, help="Training utterances.")
@click.option("--num-dev", default=200, help="Dev utterances (one per held-out sentence).")
@click.option("--num-test", default=300, help="Test utterances (one per held-out sentence).")
@click.option("--num-dev-voices", default=40, help="(accent, variant) voices held out for dev.")
@click.option("--num-test-voices", default=60, help="Voices held out for test.")
@click.option("--train-noise-prob", default=0.3, help="Share of training utterances with added noise.")
@click.option("--seed", default=0, help="Everything about the corpus follows from it.")
@click.option("--num-jobs", "-j", default=2, help="Parallel espeak-ng processes.")
def synth(output_dir, audio_dir, num_train, num_dev, num_test, num_dev_voices, num_test_voices,
          train_noise_prob, seed, num_jobs):
    """Synthesise the offline English corpus with espeak-ng into OUTPUT_DIR.

    Writes synth_{recordings,supervisions}_{train,dev,test}.jsonl.gz (16 kHz WAV audio)
    and synth_lm_text.txt (LM text without any dev/test sentence). Dev and test use
    sentences and voices that training never sees.

    Example: ds2 prepare synth data/manifests --num-train 3000
    """
    from ds2.corpora.synth import SynthOptions, prepare_synth

    opts = SynthOptions(num_train=num_train, num_dev=num_dev, num_test=num_test,
                        num_dev_voices=num_dev_voices, num_test_voices=num_test_voices,
                        train_noise_prob=train_noise_prob, seed=seed)
    try:
        written = prepare_synth(output_dir, audio_dir or output_dir.parent / "audio", opts, num_jobs)
    except RuntimeError as e:
        raise click.ClickException(str(e)) from None
    for name, path in written.items():
        click.echo(f"{name}: {path}")
