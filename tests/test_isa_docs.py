"""docs/isa.md is generated from the instruction table and must be current."""
from __future__ import annotations

from pathlib import Path

from isa.docs import render_markdown
from isa.instructions import INSTRUCTIONS


def test_isa_md_is_up_to_date():
    path = Path(__file__).resolve().parent.parent / "docs" / "isa.md"
    assert path.read_text() == render_markdown(), "regenerate: python -m isa.docs > docs/isa.md"


def test_every_field_is_documented():
    text = render_markdown()
    for ins in INSTRUCTIONS.values():
        assert f"### `{ins.mnemonic}`" in text
        for f in ins.fields:
            assert f"| `{f.name}` | {f.msb}:{f.lsb} |" in text
