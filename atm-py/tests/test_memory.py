"""Zero-copy at scale: reading every value column of a 3.2M-row series (the
size of BTCUSDT's 1m history) costs the process no anonymous memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO

ROWS = 3_200_000
FLOATS = ["open", "high", "low", "close", "volume", "quote_volume", "taker_buy_base", "taker_buy_quote"]
VALUE_COLUMNS = FLOATS + ["trades"]


def atm_peer() -> str:
    """The benchmark writer (`benches/src/bin/atm-peer.rs`): `$ATM_PEER`,
    else the workspace's release or debug build."""
    env = os.environ.get("ATM_PEER")
    if env:
        return env
    for profile in ("release", "debug"):
        p = REPO / "target" / profile / "atm-peer"
        if p.exists():
            return str(p)
    pytest.skip("no atm-peer binary: cargo build --release -p atm-benches (or set ATM_PEER)")


@pytest.fixture(scope="module")
def big_store(tmp_path_factory) -> Path:
    """3.2M 1m klines of spot BTCUSDT, written by atm-peer's one bulk commit
    from raw column files (the peer harness's source format)."""
    src = tmp_path_factory.mktemp("big-source")
    rng = np.random.default_rng(20190909)
    t0 = 1_567_997_820_000
    (t0 + 60_000 * np.arange(ROWS, dtype=np.int64)).astype("<i8").tofile(src / "open_time.bin")
    close = np.round(10_000 + np.cumsum(rng.normal(0, 5, ROWS)), 2).astype(np.float32)
    for name in FLOATS:
        col = close if name in ("open", "high", "low", "close") else rng.random(ROWS, dtype=np.float32) * 100
        col.astype("<f4").tofile(src / f"{name}.bin")
    np.floor(rng.random(ROWS) * 1000).astype("<f4").tofile(src / "trades.bin")
    meta = {
        "rows": ROWS,
        "origin_ms": t0,
        "step_ms": 60_000,
        "columns": [{"name": "open_time", "dtype": "i8"}] + [{"name": n, "dtype": "f4"} for n in VALUE_COLUMNS],
    }
    (src / "source.json").write_text(json.dumps(meta))
    store = tmp_path_factory.mktemp("big") / "store"
    req = {"op": "write_all", "store_dir": str(store), "source_dir": str(src)}
    subprocess.run([atm_peer(), "write_all", json.dumps(req)], check=True, capture_output=True)
    for f in src.iterdir():
        f.unlink()
    return store


# Measured in a fresh process: this one has allocated and freed the source's
# big arrays, and the allocator reuses those resident pages without a trace
# in RssAnon.
MEASURE = r"""
import json, sys
from pathlib import Path
import numpy as np
import atm

def rss_anon_kib():
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1])

store = atm.open(sys.argv[1])
store.read("spot", "BTCUSDT", "1m", tail=10).close.sum()  # one-time set-up out of the way
before = rss_anon_kib()
k = store.read("spot", "BTCUSDT", "1m")
sums, views = {}, {}
for name in json.loads(sys.argv[2]):
    col = k[name]
    views[name] = k.is_zero_copy(name) and not col.flags.owndata
    sums[name] = float(col.sum(dtype=np.float64))  # touches every value
values = rss_anon_kib() - before
present = len(k.present())
after_present = rss_anon_kib() - before
# The control: the computed columns are allocated (a byte and 8 bytes a row).
allocated = k.state.nbytes + k.open_time.nbytes
control = rss_anon_kib() - before
print(json.dumps(dict(rows=len(k), values=values, present=present, after_present=after_present,
                      allocated=allocated, control=control, sums=sums, views=views)))
"""


def test_reading_every_value_column_of_a_3_2m_row_series_allocates_under_1_mb(big_store):
    out = subprocess.run(
        [sys.executable, "-c", MEASURE, str(big_store), json.dumps(VALUE_COLUMNS)],
        capture_output=True,
        text=True,
        check=True,
    )
    m = json.loads(out.stdout.splitlines()[-1])
    assert m["rows"] == ROWS and m["present"] == ROWS
    assert all(m["views"].values()), m["views"]
    assert all(s > 0 for s in m["sums"].values()), m["sums"]
    assert m["values"] < 1024, f"RssAnon grew by {m['values']} KiB reading {ROWS} rows of {len(VALUE_COLUMNS)} columns"
    assert m["after_present"] < 1024, "present() of a series without gaps shares the buffers"
    # The measure sees allocations: state and open_time (28.8 MB) do show.
    assert m["control"] > 0.9 * m["allocated"] / 1024, m
