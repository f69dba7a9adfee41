"""Sweeps on Dask: a LocalCluster and a real `dask scheduler` + two `dask worker` processes on 127.0.0.1 give the
same results as an in-process run; a worker killed mid-sweep and a client killed mid-sweep lose nothing."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from workbench.results_db import ResultsDB
from workbench.sweep import run_sweep
from workbench.sweep_spec import load_spec

pytestmark = pytest.mark.slow  # each test starts Dask processes (seconds each on 2 shared cores)

ROOT = Path(__file__).resolve().parent.parent
SPEC = """\
[sweep]
name = "faults"
base = "edge-int8-16x16"

[parameters]
"matrix.rows" = [16, 32]
"matrix.cols" = [16, 32]
"matrix.dataflow" = ["os", "ws"]
"memory.dram_bandwidth_bytes_per_cycle" = [16, 64]
"chip.node_nm" = [16, 7]

[[workloads]]
gemm = "384x384x384"

[[workloads]]
name = "too-big"
gemm = "100000x100000x100000"
"""
POINTS = 32 * 2


def values(db_path) -> dict[str, tuple]:
    """key -> (status, error, figures): what must not depend on how or where the sweep ran."""
    with ResultsDB(db_path) as db:
        return {r["key"]: (r["status"], r["error"], json.dumps(r["figures"], sort_keys=True)) for r in db.rows()}


def count(db_path) -> int:
    try:
        con = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5)
        try:
            return con.execute("SELECT COUNT(*) FROM results").fetchone()[0]
        finally:
            con.close()
    except sqlite3.OperationalError:  # not created yet
        return 0


def check_complete(db_path, reference) -> None:
    con = sqlite3.connect(db_path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("SELECT COUNT(*), COUNT(DISTINCT key) FROM results").fetchone() == (POINTS, POINTS)
    con.close()
    assert values(db_path) == reference


@pytest.fixture(scope="module")
def spec_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("spec") / "faults.toml"
    path.write_text(SPEC)
    return path


@pytest.fixture(scope="module")
def reference(spec_path, tmp_path_factory):
    db = tmp_path_factory.mktemp("ref") / "ref.db"
    run_sweep(load_spec(spec_path), db, scheduler="inline")
    return values(db)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}


@pytest.fixture
def cluster(tmp_path):
    """A `dask scheduler` and two `dask worker --no-nanny` processes on 127.0.0.1: (address, worker processes)."""
    from distributed import Client

    info = tmp_path / "scheduler.json"
    procs = [subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(info)], env=_env(), cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        deadline = time.monotonic() + 60
        while not info.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        for i in range(2):
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "dask", "worker", "--scheduler-file", str(info), "--nthreads", "1",
                 "--no-nanny", "--host", "127.0.0.1", "--no-dashboard", "--name", f"w{i}",
                 "--local-directory", str(tmp_path / f"w{i}")], env=_env(), cwd=tmp_path,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        address = json.loads(info.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=90)
        yield address, procs[1:]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
            p.wait(timeout=30)


def test_local_cluster_same_as_inline(spec_path, reference, tmp_path):
    summary = run_sweep(load_spec(spec_path), tmp_path / "local.db", workers=2)
    assert summary.scheduler.startswith("tcp://127.0.0.1:") and summary.computed == POINTS and summary.lost == 0
    check_complete(tmp_path / "local.db", reference)


def test_distributed_same_as_inline_and_worker_killed_mid_sweep(spec_path, reference, cluster, tmp_path):
    address, workers = cluster
    summary = run_sweep(load_spec(spec_path), tmp_path / "dist.db", scheduler=address)
    assert summary.scheduler == address and summary.computed == POINTS and summary.lost == 0
    used = {r["worker"] for r in ResultsDB(tmp_path / "dist.db").rows()}
    assert len(used) == 2  # both worker processes did work
    check_complete(tmp_path / "dist.db", reference)

    # again into a new database, killing one worker (SIGKILL, mid-point) after the first results arrive
    done = []

    def kill_one(row):
        done.append(row)
        if len(done) == 3:
            os.kill(workers[0].pid, signal.SIGKILL)

    summary = run_sweep(load_spec(spec_path), tmp_path / "killed.db", scheduler=address, on_result=kill_one)
    assert workers[0].wait(timeout=30) == -signal.SIGKILL
    assert summary.lost == 0 and summary.computed == POINTS
    check_complete(tmp_path / "killed.db", reference)


def test_client_killed_mid_sweep_then_resumed(spec_path, reference, cluster, tmp_path):
    address, _ = cluster
    db = tmp_path / "client.db"
    cmd = [sys.executable, "-m", "workbench", "sweep", str(spec_path), "--scheduler", address, "--db", str(db), "--json"]
    client = subprocess.Popen(cmd, env=_env(), cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while count(db) < 4 and client.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        client.send_signal(signal.SIGKILL)
    finally:
        client.wait(timeout=30)
    partial = count(db)
    assert 4 <= partial < POINTS, "the client finished before it could be killed"
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    summary = run_sweep(load_spec(spec_path), db, scheduler=address)
    assert summary.reused == partial and summary.computed == POINTS - partial
    check_complete(db, reference)
