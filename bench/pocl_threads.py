"""Where a workload's time goes with one and with two PoCL compute units: CPU per OS thread of the process.

    python -m bench.pocl_threads                      # the GPT-2 block, 1 and 2 compute units, alternating
    python -m bench.pocl_threads --workload softmax --calls 10 --rounds 3
    python -m bench.pocl_threads --modes eager,noahead,nomemo   # eager with/without launching ahead, the memo
    python -m bench.pocl_threads --alternate 8   # launching ahead on and off in one process, blocks alternating
    python -m bench.pocl_threads --timeline 20   # one process: each kernel's time inside eager calls

Each (compute units, mode) case runs in a fresh process (modes: eager; ahead, eager launching kernels while the
graph is built even where PoCL uses every core, WB_LAUNCH_AHEAD=1; noahead, launching nothing ahead,
WB_LAUNCH_AHEAD=0; nomemo, eager with the schedule memo off, WB_PLAN_CACHE=0; jit, under
@jit) (PoCL reads its thread count at start),
and prints per call: wall median and minimum, process CPU, the main thread's CPU (Python: graph, schedule,
launches) and its CPU before the first kernel is enqueued, and each PoCL worker's CPU. The main thread's
CPU before the first launch is serial work no compute unit can share; see docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import time

MODES = ("eager", "ahead", "noahead", "nomemo", "jit")


def _thread_cpu() -> dict[str, float]:
    """CPU seconds (user + system) of each OS thread of this process, by thread id."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for path in glob.glob(f"/proc/{os.getpid()}/task/*/stat"):
        try:
            fields = open(path).read().rsplit(")", 1)[1].split()
        except OSError:  # a thread that ended meanwhile
            continue
        out[path.split("/")[4]] = (int(fields[11]) + int(fields[12])) / tick
    return out


def measure(workload: str, calls: int, use_jit: bool) -> str:
    """One line of figures for the workload in this process (its PoCL thread count is already fixed)."""
    from bench import compiler_worker as w
    from compiler import runtime_opencl

    p = w.sizes(workload, False)
    fw = w.Ours("CL", jit=use_jit)
    f = fw.fn(workload, p)
    args = [fw.to_device(a) for a in w.make_inputs(workload, p)]
    first_launch: list[float] = []
    launch = runtime_opencl.CLDevice.launch

    def timed_launch(self, *a, **k):
        if not first_launch:
            first_launch.append(time.thread_time())
        return launch(self, *a, **k)

    runtime_opencl.CLDevice.launch = timed_launch
    for _ in range(5):  # compile, and capture the jit
        fw.finish(f(*args))
    walls, before = [], []
    t0, c0, m0 = _thread_cpu(), time.process_time(), time.thread_time()
    for _ in range(calls):
        first_launch.clear()
        a, ca = time.perf_counter(), time.thread_time()
        fw.finish(f(*args))
        walls.append(time.perf_counter() - a)
        before.append(first_launch[0] - ca if first_launch else 0.0)
    t1, c1, m1 = _thread_cpu(), time.process_time(), time.thread_time()
    runtime_opencl.CLDevice.launch = launch
    main = str(os.getpid())
    workers = sorted(
        round((t1[k] - t0.get(k, 0.0)) / calls * 1e3, 2) for k in t1 if k != main and t1[k] - t0.get(k, 0.0) > 0
    )
    walls.sort()
    before.sort()
    ms = lambda s: f"{s * 1e3:.1f}"  # noqa: E731
    return (
        f"wall median {ms(walls[len(walls) // 2])} min {ms(walls[0])} ms | process CPU {ms((c1 - c0) / calls)} | "
        f"main thread {ms((m1 - m0) / calls)} (before 1st launch {ms(before[len(before) // 2])}) | "
        f"other threads {workers} ms per call"
    )


def alternate(workload: str, rounds: int, calls: int = 10) -> str:
    """Eager calls with launching ahead off and forced on (WB_LAUNCH_AHEAD), blocks of calls alternating in this one
    process, so both see the same load: each round's median wall per call, and the main thread's CPU."""
    from bench.eager_modes import alternate as run_modes
    from bench.eager_modes import summary

    return summary(run_modes(workload, "CL", ["noahead", "ahead"], rounds, calls))


def timeline(workload: str, calls: int, quick: bool = False) -> str:
    """Eager calls in this process, each kernel's OpenCL profiling times recorded: the host's time before
    the first launch, the kernels' busy time, the gaps between them, and each kernel's median, as text."""
    import statistics

    import pyopencl as cl

    from bench import compiler_worker as w

    p = w.sizes(workload, quick)
    fw = w.Ours("CL")
    f = fw.fn(workload, p)
    args = [fw.to_device(a) for a in w.make_inputs(workload, p)]
    events: list = []
    first: list[float] = []
    enqueue = cl.enqueue_nd_range_kernel

    def recorded(queue, kernel, *a, **k):  # the runtime's own launch, with its event kept
        if not first:
            first.append(time.perf_counter())
        ev = enqueue(queue, kernel, *a, **k)
        events.append((kernel.function_name, ev))
        return ev

    for _ in range(3):  # compile, memoize
        fw.finish(f(*args))
    cl.enqueue_nd_range_kernel = recorded
    calls_ms: list[tuple] = []
    per_kernel: dict = {}
    try:
        for _ in range(calls):
            events.clear()
            first.clear()
            t0 = time.perf_counter()
            fw.finish(f(*args))
            wall = time.perf_counter() - t0
            spans = [(name, ev.profile.start, ev.profile.end) for name, ev in events]
            busy = sum(e - s for _, s, e in spans)
            gaps = sum(max(0, spans[i + 1][1] - spans[i][2]) for i in range(len(spans) - 1))
            calls_ms.append((wall * 1e3, (first[0] - t0) * 1e3 if first else 0.0, busy * 1e-6, gaps * 1e-6))
            for i, (name, s_, e_) in enumerate(spans):
                per_kernel.setdefault((i, name), []).append((e_ - s_) * 1e-6)
    finally:
        cl.enqueue_nd_range_kernel = enqueue
    med = [statistics.median(c[j] for c in calls_ms) for j in range(4)]
    lines = [f"{workload}, {calls} eager calls, medians: wall {med[0]:.2f} ms, host before the first launch "
             f"{med[1]:.2f}, kernels busy {med[2]:.2f}, gaps between kernels {med[3]:.2f}"]
    lines += [f"  {i:3d} {name[:44]:44s} {statistics.median(v):8.3f} ms" for (i, name), v in per_kernel.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Alternate fresh processes over compute units (1, 2) and eager/jit; print one line per case."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workload", default="gpt2_block")
    ap.add_argument("--calls", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--modes", default="eager,jit", help="comma-separated: eager, ahead, noahead, nomemo, jit")
    ap.add_argument("--alternate", type=int, metavar="ROUNDS",
                    help="instead: launching ahead off and on, alternating in one process, per compute-unit count")
    ap.add_argument("--timeline", type=int, metavar="CALLS",
                    help="instead: this many eager calls in this process, each kernel's time inside them")
    ap.add_argument("--one", choices=MODES, help=argparse.SUPPRESS)  # the child process
    ap.add_argument("--one-alternate", type=int, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    from bench.compiler_worker import WORKLOADS

    if a.workload not in WORKLOADS:
        ap.error(f"--workload: unknown workload {a.workload!r}; choose from {', '.join(WORKLOADS)}")
    modes = a.modes.split(",")
    if any(m not in MODES for m in modes):
        ap.error(f"--modes: {a.modes!r}; choose from {', '.join(MODES)}")
    if a.timeline:
        print(f"load average {os.getloadavg()[0]:.1f}")
        print(timeline(a.workload, a.timeline), flush=True)
        return 0
    if a.one:
        print(measure(a.workload, a.calls, a.one == "jit"), flush=True)
        return 0
    if a.one_alternate:
        print(alternate(a.workload, a.one_alternate), flush=True)
        return 0
    if a.alternate:
        print(f"load average {os.getloadavg()[0]:.1f}")
        for cus in (1, 2):
            env = dict(os.environ, POCL_MAX_PTHREAD_COUNT=str(cus), POCL_CPU_MAX_CU_COUNT=str(cus))
            cmd = [sys.executable, "-m", "bench.pocl_threads", "--workload", a.workload,
                   "--one-alternate", str(a.alternate)]
            r = subprocess.run(cmd, env=env, capture_output=True, text=True)
            line = r.stdout.strip() or r.stderr.strip().splitlines()[-1]
            print(f"  {cus} CU {line}", flush=True)
        return 0
    for rnd in range(a.rounds):
        print(f"round {rnd + 1}, load average {os.getloadavg()[0]:.1f}")
        for cus in (1, 2):
            for mode in modes:
                # PoCL 3.0 reads POCL_MAX_PTHREAD_COUNT, later releases POCL_CPU_MAX_CU_COUNT
                env = dict(os.environ, POCL_MAX_PTHREAD_COUNT=str(cus), POCL_CPU_MAX_CU_COUNT=str(cus))
                if mode == "nomemo":
                    env["WB_PLAN_CACHE"] = "0"
                if mode in ("ahead", "noahead"):
                    env["WB_LAUNCH_AHEAD"] = "1" if mode == "ahead" else "0"
                cmd = [sys.executable, "-m", "bench.pocl_threads", "--workload", a.workload,
                       "--calls", str(a.calls), "--one", mode]
                r = subprocess.run(cmd, env=env, capture_output=True, text=True)
                line = r.stdout.strip() or r.stderr.strip().splitlines()[-1]
                print(f"  {cus} CU {mode:6s} {line}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
