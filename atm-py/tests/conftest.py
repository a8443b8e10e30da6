"""Stores made by the real `atm` binary, for the tests of the Python package.

The binary is `$ATM_BIN`, else the workspace's `target/debug/atm` or
`target/release/atm` (CI builds it with `cargo test --workspace`)."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import atm

REPO = Path(__file__).resolve().parents[2]
TESTDATA = REPO / "testdata" / "binance"


def atm_bin() -> str:
    env = os.environ.get("ATM_BIN")
    if env:
        return env
    for profile in ("debug", "release"):
        p = REPO / "target" / profile / "atm"
        if p.exists():
            return str(p)
    found = shutil.which("atm")
    if found:
        return found
    pytest.exit("no atm binary: build it (cargo build -p atm-cli) or set ATM_BIN", 2)


def run_atm(store: Path, *args: str) -> str:
    out = subprocess.run(
        [atm_bin(), "--store", str(store), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    if out.returncode != 0:
        raise AssertionError(f"atm {' '.join(args)} failed ({out.returncode}): {out.stderr}")
    return out.stdout


@contextlib.contextmanager
def sim_serve(*args: str):
    """`atm sim serve ARGS` on a free loopback port for the block's length;
    yields its base URL (from the JSON line it prints first)."""
    p = subprocess.Popen(
        [atm_bin(), "sim", "serve", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = p.stdout.readline()
        try:
            base = json.loads(line)["base"]
        except (ValueError, KeyError) as e:
            raise AssertionError(f"atm sim serve printed {line!r} first: {e}") from e
        yield base
    finally:
        p.terminate()
        p.wait(timeout=30)


def query_csv(store: Path, market: str, symbol: str, interval: str, *extra: str) -> list:
    """`atm query --format csv` as a list of dicts of strings."""
    text = run_atm(
        store,
        "query",
        "--market",
        market,
        "--symbol",
        symbol,
        "--interval",
        interval,
        "--format",
        "csv",
        *extra,
    )
    return list(csv.DictReader(io.StringIO(text)))


def assert_equals_query(store: Path, k: atm.Klines, *query_args: str) -> int:
    """Every value of `k.present()` equals `atm query --format csv`'s."""
    rows = query_csv(store, k.market, k.symbol, k.interval, *query_args)
    p = k.present()
    assert len(p) == len(rows), (k, len(rows))
    ftype = np.float32 if k.precision == "f32" else np.float64
    for name in atm.COLUMNS:
        got = p[name]
        if name in ("open_time", "close_time"):
            want = np.array([int(r[name]) for r in rows], dtype=np.int64)
            assert got.dtype == np.int64
        elif name == "trades":
            want = np.array([int(r[name]) for r in rows], dtype=np.uint32)
            assert got.dtype == np.uint32
        else:
            want = np.array([float(r[name]) for r in rows]).astype(ftype)
            assert got.dtype == ftype, name
        np.testing.assert_array_equal(got, want, err_msg=f"{k}: {name}")
    return len(rows)


def sparse_sha256(path: Path) -> str:
    """SHA-256 of a sparse file's data extents (offset and bytes), found with
    SEEK_DATA/SEEK_HOLE: series files are sized for the whole grid (a 1s
    series is ~95 GB of address space), so never read them whole."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        fd = f.fileno()
        size = os.fstat(fd).st_size
        pos = 0
        while pos < size:
            try:
                data = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError:  # ENXIO: no data after pos
                break
            hole = os.lseek(fd, data, os.SEEK_HOLE)
            h.update(data.to_bytes(8, "little"))
            f.seek(data)
            left = hole - data
            while left:
                chunk = f.read(min(left, 1 << 20))
                h.update(chunk)
                left -= len(chunk)
            pos = hole
    return h.hexdigest()


def snapshot(store: Path) -> dict:
    """Every file of the store: size, mtime, blocks and content hash."""
    out = {}
    for p in sorted(store.rglob("*")):
        if p.is_file():
            st = p.stat()
            out[str(p.relative_to(store))] = (
                st.st_size,
                st.st_mtime_ns,
                st.st_blocks,
                sparse_sha256(p),
            )
        else:
            out[str(p.relative_to(store))] = "dir"
    return out


@pytest.fixture(scope="session")
def imported(tmp_path_factory) -> Path:
    """`atm import testdata/binance`: spot ADABTC 1m (10 rows), DOGEUSDT 1s
    (3 rows), USD-M FILUSDT 1m (41,760 rows); f32."""
    store = tmp_path_factory.mktemp("imported") / "store"
    run_atm(store, "import", str(TESTDATA))
    return store


@pytest.fixture(scope="session")
def synced(tmp_path_factory) -> Path:
    """`atm sync --exchange sim`: an f64 store with gaps-free hourly series of
    a few symbols and a 1m series over several blocks."""
    store = tmp_path_factory.mktemp("synced") / "store"
    run_atm(
        store,
        "sync",
        "--exchange",
        "sim",
        "--markets",
        "um,spot",
        "--symbols",
        "BTCUSDT,ETHUSDT",
        "--intervals",
        "1h,1m",
        "--since",
        "2025-10-01",
        "--until",
        "2025-10-20",
        "--precision",
        "f64",
    )
    return store
