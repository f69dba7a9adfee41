"""Published measured GEMM throughput of real chips (`measured_gemm.csv`) and the check of the reference designs
against it: every row cites its source; `compare_to_design` simulates the same shape on the design that imitates
the chip ([reference] chip) and reports the error."""

from __future__ import annotations

import csv
import statistics
from dataclasses import asdict, dataclass
from pathlib import Path

from isa.design import DTYPE_BYTES, Design, load_design, shipped_designs
from workbench.errors import UsageError

DATA_FILE = Path(__file__).with_name("measured_gemm.csv")
COLUMNS = ("chip", "dtype", "out_dtype", "m", "n", "k", "batch", "kind", "measured_tflops", "library", "timing", "source_url",
           "source_note", "l2")
KINDS = ("square", "skinny", "batched", "gemv")
# wall: time per call of a loop of calls, the launch included; kernel: the device's kernel time alone (a profiler
# or events around the kernel), so the design's per-call overhead (chip.kernel_overhead_s) is not charged
TIMINGS = ("wall", "kernel")
# the L2's state when the measured call starts: warm (a loop of calls on the same operands; the default when the
# field is empty or absent) or flushed (the harness overwrote the L2 right before each call, e.g. DeepGEMM's 8 GB
# memset): a flushed call is simulated cold (chip.cold_start_s, l2.flush_dirty_bytes; docs/timing.md "Chip level")
L2_STATES = ("warm", "flushed")
DTYPES = ("fp16", "bf16", "fp32", "int8")


class MeasuredDataError(UsageError):
    """A malformed row of the measured-GEMM data file; the message names the line and the field."""


@dataclass(frozen=True)
class Measurement:
    """One published GEMM measurement: C[m x n] = A[m x k] @ B[k x n], `batch` times."""

    chip: str
    dtype: str
    m: int
    n: int
    k: int
    batch: int
    kind: str
    measured_tflops: float
    library: str
    timing: str
    source_url: str
    source_note: str
    out_dtype: str = ""  # the dtype the call wrote C in ("" = the input dtype)
    l2: str = "warm"  # the L2's state when the call starts (L2_STATES)

    @property
    def flops(self) -> float:
        """FLOPs of the measured call (1 MAC = 2 FLOP)."""
        return 2.0 * self.batch * self.m * self.n * self.k


def shape_kind(m: int, n: int, k: int, batch: int) -> str:
    """square (m = n = k), gemv (m or n is 1), batched (batch > 1), else skinny."""
    if min(m, n) == 1:
        return "gemv"
    if batch > 1:
        return "batched"
    return "square" if m == n == k else "skinny"


def load_measurements(path: str | Path = DATA_FILE) -> list[Measurement]:
    """Rows of the data file, validated: names the file, line and field of the first bad value."""
    p = Path(path)
    lines = [line for line in p.read_text().splitlines() if not line.startswith("#")]
    reader = csv.DictReader(lines)
    if tuple(reader.fieldnames or ()) not in (COLUMNS, COLUMNS[:-1]):  # the l2 column is optional
        raise MeasuredDataError(f"{p}: columns must be {','.join(COLUMNS)}, got {','.join(reader.fieldnames or ())}")
    comments = sum(1 for line in p.read_text().splitlines() if line.startswith("#"))
    out = []
    for i, row in enumerate(reader):
        where = f"{p}:{comments + i + 2}"
        try:
            m, n, k, batch = (int(row[c]) for c in ("m", "n", "k", "batch"))
            tflops = float(row["measured_tflops"])
        except ValueError:
            raise MeasuredDataError(f"{where}: m, n, k, batch must be integers and measured_tflops a number") from None
        if min(m, n, k, batch) < 1 or not tflops > 0:
            raise MeasuredDataError(f"{where}: m, n, k, batch must be >= 1 and measured_tflops > 0")
        if row["dtype"] not in DTYPES:
            raise MeasuredDataError(f"{where}: field 'dtype' = {row['dtype']!r} is not one of {', '.join(DTYPES)}")
        if row["out_dtype"] not in DTYPES:
            raise MeasuredDataError(f"{where}: field 'out_dtype' = {row['out_dtype']!r} is not one of "
                                    f"{', '.join(DTYPES)} (the dtype the measured call wrote C in)")
        if row["timing"] not in TIMINGS:
            raise MeasuredDataError(f"{where}: field 'timing' = {row['timing']!r} is not one of {', '.join(TIMINGS)}")
        if row["kind"] != shape_kind(m, n, k, batch):
            raise MeasuredDataError(f"{where}: field 'kind' = {row['kind']!r} but the shape is "
                                    f"{shape_kind(m, n, k, batch)!r}")
        l2 = row.get("l2") or "warm"
        if l2 not in L2_STATES:
            raise MeasuredDataError(f"{where}: field 'l2' = {l2!r} is not one of {', '.join(L2_STATES)} (the L2's "
                                    f"state when the measured call starts; empty = warm)")
        if not row["source_url"].startswith("https://") or not row["source_note"].strip():
            raise MeasuredDataError(f"{where}: every row needs an https source_url and a source_note")
        out.append(Measurement(row["chip"], row["dtype"], m, n, k, batch, row["kind"], tflops, row["library"],
                               row["timing"], row["source_url"], row["source_note"], row["out_dtype"], l2))
    return out


