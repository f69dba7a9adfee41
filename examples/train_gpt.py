"""Train a small character-level GPT on the Python standard library's own source text (always available
offline) and report validation perplexity: `python examples/train_gpt.py [--steps N] [--save out.safetensors]`.

The corpus, the training loop and the perplexity live in `compiler/models/char_gpt.py` (the same model
`workbench quantize char-gpt` evaluates); the last 10% of the characters are held out for validation.
"""

from __future__ import annotations

import argparse

from compiler.models.char_gpt import CONFIG, batches, load_corpus, perplexity, train  # noqa: F401 - the tests use them
from compiler.quantize_weights import compare_formats
from compiler.weights import save_safetensors


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--save", help="write the trained weights to this .safetensors file")
    ap.add_argument("--quantize", action="store_true", help="also report int8/int4/bfloat16 weight perplexity")
    args = ap.parse_args()
    model, res = train(args.steps)
    if args.save:
        save_safetensors(model, args.save)
        print(f"saved {args.save}")
    if args.quantize:
        _, val_ids = load_corpus()
        dev = model.wte.weight.device
        table = compare_formats(model, lambda m: perplexity(m, val_ids, dev))
        for fmt, ppl in table.items():
            print(f"{fmt:9s} weights: validation perplexity {ppl:.3f} ({(ppl / table['float32'] - 1) * 100:+.2f}%)")


if __name__ == "__main__":
    main()
