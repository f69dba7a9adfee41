"""Switching activity from a VCD waveform, per block, turned into dynamic energy.

Toggles are counted per bit of every traced signal (a 0->1 or 1->0 change; x/z count as 0), summed
over the signals whose hierarchical scope falls under each block's prefix. Energy per toggle:

  E_toggle(node) = 0.009 pJ x S(node) / S(40 nm)

0.009 pJ/bit is the Aladdin 40 nm register energy per bit (Shao et al., ISCA 2014, as shipped in
Accelergy's hwcomponents-library `aladdin.py`; /work/shared/reference/cost_power_model.md b.3), and
S is the Stillmaker & Baas energy scaling factor at 0.8 V relative to 45 nm (b.2), log-interpolated
between the published nodes. This counts only the traced nets (registers and named wires), not
glitches or nets the simulator optimized away, so it is a floor on switching energy, provenance
"modelled".
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from isa.technology import register_energy_pj_per_bit


def energy_per_toggle_pj(node_nm: float) -> float:
    """Dynamic energy of one bit toggle at `node_nm`, in pJ (see the module docstring for the source)."""
    return register_energy_pj_per_bit(node_nm)


@dataclass
class Activity:
    """Toggle counts of one waveform, per block and in total."""

    cycles: int
    toggles: dict[str, int] = field(default_factory=dict)
    bits: dict[str, int] = field(default_factory=dict)

    @property
    def total_toggles(self) -> int:
        return sum(self.toggles.values())


def _parse_value(s: str) -> int:
    s = s.lower().replace("x", "0").replace("z", "0")
    return int(s, 2) if s else 0


def count_toggles(vcd_path: str | Path, blocks: dict[str, str | tuple[str, ...]], clock: str = "clk",
                  start_time: int | None = None, end_time: int | None = None) -> Activity:
    """Count bit toggles per block in a VCD; `blocks` maps block name -> scope name(s) (dot separated).

    A signal belongs to the block whose scope name appears (as whole dot-separated components) in its
    scope path, the longest such name winning; signals matching
    none go to "control". `cycles` is the number of rising edges of the first signal named `clock` in
    the counted time window.
    """
    ids: dict[str, tuple[str, int]] = {}
    scope: list[str] = []
    clock_id = None
    lines = Path(vcd_path).open()
    for line in lines:
        tok = line.split()
        if not tok:
            continue
        if tok[0] == "$scope":
            scope.append(tok[2])
        elif tok[0] == "$upscope":
            scope.pop()
        elif tok[0] == "$var":
            width, code, name = int(tok[2]), tok[3], tok[4]
            path = ".".join(scope)
            best, best_len = "control", -1
            for bname, prefixes in blocks.items():
                for prefix in ((prefixes,) if isinstance(prefixes, str) else prefixes):
                    if (path == prefix or path.startswith(prefix + ".")
                            or f".{prefix}." in "." + path + ".") and len(prefix) > best_len:
                        best, best_len = bname, len(prefix)
            if code not in ids:
                ids[code] = (best, width)
            if name == clock and clock_id is None:
                clock_id = code
        elif tok[0] == "$enddefinitions":
            break
    act = Activity(cycles=0)
    for bname in [*blocks, "control"]:
        act.toggles[bname] = 0
        act.bits[bname] = 0
    for _code, (bname, width) in ids.items():
        act.bits[bname] += width
    last: dict[str, int] = {}
    counting = start_time is None
    time = 0
    for line in lines:
        if not line or line[0] == "$":
            continue
        c = line[0]
        if c == "#":
            time = int(line[1:])
            counting = (start_time is None or time >= start_time) and (end_time is None or time <= end_time)
            continue
        if c in "bB":
            val_s, code = line[1:].split()
            val = _parse_value(val_s)
        elif c in "01xXzZ":
            code = line[1:].strip()
            val = 1 if c == "1" else 0
        else:
            continue
        old = last.get(code)
        last[code] = val
        if old is None or not counting:
            continue
        diff = old ^ val
        if diff:
            info = ids.get(code)
            if info is None:
                continue
            act.toggles[info[0]] += bin(diff).count("1")
            if code == clock_id and val == 1:
                act.cycles += 1
    lines.close()
    return act


def energy_report(act: Activity, node_nm: int, macs: int) -> dict:
    """Dynamic energy per block per cycle and per MAC, from toggle counts."""
    e = energy_per_toggle_pj(node_nm)
    cyc = max(act.cycles, 1)
    blocks = {b: {"toggles": t, "traced_bits": act.bits.get(b, 0), "toggles_per_cycle": t / cyc,
                  "energy_pj": t * e, "energy_pj_per_cycle": t * e / cyc}
              for b, t in act.toggles.items()}
    total = act.total_toggles * e
    return {
        "node_nm": node_nm, "cycles": act.cycles, "energy_per_toggle_pj": e,
        "energy_per_toggle_source": "Aladdin 40 nm register 0.009 pJ/bit (Shao et al. ISCA 2014, "
                                    "hwcomponents-library) x Stillmaker-Baas energy scaling (0.8 V)",
        "blocks": blocks, "total_toggles": act.total_toggles, "total_energy_pj": total,
        "energy_pj_per_cycle": total / cyc, "macs": macs,
        "energy_pj_per_mac": (total / macs) if macs else None,
        "array_energy_pj_per_mac": (blocks.get("array", {}).get("energy_pj", 0.0) / macs) if macs else None,
        "provenance": "modelled (traced-net toggles only; a floor)",
    }