def reference_design_for(chip_key: str) -> Design:
    """The shipped design whose [reference] chip is `chip_key`."""
    for name in shipped_designs():
        d = load_design(name)
        if d.extras.get("reference", {}).get("chip") == chip_key:
            return d
    raise MeasuredDataError(f"no shipped design imitates chip {chip_key!r} (set [reference] chip in a design)")


@dataclass
class Comparison:
    """One measurement against the reference design's simulated throughput."""

    chip: str
    design: str
    dtype: str
    m: int
    n: int
    k: int
    batch: int
    kind: str
    measured_tflops: float
    simulated_tflops: float | None
    error: float | None  # simulated / measured - 1
    note: str = ""
    source_url: str = ""
    ideal_memory_tflops: float | None = None  # the same GEMM with free loads/stores: the array-bound limit
    timing: str = "wall"  # how the measurement was timed (TIMINGS)

    def to_json(self) -> dict:
        """Plain-dict form."""
        return asdict(self)


def _dtype_label(r: Measurement) -> str:
    """The row's input dtype, and its output dtype after an arrow when the call wrote C in another one."""
    return r.dtype if r.out_dtype in ("", r.dtype) else f"{r.dtype}→{r.out_dtype}"


def compare_to_design(rows: list[Measurement], design: Design, simulate=None) -> list[Comparison]:
    """Simulate each row's shape on `design` (`estimate`, power cap included) and compare with the measurement.

    Rows in a dtype other than the design's are compared too (the same array runs fp16 and bf16 at one rate);
    shapes the design or the toolchain cannot run (memory does not fit, an instruction field overflows) get no
    simulated figure and the error as a note, so one such shape does not stop the others.
    """
    from workbench.estimate import Layer, Workload, estimate

    out = []
    # one simulation per shape and output size (fp16 and bf16 outputs are the same bytes)
    simulated: dict[tuple[int, int, int, int, int, str], tuple[float, float | None] | str] = {}
    for r in rows:
        c_dtype = r.out_dtype or r.dtype
        shape = (r.m, r.n, r.k, r.batch, DTYPE_BYTES[c_dtype], r.l2)
        if shape not in simulated:
            layer = Layer(f"{r.m}x{r.n}x{r.k}", r.m, r.n, r.k, r.batch, out_dtype=c_dtype, cold=r.l2 == "flushed")
            try:
                est = estimate(design, Workload(layer.name, (layer,)), simulate=simulate)
                ideal = est.figures.get("achieved_tflops_ideal_memory")
                simulated[shape] = (est.figures["seconds"].value, ideal.value if ideal else None)
            except UsageError as exc:  # WorkloadError and the ISA's field-range errors alike
                simulated[shape] = str(exc)
        sim = simulated[shape]
        if isinstance(sim, str):
            out.append(Comparison(r.chip, design.name, _dtype_label(r), r.m, r.n, r.k, r.batch, r.kind, r.measured_tflops,
                                  None, None, sim, r.source_url, timing=r.timing))
            continue
        seconds, ideal = sim
        if r.timing == "kernel":  # a kernel time holds no launch: the design's per-call overhead is not charged
            seconds -= design.chip.kernel_overhead_s
        tflops = r.flops / seconds / 1e12
        out.append(Comparison(r.chip, design.name, _dtype_label(r), r.m, r.n, r.k, r.batch, r.kind, r.measured_tflops,
                              tflops, tflops / r.measured_tflops - 1, "", r.source_url, ideal, r.timing))
    return out


