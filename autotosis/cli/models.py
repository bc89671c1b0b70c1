"""Commands on model files: export-onnx."""

from __future__ import annotations

import argparse
from pathlib import Path

from autotosis.cli.context import Context
from autotosis.cli.options import AddCommand, add_output
from autotosis.core.errors import ExitStatus


def cmd_export_onnx(ctx: Context, args: argparse.Namespace) -> int:
    from autotosis.model.onnx_backend import export_onnx

    out = Path(args.output)
    info = export_onnx(Path(args.model), out, force=args.force)
    ctx.say(
        f"wrote {out} (task {info.task!r}, input uint8 RGB N x {info.input_size} x {info.input_size} x 3, "
        f"output softmax over {', '.join(info.classes)})"
    )
    return ExitStatus.OK


# --------------------------------------------------------------------------- parsers


def _export_onnx_parser(commands, add: AddCommand) -> None:
    p = add(
        "export-onnx",
        cmd_export_onnx,
        "export a checkpoint to ONNX (for onnxruntime and other runtimes)",
        "Export the checkpoint's ResNet18 to ONNX with its preprocessing and softmax inside the graph:\n"
        "input 'frames' is uint8 RGB (N, SIZE, SIZE, 3), output 'probs' the class probabilities. The model's\n"
        "metadata (task, classes, input size, crop, threshold, ...) is stored in the file's metadata_props.\n"
        "Needs the optional extra: pip install 'autotosis[onnx]'.\n"
        "Example: autotosis export-onnx --model rage.pt -o rage.onnx && autotosis scan vod.mp4 --model rage.onnx",
    )
    p.add_argument("--model", required=True, metavar="CHECKPOINT", help="checkpoint from `autotosis train`")
    add_output(p, "ONNX file to write (.onnx)", required=True)


PARSERS = {"export-onnx": _export_onnx_parser}


def register(commands, add: AddCommand, name: str) -> None:
    """Add the parser of command ``name`` (a key of PARSERS) to ``commands``."""
    PARSERS[name](commands, add)
