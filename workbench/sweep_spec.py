"""A sweep spec (TOML): base design, parameters to vary, workloads, frontier objectives and constraints.

Everything is checked before any work starts: the spec's own syntax, every value of every parameter, and
every design point of the space through the design loader (`isa.design`, and `workbench.design_tables` for
[cost]/[power] fields) with its usual messages, each error re-pointed at the spec's file:line with a fix.
The format is documented in docs/sweeps.md; `examples/sweep-edge.toml` is a worked example.
"""

from __future__ import annotations

import dataclasses
import difflib
import itertools
import math
import random
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from isa.design import Design, DesignError, load_design
from isa.errors import UserError
from isa.files import read_text
from workbench.design_tables import COST_FIELDS, POWER_FIELDS, DesignTableError, design_tables
from workbench.sweep_metrics import METRICS
from workbench.sweep_workloads import WORKLOAD_KINDS, SweepWorkload, WorkloadSpecError

STRATEGIES = ("grid", "random", "adaptive")
DEFAULT_FRONTIER = ("tflops_per_kusd", "tflops_per_w")
MAX_SPACE_POINTS = 200_000  # every point is validated up front (~0.1 ms each)
SWEEP_KEYS = ("name", "base", "strategy", "points", "seed", "skip_invalid")
MAX_POINTS = 1_000_000  # design points one sweep may ask for: each is stored, so more would fill the disk first
TOP_KEYS = ("sweep", "parameters", "workloads", "objectives", "constraints")
_DESIGN_SECTIONS = ("matrix", "memory", "vector", "control", "chip")
_EXTRA_FIELDS = {"cost": COST_FIELDS, "power": POWER_FIELDS}
_EXTRA_TYPES = {"number": "float", "int": "int", "str": "str"}


class SweepSpecError(UserError):
    """A sweep spec that cannot run; the message names the spec's file:line and the fix."""


@dataclass(frozen=True)
class Parameter:
    """One varied design field (`section.field`) and its values in sweep order."""

    name: str
    values: tuple[Any, ...]
    line: int | None