def error_stats(results: list[Comparison]) -> dict[str, float]:
    """Median and worst absolute relative error, and the signed median, over rows with a simulated figure."""
    errs = [c.error for c in results if c.error is not None]
    if not errs:
        return {"count": 0}
    return {
        "count": len(errs),
        "median_abs_error": statistics.median(abs(e) for e in errs),
        "worst_abs_error": max(abs(e) for e in errs),
        "median_signed_error": statistics.median(errs),
    }


# docs/models.md holds the generated validation table between these two lines; `replace_docs_block` rewrites it.
DOCS_BEGIN = "<!-- BEGIN bench/validate_silicon.py: generated, do not edit by hand -->"
DOCS_END = "<!-- END bench/validate_silicon.py -->"


def source_label(url: str) -> str:
    """A short citation for a table cell: `repo#N` for a GitHub issue or pull request, `owner/repo` for another
    GitHub page, else the host name."""
    parts = url.removeprefix("https://").split("/")
    if parts[0] == "github.com" and len(parts) >= 5 and parts[3] in ("issues", "pull"):
        return f"{parts[2]}#{parts[4]}"
    if parts[0] == "github.com" and len(parts) >= 3 and parts[1] and parts[2]:
        return f"{parts[1]}/{parts[2]}"
    return parts[0]


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x:+.1%}".replace("-", "−")


def comparison_markdown(by_chip: dict[str, list[Comparison]]) -> str:
    """Markdown tables of every comparison per chip, then the error statistics per chip and shape kind."""
    lines = ["| chip / design | dtype | shape (batch × M × N × K) | kind | timing | measured TFLOPS | simulated | error "
             "| simulated, ideal memory | source |", "|---|---|---|---|---|---|---|---|---|---|"]
    stats_lines = ["| chip / design | kind | rows | distinct shapes | not simulated | median abs error "
                   "| worst abs error | median signed | median signed, ideal memory |",
                   "|---|---|---|---|---|---|---|---|---|"]
    for chip, results in by_chip.items():
        design = results[0].design if results else ""
        for c in results:
            sim = "n/a" if c.simulated_tflops is None else f"{c.simulated_tflops:.1f}"
            err = _pct(c.error) if c.error is not None else f"n/a ({c.note})"
            ideal = "n/a" if c.ideal_memory_tflops is None else f"{c.ideal_memory_tflops:.1f}"
            lines.append(f"| {chip} / {design} | {c.dtype} | {c.batch} × {c.m} × {c.n} × {c.k} | {c.kind} "
                         f"| {c.timing} | {c.measured_tflops:g} | {sim} | {err} | {ideal} "
                         f"| {source_label(c.source_url)} |")
        groups = {"all": results} | {k: [c for c in results if c.kind == k] for k in KINDS}
        for kind, rows in groups.items():
            if not rows:
                continue
            s = error_stats(rows)
            shapes = len({(c.batch, c.m, c.n, c.k) for c in rows})
            missing = sum(c.error is None for c in rows)
            if not s.get("count"):
                stats_lines.append(f"| {chip} / {design} | {kind} | {len(rows)} | {shapes} | {missing} | n/a | n/a "
                                   "| n/a | n/a |")
                continue
            ideal = [c.ideal_memory_tflops / c.measured_tflops - 1 for c in rows if c.ideal_memory_tflops]
            ideal_cell = _pct(statistics.median(ideal)) if ideal else "n/a"
            stats_lines.append(f"| {chip} / {design} | {kind} | {len(rows)} | {shapes} | {missing} "
                               f"| {s['median_abs_error']:.1%} | {s['worst_abs_error']:.1%} "
                               f"| {_pct(s['median_signed_error'])} | {ideal_cell} |")
    return "\n".join(lines) + "\n\nError statistics (simulated / measured − 1):\n\n" + "\n".join(stats_lines) + "\n"


def replace_docs_block(text: str, block: str) -> str:
    """`text` with the part between DOCS_BEGIN and DOCS_END replaced by `block`; names the missing marker."""
    start, end = text.find(DOCS_BEGIN), text.find(DOCS_END)
    if start < 0 or end < start:
        missing = DOCS_BEGIN if start < 0 else DOCS_END
        raise MeasuredDataError(f"the document has no line {missing!r} (after the begin marker); add both markers "
                                "where the validation table belongs")
    return text[: start + len(DOCS_BEGIN)] + "\n" + block.rstrip("\n") + "\n" + text[end:]
