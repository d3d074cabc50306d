"""`ds2 export`: a trained model as ONNX (for onnxruntime, without torch) or TorchScript."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("export")
@click.argument("model", type=click.Path(path_type=Path))
@click.option("--format", "format_", type=click.Choice(["onnx", "torchscript"]), default="onnx",
              help="onnx: model.onnx for onnxruntime (`--backend onnxruntime`, no torch needed); "
                   "torchscript: model.pt for torch.jit.load.")
@click.option("--output-dir", "-o", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder to write [default: MODEL/export_FORMAT for an experiment folder, "
                   "export_FORMAT beside a checkpoint file].")
def command(model, format_, output_dir):
    """Export the acoustic model of MODEL (an experiment folder of `ds2 train`, whose
    averaged.pt, best.pt or last.pt is taken as decoding takes it, or a checkpoint file).

    Writes model.onnx (or model.pt): features (batch, frames, bins) and their lengths in,
    CTC log-probs and output lengths out, batch and time dynamic; for a streaming model
    (forward-only, global feature normalisation) also stream_step.onnx (or .pt), one
    streaming step with its state in and out; and ds2_model.json with the tokenizer, the
    feature settings and the model config, so the folder needs nothing else to transcribe.

    Example: ds2 export exp/ds2_streaming --format onnx --output-dir exp/ds2_streaming/onnx
    """
    from ds2.checkpoint import CheckpointError
    from ds2.infer import ModelError
    from ds2.infer.export import export_model

    try:
        out = export_model(model, output_dir, format_)
    except (FileNotFoundError, CheckpointError, ModelError) as e:
        raise click.ClickException(str(e)) from None
    files = sorted(p.name for p in out.iterdir() if p.is_file() and not p.name.startswith("."))
    click.echo(f"exported {model} as {format_} to {out}: {', '.join(files)}")