@dataclass(frozen=True)
class Constraint:
    """A bound on a metric (`min <= value <= max`), or the reticle limit on the die area."""

    metric: str
    low: float | None
    high: float | None
    line: int | None

    def ok(self, value: float | None) -> bool:
        """True if `value` satisfies the bound (a missing value never does)."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return False
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)


@dataclass
class SweepSpec:
    """A parsed, validated sweep spec."""

    path: str
    name: str
    base: Design
    strategy: str
    points: int | None
    seed: int
    skip_invalid: bool
    parameters: tuple[Parameter, ...]
    workloads: tuple[SweepWorkload, ...]
    frontier: tuple[str, ...]
    constraints: tuple[Constraint, ...]
    invalid: dict[tuple[int, ...], str] = field(default_factory=dict)  # skipped points: index -> loader error

    @property
    def space_size(self) -> int:
        """Design points in the full grid (the product of every parameter's value count)."""
        return math.prod(len(p.values) for p in self.parameters)

    def grid(self) -> Iterator[tuple[int, ...]]:
        """Every point of the space as value indices, in grid order (last parameter fastest)."""
        return itertools.product(*(range(len(p.values)) for p in self.parameters))

    def valid_grid(self) -> list[tuple[int, ...]]:
        """The grid without the points the loader rejects (only with skip_invalid)."""
        return [i for i in self.grid() if i not in self.invalid]

    def params(self, index: tuple[int, ...]) -> dict[str, Any]:
        """{field: value} of the point at `index`."""
        return {p.name: p.values[i] for p, i in zip(self.parameters, index, strict=True)}

    def design(self, index: tuple[int, ...]) -> Design:
        """The design of the point at `index` (validated by the loader)."""
        return build_design(self.base, self.params(index))

    def initial_points(self, strategy: str | None = None) -> list[tuple[int, ...]]:
        """The points a grid or random sweep runs (random: a seeded sample of `points` valid points)."""
        strategy = strategy or self.strategy
        valid = self.valid_grid()
        if strategy == "grid":
            return valid
        count = min(self.points or len(valid), len(valid))
        return sorted(random.Random(self.seed).sample(valid, count))


def point_name(base: Design, params: dict[str, Any]) -> str:
    """A readable name of a design point: the base name and the varied fields."""
    parts = [f"{k.split('.', 1)[1]}={_fmt(v)}" for k, v in params.items()]
    return f"{base.name}[{','.join(parts)}]" if parts else base.name


def _fmt(v: Any) -> str:
    return f"{v:g}" if isinstance(v, float) else str(v)


def build_design(base: Design, params: dict[str, Any]) -> Design:
    """`base` with `params` ({"matrix.rows": 32, "cost.margin": 0.5, ...}) set, validated by the loader.

    Raises the loader's DesignError / DesignTableError unchanged.
    """
    sections: dict[str, dict[str, Any]] = {}
    extras = {k: dict(v) for k, v in base.extras.items()}
    for name, value in params.items():
        section, key = name.split(".", 1)
        if section in _EXTRA_FIELDS:
            extras.setdefault(section, {})[key] = value
        else:
            sections.setdefault(section, {})[key] = value
    new = {s: dataclasses.replace(getattr(base, s), **kv) for s, kv in sections.items()}
    design = base.replace(name=point_name(base, params), extras=extras, **new)
    if any(s in _EXTRA_FIELDS for s in (n.split(".", 1)[0] for n in params)):
        design_tables(design)
    return design


def sweepable_fields(base: Design) -> dict[str, str]:
    """Every field a sweep can vary, mapped to its type name ("int", "float", "str", "bool")."""
    out = {}
    for section in _DESIGN_SECTIONS:
        for f in dataclasses.fields(getattr(base, section)):
            out[f"{section}.{f.name}"] = str(f.type)
    for table, specs in _EXTRA_FIELDS.items():
        for key, spec in specs.items():
            if spec.kind in _EXTRA_TYPES:
                out[f"{table}.{key}"] = _EXTRA_TYPES[spec.kind]
    return out


# ---- locating keys in the spec text --------------------------------------------------------------------------


def _split_key(text: str) -> list[str]:
    """TOML key `a."b.c".d` -> [a, b.c, d]."""
    parts, cur, quote = [], "", ""
    for ch in text.strip():
        if quote:
            if ch == quote:
                quote = ""
            else:
                cur += ch
        elif ch in "\"'":
            quote = ch
        elif ch == ".":
            parts.append(cur.strip())
            cur = ""
        else:
            cur += ch
    parts.append(cur.strip())
    return parts


def key_lines(text: str) -> dict[str, int]:
    """First line of every table header and key in a TOML text, keyed by the dotted path ([[x]] adds an index)."""
    lines: dict[str, int] = {}
    header: list[str] = []
    counts: dict[str, int] = {}
    for i, raw in enumerate(text.splitlines(), 1):
        s = raw.strip()
        if s.startswith("[["):
            name = ".".join(_split_key(s[2:s.find("]]")]))
            counts[name] = counts.get(name, -1) + 1
            header = [name, str(counts[name])]
            lines.setdefault(".".join(header), i)
        elif s.startswith("["):
            header = _split_key(s[1:s.find("]")])
            lines.setdefault(".".join(header), i)
        elif "=" in s and not s.startswith("#"):
            lines.setdefault(".".join([*header, *_split_key(s[:s.find("=")])]), i)
    return lines


class _Locator:
    def __init__(self, path: str, text: str):
        self.path, self.lines = path, key_lines(text)

    def line(self, *keys: str | int) -> int | None:
        parts = ".".join(str(k) for k in keys).split(".")
        while parts:
            if ".".join(parts) in self.lines:
                return self.lines[".".join(parts)]
            parts.pop()
        return None

    def error(self, keys: tuple[str | int, ...], message: str) -> SweepSpecError:
        line = self.line(*keys) if keys else None
        return SweepSpecError(f"{self.path}:{line}: {message}" if line else f"{self.path}: {message}")


# ---- parsing ------------------------------------------------------------------------------------------------


def load_spec(path: str | Path, strategy: str | None = None, points: int | None = None) -> SweepSpec:
    """Read, parse and validate a sweep spec file (strategy / points override the spec's)."""
    p = Path(path)
    if not p.is_file():
        raise SweepSpecError(f"{p}: sweep spec not found (give the path of a .toml file, e.g. examples/sweep-edge.toml)")
    return parse_spec(read_text(p, "sweep spec", SweepSpecError), str(p), strategy=strategy, points=points)


def parse_spec(text: str, path: str = "<spec>", strategy: str | None = None, points: int | None = None) -> SweepSpec:
    """Parse and validate a sweep spec; every point of the space is checked by the design loader."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise SweepSpecError(f"{path}: not valid TOML: {exc}") from None
    loc = _Locator(path, text)
    base_dir = Path(path).parent
    _known(loc, (), data, TOP_KEYS, "top-level table")
    sweep = _table(loc, data, "sweep")
    _known(loc, ("sweep",), sweep, SWEEP_KEYS, "[sweep] key")

    if "base" not in sweep:
        raise loc.error(("sweep",), "[sweep] needs base = \"DESIGN\" (a shipped design name or a .toml path)")
    base_ref = sweep["base"]
    if not isinstance(base_ref, str):
        raise loc.error(("sweep", "base"), f"base = {base_ref!r} must be a design name or path string")
    ref = base_dir / base_ref if base_ref.endswith(".toml") and not Path(base_ref).is_absolute() else base_ref
    try:
        base = load_design(ref)
        design_tables(base)  # its [cost]/[power]/[reference] tables, which the loader leaves to the models
    except (DesignError, DesignTableError) as exc:
        raise loc.error(("sweep", "base"), f"base design: {exc}") from None

    strategy = strategy or sweep.get("strategy", "grid")
    if strategy not in STRATEGIES:
        hint = difflib.get_close_matches(str(strategy), STRATEGIES, n=1)
        raise loc.error(("sweep", "strategy"), f"strategy = {strategy!r} is not one of {', '.join(STRATEGIES)}"
                        + (f" (did you mean {hint[0]!r}?)" if hint else ""))
    points = points if points is not None else sweep.get("points")
    if points is not None and (not isinstance(points, int) or isinstance(points, bool)
                               or not 1 <= points <= MAX_POINTS):
        raise loc.error(("sweep", "points"), f"points = {points!r} must be an integer from 1 to {MAX_POINTS:,}")
    if strategy != "grid" and points is None:
        raise loc.error(("sweep",), f"strategy {strategy!r} needs points = N (design points to evaluate) in [sweep]")
    seed = sweep.get("seed", 0)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise loc.error(("sweep", "seed"), f"seed = {seed!r} must be an integer")
    skip_invalid = sweep.get("skip_invalid", False)
    if not isinstance(skip_invalid, bool):
        raise loc.error(("sweep", "skip_invalid"), f"skip_invalid = {skip_invalid!r} must be true or false")

    parameters = _parameters(loc, _table(loc, data, "parameters"), base)
    workloads = _workloads(loc, data.get("workloads"), base_dir)
    objectives = _table(loc, data, "objectives")
    _known(loc, ("objectives",), objectives, ("frontier",), "[objectives] key")
    frontier = _frontier(loc, objectives.get("frontier", list(DEFAULT_FRONTIER)))
    constraints = _constraints(loc, _table(loc, data, "constraints"))

    spec = SweepSpec(path, str(sweep.get("name", Path(path).stem)), base, strategy, points, seed, skip_invalid,
                     parameters, workloads, frontier, constraints)
    _validate_space(loc, spec)
    return spec


def _table(loc: _Locator, data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise loc.error((key,), f"{key} must be a table [{key}]")
    return value


def _known(loc: _Locator, where: tuple[str, ...], table: dict[str, Any], allowed: tuple[str, ...], what: str) -> None:
    for key in table:
        if key not in allowed:
            hint = difflib.get_close_matches(key, allowed, n=1)
            raise loc.error((*where, key), f"unknown {what} {key!r}"
                            + (f" (did you mean {hint[0]!r}?)" if hint else f"; allowed: {', '.join(allowed)}"))


_VALUE_KEYS = ("values", "range", "log_range", "step", "steps", "factor")


def _flatten(table: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Dotted keys (`matrix.rows = [...]` or `[parameters.matrix]`) and quoted ones alike."""
    for key, value in table.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and not set(value) & set(_VALUE_KEYS):
            yield from _flatten(value, f"{name}.")
        else:
            yield name, value


def _parameters(loc: _Locator, table: dict[str, Any], base: Design) -> tuple[Parameter, ...]:
    fields = sweepable_fields(base)
    out = []
    for name, raw in _flatten(table):
        keys = ("parameters", name)
        if name not in fields:
            hint = difflib.get_close_matches(name, fields, n=1)
            raise loc.error(keys, f"unknown design field {name!r}"
                            + (f" (did you mean {hint[0]!r}?)" if hint else
                               f"; a sweep can vary: {', '.join(fields)}"))
        values = _values(loc, keys, name, raw, fields[name])
        for v in values:
            _check_value(loc, keys, base, name, v)
        out.append(Parameter(name, values, loc.line(*keys)))
    return tuple(out)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _values(loc: _Locator, keys: tuple[str, ...], name: str, raw: Any, typ: str) -> tuple[Any, ...]:
    """The value list of one parameter: a list, {values}, {range, step|steps} or {log_range, steps|factor}."""
    if isinstance(raw, dict):
        extra = set(raw) - set(_VALUE_KEYS)
        if extra:
            raise loc.error(keys, f"parameter {name!r}: unknown key(s) {sorted(extra)}; use a list, "
                                  "{ range = [LO, HI], step = S | steps = N } or { log_range = [LO, HI], steps = N | factor = F }")
        if "values" in raw:
            raw = raw["values"]
        elif "range" in raw or "log_range" in raw:
            return _range(loc, keys, name, raw, typ)
        else:
            raise loc.error(keys, f"parameter {name!r}: give values = [...], range = [LO, HI] or log_range = [LO, HI]")
    if not isinstance(raw, list):
        raw = [raw]
    if not raw:
        raise loc.error(keys, f"parameter {name!r} has no values; give at least one, e.g. {name} = [16, 32]")
    values = [float(v) if typ == "float" and _number(v) else v for v in raw]
    dup = [v for i, v in enumerate(values) if v in values[:i]]
    if dup:
        raise loc.error(keys, f"parameter {name!r} lists {dup[0]!r} twice; list each value once")
    return tuple(values)


def _range(loc: _Locator, keys: tuple[str, ...], name: str, raw: dict[str, Any], typ: str) -> tuple[Any, ...]:
    kind = "range" if "range" in raw else "log_range"
    bounds = raw[kind]
    if typ not in ("int", "float"):
        raise loc.error(keys, f"parameter {name!r} is a {typ} field; list its values instead of a {kind}")
    if not (isinstance(bounds, list) and len(bounds) == 2 and all(_number(b) for b in bounds)):
        raise loc.error(keys, f"parameter {name!r}: {kind} = {bounds!r} must be [LO, HI] (two numbers)")
    lo, hi = bounds
    if lo > hi:
        raise loc.error(keys, f"parameter {name!r}: {kind} = [{lo}, {hi}] is empty (LO > HI); write [{hi}, {lo}]")
    if kind == "log_range" and lo <= 0:
        raise loc.error(keys, f"parameter {name!r}: log_range needs LO > 0, got {lo}")
    how = [k for k in ("step", "steps", "factor") if k in raw]
    allowed = ("step", "steps") if kind == "range" else ("steps", "factor")
    if len(how) != 1 or how[0] not in allowed:
        raise loc.error(keys, f"parameter {name!r}: {kind} needs exactly one of {' or '.join(allowed)}")
    by = raw[how[0]]
    if how[0] == "steps":
        if not isinstance(by, int) or isinstance(by, bool) or by < 1:
            raise loc.error(keys, f"parameter {name!r}: steps = {by!r} must be an integer >= 1")
        if by == 1 and lo != hi:
            raise loc.error(keys, f"parameter {name!r}: steps = 1 gives one value, but LO != HI; use steps >= 2")
        if kind == "range":
            values = [lo + (hi - lo) * i / max(by - 1, 1) for i in range(by)]
        else:
            values = [lo * (hi / lo) ** (i / max(by - 1, 1)) for i in range(by)]
        values[-1] = hi  # exact end point despite rounding
    else:
        if not _number(by) or (how[0] == "step" and by <= 0) or (how[0] == "factor" and by <= 1):
            limit = "> 0" if how[0] == "step" else "> 1"
            raise loc.error(keys, f"parameter {name!r}: {how[0]} = {by!r} must be a number {limit}")
        values, v, i = [], lo, 0
        while v <= hi * (1 + 1e-12):
            values.append(v)
            i += 1
            v = lo + i * by if how[0] == "step" else lo * by**i
    if typ == "int":
        values = [round(v) for v in values]
    else:
        values = [float(v) for v in values]
    return tuple(dict.fromkeys(values))  # rounding to int can repeat a value


def _check_value(loc: _Locator, keys: tuple[str, ...], base: Design, name: str, value: Any) -> None:
    """One value on its own: the loader's type, range and choice rules for that field (always fatal)."""
    try:
        build_design(base, {name: value})
    except (DesignError, DesignTableError) as exc:
        msg = _strip_where(str(exc))
        if f"'{name}'" in msg and re.search(r"must be|out of range|not one of", msg):
            raise loc.error(keys, f"parameter {name!r} = {value!r}: {msg} (design loader); fix the value") from None


def _base_value(base: Design, name: str) -> Any:
    section, key = name.split(".", 1)
    if section in _EXTRA_FIELDS:
        return base.extras.get(section, {}).get(key)
    return getattr(getattr(base, section), key)


def _strip_where(message: str) -> str:
    """A loader message without its leading `path[:line]: `."""
    return re.sub(r"^[^\s:]+(:\d+)?: ", "", message, count=1)


def _workloads(loc: _Locator, raw: Any, base_dir: Path) -> tuple[SweepWorkload, ...]:
    if raw is None:
        raise loc.error((), "no workloads; add e.g.\n[[workloads]]\ngemm = \"512x512x512\"")
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise loc.error(("workloads",), "workloads must be [[workloads]] tables")
    out = []
    for i, table in enumerate(raw):
        keys = ("workloads", i)
        kinds = [k for k in table if k in WORKLOAD_KINDS]
        if len(kinds) != 1:
            raise loc.error(keys, f"[[workloads]] entry {i + 1} needs exactly one kind key of "
                                  f"{', '.join(WORKLOAD_KINDS)}; found {sorted(kinds) or 'none'}")
        parse, extra = WORKLOAD_KINDS[kinds[0]]
        _known(loc, keys, table, (kinds[0], *extra), f"key of a {kinds[0]} workload")
        try:
            out.append(parse(table, base_dir))
        except WorkloadSpecError as exc:
            raise loc.error((*keys, exc.key or kinds[0]), str(exc)) from None
    names = [w.name for w in out]
    dup = [n for i, n in enumerate(names) if n in names[:i]]
    if dup:
        raise loc.error(("workloads",), f"two workloads are named {dup[0]!r}; give each a distinct name = \"...\"")
    return tuple(out)


def _metric(loc: _Locator, keys: tuple[str, ...], name: Any) -> str:
    if name not in METRICS:
        hint = difflib.get_close_matches(str(name), METRICS, n=1)
        raise loc.error(keys, f"unknown objective {name!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                        + f"; objectives: {', '.join(METRICS)}")
    return name


def _frontier(loc: _Locator, raw: Any) -> tuple[str, ...]:
    keys = ("objectives", "frontier")
    if not isinstance(raw, list) or len(raw) not in (2, 3):
        raise loc.error(keys, f"frontier = {raw!r} must list 2 or 3 objectives, e.g. [\"tflops_per_kusd\", \"tflops_per_w\"]")
    names = tuple(_metric(loc, keys, m) for m in raw)
    if len(set(names)) != len(names):
        raise loc.error(keys, f"frontier = {raw!r} repeats an objective; list distinct ones")
    return names


def _constraints(loc: _Locator, table: dict[str, Any]) -> tuple[Constraint, ...]:
    from workbench.cost import RETICLE_MM2

    out = []
    for name, raw in table.items():
        keys = ("constraints", name)
        if name == "reticle":
            if not isinstance(raw, bool):
                raise loc.error(keys, f"reticle = {raw!r} must be true or false")
            if raw:  # the scanner field bounds one die (workbench.cost.RETICLE_MM2)
                out.append(Constraint("area_mm2", None, float(RETICLE_MM2), loc.line(*keys)))
            continue
        _metric(loc, keys, name)
        if not isinstance(raw, dict) or not raw or set(raw) - {"min", "max"} or not all(_number(v) for v in raw.values()):
            raise loc.error(keys, f"constraint {name} = {raw!r}: write {name} = {{ max = X }}, {{ min = X }} or both")
        low, high = raw.get("min"), raw.get("max")
        if low is not None and high is not None and low > high:
            raise loc.error(keys, f"constraint {name}: min {low} > max {high} admits nothing; swap them")
        out.append(Constraint(name, low, high, loc.line(*keys)))
    return tuple(out)


def _validate_space(loc: _Locator, spec: SweepSpec) -> None:
    """Every point through the loader; a rejected point fails the spec unless skip_invalid."""
    size = spec.space_size
    if size > MAX_SPACE_POINTS:
        raise loc.error(("parameters",), f"the space has {size:,} design points; at most {MAX_SPACE_POINTS:,} "
                                         "are supported: use fewer values per parameter")
    for index in spec.grid():
        try:
            spec.design(index)
        except (DesignError, DesignTableError) as exc:
            msg = _strip_where(str(exc))
            if spec.skip_invalid:
                spec.invalid[index] = msg
                continue
            params = spec.params(index)
            # blame the varied field the loader names, else the first one that differs from the base design
            named = [n for n in params if f"'{n}'" in msg] or [n for n, v in params.items() if v != _base_value(spec.base, n)]
            keys = ("parameters", named[0]) if named else ("parameters",)
            point = ", ".join(f"{k} = {_fmt(v)}" for k, v in params.items())
            raise loc.error(keys, f"the design loader rejects the point {{{point}}}: {msg}; fix: change these "
                                  "values, vary the field it names too, or set skip_invalid = true in [sweep]") from None
    if spec.invalid and len(spec.invalid) == size:
        first = next(iter(spec.invalid.values()))
        raise loc.error(("parameters",), f"the design loader rejects every point (e.g. {first}); change the values")
