"""`ds2 export`: a trained model as ONNX (for onnxruntime, without torch) or TorchScript."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("export")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--format", "format_", type=click.Choice(["onnx", "sherpa-onnx", "torchscript"]), default="onnx",
              show_default=True,
              help="onnx: model.onnx for onnxruntime (`--backend onnxruntime`, no torch needed); "
                   "sherpa-onnx: model.onnx and tokens.txt for sherpa-onnx's offline CTC recogniser "
                   "(OfflineRecognizer.from_zipformer_ctc), which computes the features itself: only models of "
                   "25 ms fbank without pitch; torchscript: model.pt for torch.jit.load.")
@click.option("--quantize", type=click.Choice(["int8"]), default=None,
              help="ONNX graphs with int8 weights (onnxruntime's dynamic quantization of the matrix "
                   "products; the GRU/RNN weights stored in int8, computed in float32) [default: float32].")
@click.option("--output-dir", "-o", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder to write [default: MODEL/export_FORMAT (export_FORMAT_int8 with --quantize int8) for an "
                   "experiment folder, beside a checkpoint file for a file].")
def command(model, format_, quantize, output_dir):
    """Export the acoustic model of MODEL (an experiment folder of `ds2 train`, whose
    averaged.pt, best.pt or last.pt is taken as decoding takes it, or a checkpoint file).

    Writes model.onnx (or model.pt): features (batch, frames, bins) and their lengths in,
    CTC log-probs and output lengths out, batch and time dynamic; for a streaming model
    (forward-only, global feature normalisation) also stream_step.onnx (or .pt), one
    streaming step with its state in and out; and ds2_model.json with the tokenizer, the
    feature settings and the model config, so the folder needs nothing else to transcribe.

    --format sherpa-onnx writes model.onnx (fbank as sherpa-onnx computes it in, CTC log-probs
    out: its icefall Zipformer CTC family), tokens.txt and a README.md with the lines
    that run it. A model sherpa-onnx cannot feed (spectrogram or pitch features, windows other
    than 25 ms) is refused, and nothing is written.

    \b
    Examples:
      ds2 export exp/ds2_streaming --format onnx --output-dir exp/ds2_streaming/onnx
      ds2 export exp/ds2 --format onnx --quantize int8
      ds2 export exp/ds2 --format sherpa-onnx --quantize int8 -o sherpa-ds2
    """
    from ds2.checkpoint import CheckpointError
    from ds2.infer import ModelError
    from ds2.infer.export import export_model

    try:
        out = export_model(model, output_dir, format_, quantize)
    except (FileNotFoundError, CheckpointError, ModelError) as e:
        raise click.ClickException(str(e)) from None
    files = sorted(p.name for p in out.iterdir() if p.is_file() and not p.name.startswith("."))
    what = format_ + (f" ({quantize})" if quantize else "")
    click.echo(f"exported {model} as {what} to {out}: {', '.join(files)}")
