"""The chip database: real accelerators with datasheet figures, sources and which fields are estimates.

Data: `workbench/chips.csv`, a copy of the project's reference chip table (sources in docs/sources.md (e)) with a short `key` per chip and a
`measured_matmul_tflops` column (published measured dense 16-bit matmul throughput, taken from the
reference file's notes: stas00/ml-engineering MAMF for datacenter parts, the tinygrad/ROCm figure for the
7900 XTX).
"""

from __future__ import annotations

import csv
import difflib
import io
import re
from dataclasses import asdict, dataclass
from functools import cache
from importlib import resources

from workbench.errors import UsageError


class UnknownChipError(UsageError):
    """A chip name that is not in the database; the message suggests the closest names."""


@dataclass(frozen=True)
class Chip:
    """One real accelerator, as published. All figures are "datasheet" unless listed in `estimated_fields`."""

    key: str
    name: str
    vendor: str
    year: int | None
    price_usd: float | None
    process_node: str
    die_area_mm2: float | None
    transistors_billion: float | None
    tdp_w: float | None
    memory_gb: float | None
    memory_type: str
    memory_bw_gbs: float | None
    peak_fp32_tflops: float | None
    peak_fp16_tflops_dense: float | None
    peak_bf16_tflops_dense: float | None
    peak_int8_tops_dense: float | None
    clock_mhz_boost: float | None
    compute_units: int | None
    measured_matmul_tflops: float | None
    sources: str
    estimated_fields: str
    notes: str

    @property
    def peak_16bit_tflops(self) -> float | None:
        """Dense 16-bit matrix peak: the larger of the FP16 and BF16 figures (equal where both exist)."""
        vals = [v for v in (self.peak_fp16_tflops_dense, self.peak_bf16_tflops_dense) if v is not None]
        return max(vals) if vals else None

    @property
    def price_is_estimate(self) -> bool:
        """True when the price is an analyst or press estimate rather than a list price."""
        return "launch_price_usd" in self.estimated_fields

    @property
    def tflops_per_kusd(self) -> float | None:
        """Peak dense 16-bit TFLOPS per $1000 of price."""
        p = self.peak_16bit_tflops
        return None if p is None or not self.price_usd else p / self.price_usd * 1000.0

    @property
    def tflops_per_w(self) -> float | None:
        """Peak dense 16-bit TFLOPS per watt of TDP (board power)."""
        p = self.peak_16bit_tflops
        return None if p is None or not self.tdp_w else p / self.tdp_w

    def to_json(self) -> dict:
        """Plain-dict form, with the derived ratios and provenance."""
        d = asdict(self)
        d.update(
            peak_16bit_tflops=self.peak_16bit_tflops,
            tflops_per_kusd=self.tflops_per_kusd,
            tflops_per_w=self.tflops_per_w,
            price_is_estimate=self.price_is_estimate,
            provenance="datasheet",
            measured_provenance="measured (published; see sources)" if self.measured_matmul_tflops else None,
        )
        return d


def _num(text: str) -> float | None:
    text = text.strip()
    return float(text) if text else None


def _int(text: str) -> int | None:
    v = _num(text)
    return None if v is None else int(v)


@cache
def all_chips() -> tuple[Chip, ...]:
    """Every chip in the database, in file order."""
    text = resources.files("workbench").joinpath("chips.csv").read_text(encoding="utf-8")
    chips = []
    for r in csv.DictReader(io.StringIO(text)):
        chips.append(
            Chip(
                key=r["key"],
                name=r["name"],
                vendor=r["vendor"],
                year=_int(r["year"]),
                price_usd=_num(r["launch_price_usd"]),
                process_node=r["process_node"],
                die_area_mm2=_num(r["die_area_mm2"]),
                transistors_billion=_num(r["transistors_billion"]),
                tdp_w=_num(r["tdp_w"]),
                memory_gb=_num(r["memory_gb"]),
                memory_type=r["memory_type"],
                memory_bw_gbs=_num(r["memory_bw_gbs"]),
                peak_fp32_tflops=_num(r["peak_fp32_tflops"]),
                peak_fp16_tflops_dense=_num(r["peak_fp16_tflops_dense"]),
                peak_bf16_tflops_dense=_num(r["peak_bf16_tflops_dense"]),
                peak_int8_tops_dense=_num(r["peak_int8_tops_dense"]),
                clock_mhz_boost=_num(r["clock_mhz_boost"]),
                compute_units=_int(r["compute_units"]),
                measured_matmul_tflops=_num(r["measured_matmul_tflops"]),
                sources=r["source_urls"],
                estimated_fields=r["estimated_fields"],
                notes=r["notes"],
            )
        )
    return tuple(chips)


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


# Short names people type that would otherwise be ambiguous.
# Common short names that mean one chip. Names shared by several chips ("h100": SXM and PCIe, "tinybox":
# red and green) are deliberately absent: find_chip asks which one rather than guessing.
_ALIASES = {
    "a100": "a100-sxm",
    "7900xtx": "rx-7900-xtx",
    "xtx": "rx-7900-xtx",
    "4090": "rtx-4090",
    "3090": "rtx-3090",
}


def find_chip(name: str) -> Chip:
    """The chip with this key, name or unambiguous fragment (case/punctuation ignored); else suggestions."""
    chips = all_chips()
    want = _norm(name)
    want = _norm(_ALIASES.get(want, want))
    for c in chips:
        if want in (_norm(c.key), _norm(c.name)):
            return c
    partial = [c for c in chips if want and (want in _norm(c.key) or want in _norm(c.name))]
    if len(partial) == 1:
        return partial[0]
    if len(partial) > 1:
        raise UnknownChipError(
            f"chip {name!r} is ambiguous: it matches "
            + ", ".join(f"{c.key} ({c.name})" for c in partial)
            + "; give one of these keys"
        )
    keys = [c.key for c in chips]
    close = difflib.get_close_matches(name.lower(), keys, n=3, cutoff=0.4)
    raise UnknownChipError(
        f"unknown chip {name!r}; "
        + (f"did you mean {', '.join(close)}? " if close else "")
        + f"known: {', '.join(keys)}"
    )
