"""Many OpenCL kernel sources as one program source, so one clBuildProgram builds them all.

Under PoCL each build pays a fixed cost (front end, linking the builtin library) that dwarfs a small kernel's
own compile; one program holding a batch of kernels pays it once. Each source is its helper preamble
(`inline` functions, typedefs, pragmas: everything before `__kernel`) followed by one kernel. The batch keeps
one copy of every distinct preamble definition, in first-seen order (a definition's own dependencies always
come earlier in the source that first uses it, so they come earlier in the batch too), then the kernels, each
renamed where two share a name.
"""

from __future__ import annotations

import re

_KERNEL = re.compile(r"(?m)^__kernel\s+void\s+(\w+)\s*\(")
# a top-level definition starts at a line that begins with neither whitespace nor the closing brace
_TOP_LEVEL = re.compile(r"(?m)^(?=[^\s}])")


def split_source(src: str) -> tuple[list[str], str, str] | None:
    """(preamble definitions, kernel text, kernel name) of a one-kernel source, or None when it has several
    kernels or code after its kernel's start that a batch could not share safely."""
    found = list(_KERNEL.finditer(src))
    if len(found) != 1:
        return None
    start = found[0].start()
    return _definitions(src[:start]), src[start:], found[0].group(1)


def _definitions(preamble: str) -> list[str]:
    """The preamble's top-level definitions; a `#if`...`#endif` block (a helper's include guard) is one."""
    defs: list[str] = []
    block: list[str] = []
    depth = 0
    for line in preamble.splitlines(keepends=True):
        word = line.lstrip().split(None, 1)[0] if line.strip() else ""
        if depth or word.startswith("#if"):
            block.append(line)
            depth += word.startswith("#if") - (word == "#endif")
            if not depth:
                defs.append("".join(block))
                block = []
            continue
        if _TOP_LEVEL.match(line) or not defs:
            defs.append(line)
        else:
            defs[-1] += line
    if block:  # an unterminated #if: keep it whole, the build will name the error
        defs.append("".join(block))
    return [d for d in defs if d.strip()]


def batch_source(items: list[tuple[str, str]]) -> tuple[str, list[str]] | None:
    """One program source for (src, name) items and each item's kernel name inside it; None when a source
    cannot be batched (several kernels, or its entry point is not the kernel named)."""
    defs: dict[str, None] = {}
    bodies: list[str] = []
    names: list[str] = []
    taken: set[str] = set()
    for src, name in items:
        parts = split_source(src)
        if parts is None or parts[2] != name:
            return None
        pre, body, _ = parts
        for d in pre:
            defs.setdefault(d if d.endswith("\n") else d + "\n")
        new, n = name, 0
        while new in taken:  # same name, different source (e.g. one shape, other ops): give it a suffix
            n += 1
            new = f"{name}_{n}"
        taken.add(new)
        if new != name:
            head = _KERNEL.match(body)
            body = body[:head.start(1)] + new + body[head.end(1):]
        bodies.append(body if body.endswith("\n") else body + "\n")
        names.append(new)
    return "".join(defs) + "".join(bodies), names
