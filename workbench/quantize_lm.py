"""`workbench quantize char-gpt`: the char GPT's held-out perplexity as float, int8 (w8a8) and int4 weights.

The weights come from `--weights FILE.safetensors` (e.g. `python examples/train_gpt.py --save FILE`) or from
the cache, where the documented training run (`compiler.models.char_gpt`, seeded) is trained once, with a
progress bar, and kept as safetensors for every later report.
"""

from __future__ import annotations

import sys
from pathlib import Path

from isa.errors import UserError

__all__ = ["LM_MODELS", "load_char_gpt", "cmd_quantize_lm"]

LM_MODELS = ("char-gpt",)


def _console():
    from rich.console import Console

    return Console(stderr=True)


def load_char_gpt(weights: str | None, train_steps: int, train_device: str | None = None):
    """The char GPT on REF with the given weights, or the cached (trained now if absent) ones; (model, note)."""
    from compiler.errors import DTypeError
    from compiler.models import GPT
    from compiler.models.char_gpt import CONFIG, cached_weights_path, trained_weights
    from compiler.nn import StateDictError
    from compiler.weights import load_safetensors

    note = ""
    if weights is None:
        path = cached_weights_path(train_steps)
        if not path.is_file():
            from compiler import Device

            if (train_device or Device.DEFAULT) == "REF":
                raise UserError("char-gpt: no cached weights, and training them needs an OpenCL device (on REF "
                                "it takes hours); run `workbench doctor`, or pass --weights FILE.safetensors")
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

            cols = (TextColumn("training the char GPT ({task.fields[loss]})"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn())
            with Progress(*cols, console=_console()) as bar:
                task = bar.add_task("train", total=train_steps, loss="first step compiles its kernels")
                path, _ = trained_weights(train_steps, device=train_device,
                                          on_step=lambda s, loss: bar.update(task, completed=s + 1,
                                                                             loss=f"loss {loss:.3f}"))
            note = f"trained {train_steps} steps once; weights cached in {path}"
        else:
            note = f"weights: {path} (cached training run of {train_steps} steps)"
    else:
        path = Path(weights)
        if path.is_dir():
            raise UserError(f"--weights {weights}: is a folder; give the .safetensors file itself")
        if not path.is_file():
            raise UserError(f"--weights {weights}: no such file (write one with "
                            "`python examples/train_gpt.py --save FILE.safetensors`, or leave --weights out)")
        note = f"weights: {path}"
    try:
        state = load_safetensors(path)
    except (DTypeError, OSError, ValueError) as exc:
        raise UserError(f"--weights {path}: cannot read it as safetensors ({exc})") from None
    model = GPT(CONFIG, device="REF")
    try:
        model.load_state_dict(state)
    except StateDictError as exc:
        raise UserError(f"{path}: not the char GPT's weights ({CONFIG}): {exc}") from None
    return model.eval(), note


def _device_name(device: str) -> str:
    """SIM names its default design (the canonical name drops it)."""
    if device == "SIM":
        from compiler.accel.sim_device import design_of

        return f"SIM:{design_of(device).name}"
    return device


def cmd_quantize_lm(args) -> int:
    """Perplexity, cosine and max error of the char GPT's int8 and int4 forms against its float form."""
    import json

    from compiler import Device
    from compiler.models.char_gpt import load_corpus
    from compiler.quantize import gpt_quantize_report

    if args.batch is not None:
        raise UserError(f"--batch is for mlp, cnn and gpt2-block; {args.model} is evaluated on --windows N "
                        "held-out windows")
    device = Device.canonicalize(args.device)
    model, note = load_char_gpt(args.weights, args.train_steps)
    train_ids, val_ids = load_corpus()
    console = _console()
    with console.status("evaluating") as status:
        reports = gpt_quantize_report(model, val_ids, train_ids, device=device, windows=args.windows,
                                      progress=lambda label: status.update(f"evaluating {label}"))
    if args.json:
        print(json.dumps([r.to_json() for r in reports], indent=2))
        return 0
    from rich.console import Console
    from rich.table import Table

    r0 = reports[0]
    table = Table(title=f"quantization of the char GPT vs its float model: {r0.samples:,} held-out characters "
                        f"(float32 perplexity {r0.float_perplexity:.3f})")
    for col in ("scheme", "runs on", "perplexity", "vs float", "logit cosine", "max |error|"):
        table.add_column(col, justify="left" if col in ("scheme", "runs on") else "right")
    for r in reports:
        table.add_row(r.scheme, _device_name(r.runs_on), f"{r.perplexity:.3f}",
                      f"{(r.perplexity / r.float_perplexity - 1):+.2%}", f"{r.cosine:.5f}", f"{r.max_abs_error:.3g}")
    out = Console()
    out.print(table)
    out.print("[dim]int8: every block Linear and the tied head are int8 GEMMs (per-channel weights, per-tensor "
              "activations calibrated on training text with min/max or the 99.99th percentile); embeddings, layer "
              "norms, attention and GELU stay float. int4: weight-only, every 2-d weight (the embeddings too). "
              "Logit errors are against the float model on the same characters (--json adds the relative error).[/]",
              highlight=False)
    out.print(f"[dim]{note}[/]", highlight=False)
    sys.stdout.flush()
    return 0
