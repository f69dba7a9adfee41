"""The ONNX backend test suite (node cases, plus the pytorch-operator and simple model groups) run against the
importer: `python -m compiler.onnx.suite --device REF [--subset N] [-k REGEX] [-v]`.

Our own small runner (not `onnx.backend.test.BackendTest`): the node cases are collected in memory from the
generators inside the `onnx` wheel (recent wheels no longer ship data/node/), the model groups are read from
onnx/backend/test/data/{pytorch-operator,simple}/; each case runs through `OnnxModel.run` and is compared with
the expected outputs at the backend suite's rtol (1e-3) and atol 1e-5."""

from __future__ import annotations

import argparse
import glob
import os
import re
import sys
import time
import warnings
from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from .errors import OnnxImportError

RTOL, ATOL = 1e-3, 1e-5

# every excluded case matches one of these reason-named patterns (over the case name)
EXCLUDED: dict[str, str] = {
    # no string dtype in the compiler (image_decoder takes encoded bytes)
    "strings": r"string|strnorm|regex_full_match|_str_|tfidf|label_encoder|test_cast_.*STRING|image_decoder",
    # only tensors flow through the importer
    "sequences_and_optionals": r"sequence|optional|loop11|loop13|loop16|test_identity_opt|test_if_opt|test_if_seq",
    # optimizer updates and training-mode ops (the importer runs inference graphs)
    "training_ops": r"test_adagrad|test_adam|test_momentum|test_nesterov|gradient|training",
    # element types the compiler has no dtype for
    "float8_int4_bfloat16_types": r"float8|FLOAT8|e4m3|e5m2|int4|INT4|uint4|UINT4|bfloat16|BFLOAT16|_bf16|float4"
                                  r"|FLOAT4|e8m0|int2|INT2",
    # outputs are random draws, not comparable with stored values
    "random_ops": r"test_random|bernoulli|multinomial",
    # pytorch-operator cases whose stored float64 inputs are uninitialised memory beyond the float32 range
    "float64_garbage_data": r"test_operator_add_broadcast|test_operator_add_size1_right_broadcast"
                            r"|test_operator_add_size1_singleton_broadcast|test_operator_addconstant",
}
EXCLUDE_RE = {k: re.compile(v) for k, v in EXCLUDED.items()}
MODEL_GROUPS = ("pytorch-operator", "simple")


@dataclass
class Case:
    """One suite case: a model and its (inputs, expected outputs) data sets."""

    name: str
    group: str
    model: onnx.ModelProto
    data: list[tuple[list[np.ndarray], list[np.ndarray]]]


def excluded_reason(name: str) -> str | None:
    """The reason group an excluded case falls in, or None for a case that runs."""
    for reason, rx in EXCLUDE_RE.items():
        if rx.search(name):
            return reason
    return None


def _arr(v):
    """numpy scalars and TensorProtos as arrays; sequences, maps and optionals stay as they are (reported)."""
    if isinstance(v, onnx.TensorProto):
        return numpy_helper.to_array(v)
    return np.asarray(v) if isinstance(v, np.generic) else v


def _data_dir() -> str:
    import onnx.backend.test as bt
    return os.path.join(os.path.dirname(bt.__file__), "data")


def _read_pb(path: str) -> np.ndarray:
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return numpy_helper.to_array(t)


def collect(groups: tuple = ("node", *MODEL_GROUPS)) -> list[Case]:
    """The suite's cases, sorted by name: node cases from the wheel's generators, model groups from data/."""
    cases: list[Case] = []
    if "node" in groups:
        node_dir = os.path.join(_data_dir(), "node")
        if os.path.isdir(node_dir):
            groups = (*groups, "node-dir")
        else:
            import onnx.backend.test.case.node as node_cases
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for tc in node_cases.collect_testcases(None):
                    data = [([_arr(i) for i in ins], [_arr(o) for o in outs]) for ins, outs in tc.data_sets]
                    cases.append(Case(tc.name, "node", tc.model, data))
    for g in groups:
        gdir = os.path.join(_data_dir(), "node" if g == "node-dir" else g)
        if g == "node" or not os.path.isdir(gdir):
            continue
        for d in sorted(glob.glob(os.path.join(gdir, "*"))):
            if not os.path.exists(os.path.join(d, "model.onnx")):
                continue
            model = onnx.load(os.path.join(d, "model.onnx"))
            data = []
            for ds in sorted(glob.glob(os.path.join(d, "test_data_set_*"))):
                n_in = len(glob.glob(os.path.join(ds, "input_*.pb")))
                n_out = len(glob.glob(os.path.join(ds, "output_*.pb")))
                data.append(([_read_pb(os.path.join(ds, f"input_{i}.pb")) for i in range(n_in)],
                             [_read_pb(os.path.join(ds, f"output_{i}.pb")) for i in range(n_out)]))
            cases.append(Case(os.path.basename(d), "node" if g == "node-dir" else g, model, data))
    return sorted(cases, key=lambda c: (c.group, c.name))


