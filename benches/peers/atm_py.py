"""atm for Python (the `atm-klines` wheel) as a store of the peer harness.

    cd /tmp/peers   # a writable copy of shared/peers with its .venv
    .venv/bin/pip install /path/to/atm_klines-*.whl
    .venv/bin/python bench_peers.py --rows 3200000 --reps 5 \
        --plugin /path/to/atm/benches/peers/atm_py.py --external atm=/path/to/target/release/atm-peer

The package reads; it does not write. The series is written (W1) and
appended to (W5, W5b) by `atm-peer`, atm's own Rust writer, exactly as the
`--external atm` store does, so those columns repeat atm's. The reads run in
the harness's warm worker like the other Python stores: `atm.open` is the
handle (cold-ish: a new one per repetition; warm: one reused), and every read
returns arrays the caller owns (`copy=True`), as the harness requires; the
zero-copy path is what atm-py's tests prove and `first_range.py` times.

`ATM_PEER` names the atm-peer binary (default: this checkout's
target/release/atm-peer).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np

import bench_peers as b

ATM_PEER = os.environ.get("ATM_PEER") or str(Path(__file__).resolve().parents[2] / "target" / "release" / "atm-peer")
KEY = ("spot", "BTCUSDT", "1m")
FLOATS = ("open", "high", "low", "close", "volume", "quote_volume", "taker_buy_base", "taker_buy_quote")


def _peer(op: str, **req) -> dict:
    out = subprocess.run([ATM_PEER, op, json.dumps({"op": op, **req})], capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"atm-peer {op} exited {out.returncode}: {out.stderr.strip()[-2000:]}")
    return json.loads(out.stdout.splitlines()[-1])


class AtmPy(b.Store):
    name = "atm-py"
    label = "atm for Python (atm-klines)"
    packages = ("atm-klines", "numpy")
    write_notes = "atm-peer (atm's Rust writer; the Python package only reads): one durable commit"
    append_notes = "atm-peer: put_many + commit per batch (fdatasync)"

    def check(self) -> None:
        import atm  # noqa: F401

        if not Path(ATM_PEER).is_file():
            raise FileNotFoundError(f"{ATM_PEER}: build it with cargo build --release -p atm-benches, or set ATM_PEER")

    def _source(self, cols: b.Columns, what: str) -> Path:
        src = self.path.with_name(f"{self.path.name}.{what}")
        shutil.rmtree(src, ignore_errors=True)
        b.save_source(cols, src)
        return src

    def write_all(self, cols):
        src = self._source(cols, "write-input")
        try:
            reply = _peer("write_all", store_dir=str(self.path), source_dir=str(src))
        finally:
            shutil.rmtree(src, ignore_errors=True)
        return b.Timed(None, float(reply["seconds"]))

    def append_rows(self, rows, batch, deadline):
        import time

        src = self._source(rows, "append-input")
        try:
            budget = max(deadline - time.perf_counter(), 0.0)
            reply = _peer("append_rows", store_dir=str(self.path), source_dir=str(src), batch=int(batch), seconds=budget)
        finally:
            shutil.rmtree(src, ignore_errors=True)
        self.commit_latencies = [float(x) for x in reply.get("latencies_s", [])]
        return b.Timed(int(reply["rows"]), float(reply["seconds"]))

    def open(self):
        import atm

        return atm.open(self.path)

    def read_range(self, h, t0_ms, t1_ms):
        # The harness's range is half-open; atm's bounds are inclusive.
        return h.read(*KEY, t0_ms, t1_ms - 1, columns=["close"], copy=True).present().close

    def read_tail(self, h, n):
        k = h.read(*KEY, tail=n, copy=True).present()
        out = {"open_time": k.open_time}
        for name in FLOATS:
            out[name] = k[name]
        out["trades"] = k.trades.astype(np.float32)  # stored as uint32; the source's are float32
        out["ignore"] = np.zeros(len(k), dtype=np.float32)  # Binance's unused field is not stored
        return out

    def scan_sum(self, h, column):
        # A zero-copy view: nothing to own, the sum is the result.
        return float(np.sum(h.read(*KEY, columns=[column]).present()[column]))