def run_case(case: Case, device: str) -> tuple[str, str]:
    """('pass' | 'fail' | 'unsupported' | 'error', detail) of one case on device."""
    from .model import OnnxModel
    if any(not isinstance(v, np.ndarray) for ins, outs in case.data for v in (*ins, *outs)):
        return "unsupported", "a sequence, map or optional value (only tensors are supported)"
    try:
        m = OnnxModel(case.model, device=device)
    except OnnxImportError as e:
        return "unsupported", str(e)
    try:
        for ins, outs in case.data:
            got = m.run(dict(zip(m.input_names, ins, strict=False)), device=device)
            for name, want in zip(m.output_names, outs, strict=True):
                g = got[name]
                if g.shape != want.shape:
                    return "fail", f"{name}: shape {g.shape} != expected {want.shape}"
                if g.dtype != want.dtype:
                    return "fail", f"{name}: dtype {g.dtype} != expected {want.dtype}"
                if want.dtype.kind in "biu":
                    ok = np.array_equal(g, want)
                else:
                    ok = np.allclose(g.astype(np.float64), want.astype(np.float64), rtol=RTOL, atol=ATOL,
                                     equal_nan=True)
                if not ok:
                    err = np.nanmax(np.abs(g.astype(np.float64) - want.astype(np.float64))) if g.size else 0
                    return "fail", f"{name}: max |error| {err:.3g}"
    except OnnxImportError as e:
        return "unsupported", str(e)
    except Exception as e:  # a case that crashes counts as an error with its message
        return "error", f"{type(e).__name__}: {e}"
    return "pass", ""


def prebuild(cases: list[Case], device: str) -> int:
    """Schedule every runnable case's graphs on device without running them and build all their kernels at
    once (batched: a few clBuildProgram calls instead of one per kernel), so the runs that follow find every
    program built; returns the number of kernels handed over. A case that fails here fails again when run,
    with its message, so errors are left to the run."""
    from compiler.backend import get_backend
    from compiler.device import canonicalize
    from compiler.schedule import create_schedule
    from compiler.tensor import Tensor

    from .model import OnnxModel

    if not hasattr(get_backend(canonicalize(device)), "prepare"):  # a backend that builds nothing up front
        return 0
    programs = []
    for c in cases:
        if excluded_reason(c.name) is not None:
            continue
        try:
            m = OnnxModel(c.model, device=device)
            for ins, _ in c.data:
                outs = m(**dict(zip(m.input_names, ins, strict=False)))
                roots = [o.node for o in outs if isinstance(o, Tensor) and not o.node.realized]
                be = get_backend(roots[0].device) if roots else None
                for k in create_schedule(roots) if roots else []:
                    if k.out.size:
                        programs.append((be, be.program(k)))
        except Exception:  # noqa: BLE001 - reported by the run itself
            continue
    for be in dict.fromkeys(b for b, _ in programs):
        be.prepare([p for b, p in programs if b is be])
    return len(programs)


def _loads(c: Case) -> bool:
    from .model import OnnxModel
    try:
        OnnxModel(c.model)
    except OnnxImportError:
        return False
    return True


def subset(cases: list[Case], n: int) -> list[Case]:
    """A deterministic spread of n cases that are not excluded and whose ops all have handlers: every k-th
    such case in name order."""
    runnable = [c for c in cases if excluded_reason(c.name) is None and _loads(c)]
    if n >= len(runnable):
        return runnable
    step = len(runnable) / n
    return [runnable[int(i * step)] for i in range(n)]


def run_suite(device: str, cases: list[Case], verbose: bool = False, prebuild_kernels: bool = True) -> dict:
    """Run cases on device (building all their kernels first, see prebuild); returns counts per status, per
    excluded reason, and the failures."""
    counts = {"pass": 0, "fail": 0, "unsupported": 0, "error": 0}
    excluded: dict[str, int] = {k: 0 for k in EXCLUDED}
    failures: list[tuple[str, str, str]] = []
    t0 = time.perf_counter()
    if prebuild_kernels and device != "REF":
        prebuild(cases, device)
    for c in cases:
        reason = excluded_reason(c.name)
        if reason is not None:
            excluded[reason] += 1
            continue
        status, detail = run_case(c, device)
        counts[status] += 1
        if status != "pass":
            failures.append((c.name, status, detail))
            if verbose:
                print(f"{status:11s} {c.group}/{c.name}: {detail[:200]}", flush=True)
    return {"device": device, "counts": counts, "excluded": excluded, "failures": failures,
            "seconds": time.perf_counter() - t0, "total": len(cases)}


def format_report(r: dict) -> str:
    """The suite summary: pass count, failures by status and excluded groups with counts."""
    c = r["counts"]
    ran = sum(c.values())
    lines = [f"ONNX backend suite on {r['device']}: {c['pass']} passed of {ran} run ({r['total']} cases,"
             f" {sum(r['excluded'].values())} excluded) in {r['seconds']:.1f} s;"
             f" {c['fail']} wrong, {c['unsupported']} unsupported, {c['error']} errors",
             "excluded groups: " + ", ".join(f"{k} {v}" for k, v in r["excluded"].items())]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line: run the suite and print the counts."""
    p = argparse.ArgumentParser(prog="python -m compiler.onnx.suite")
    p.add_argument("--device", default="REF")
    p.add_argument("--subset", type=int, default=0, help="a deterministic spread of N runnable cases")
    p.add_argument("-k", default=None, help="only cases whose name matches this regex")
    p.add_argument("--groups", default="node,pytorch-operator,simple")
    p.add_argument("-v", action="store_true", help="print each failing case")
    a = p.parse_args(argv)
    cases = collect(tuple(a.groups.split(",")))
    if a.k:
        cases = [c for c in cases if re.search(a.k, c.name)]
    if a.subset:
        cases = subset(cases, a.subset)
    r = run_suite(a.device, cases, a.v)
    print(format_report(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
