"""Time from a new Python process to its first 30-day range: atm for Python
against Polars reading the same series as Parquet (exported by `atm export`).

    python first_range.py --store STORE --dataset EXPORT_DIR [--reps 15]

Each command is a fresh `python -c` (interpreter start and imports
included: what a notebook or a cron job pays), run interleaved with the
others, `--reps` times each; medians and ratios to atm are printed, and the
first run's result is checked to be the same 43,200 closes in every command.
The series is spot/BTCUSDT/1m (as the peer harness writes it); the range is
the harness's W2 window, the 30 days in the middle.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

RANGE_ROWS = 43_200
STEP = 60_000

ATM = """
import sys, atm
k = atm.open(sys.argv[1]).read("spot", "BTCUSDT", "1m", int(sys.argv[2]), int(sys.argv[3]) - 1, columns=["close"])
c = k.close
print(len(c), float(c.sum(dtype="float64")))
"""

POLARS_READ = """
import sys, polars as pl
df = pl.read_parquet(sys.argv[1])
t0, t1 = int(sys.argv[2]), int(sys.argv[3])
t = pl.col("open_time").dt.epoch("ms")
c = df.filter((t >= t0) & (t < t1))["close"].to_numpy()
print(len(c), float(c.sum(dtype="float64")))
"""

POLARS_SCAN = """
import sys, polars as pl
t0, t1 = int(sys.argv[2]), int(sys.argv[3])
t = pl.col("open_time").dt.epoch("ms")
c = pl.scan_parquet(sys.argv[1]).filter((t >= t0) & (t < t1)).select("close").collect()["close"].to_numpy()
print(len(c), float(c.sum(dtype="float64")))
"""

BARE = """
import sys
print(0, 0.0)
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--store", required=True, help="atm store holding spot/BTCUSDT/1m")
    ap.add_argument("--dataset", required=True, help="`atm export --format parquet` of that store")
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--reps", type=int, default=15)
    ap.add_argument("--json", help="also write the samples here")
    args = ap.parse_args()
    files = sorted(Path(args.dataset).rglob("*.parquet"))
    files = [f for f in files if "symbol=BTCUSDT" in str(f) and "interval=1m" in str(f)] or files
    if not files:
        sys.exit(f"no Parquet files under {args.dataset}")
    glob = str(files[0]) if len(files) == 1 else str(Path(args.dataset) / "**" / "*.parquet")
    # The W2 window: 30 days in the middle of the series.
    probe = subprocess.run(
        [args.python, "-c", "import sys, atm; k = atm.open(sys.argv[1]).series()[0]; "
         "print(k['first_open_time'], k['last_open_time'])", args.store],
        capture_output=True, text=True, check=True,
    ).stdout.split()
    first, last = int(probe[0]), int(probe[1])
    rows = (last - first) // STEP + 1
    t0 = first + (rows // 2 - RANGE_ROWS // 2) * STEP
    t1 = t0 + RANGE_ROWS * STEP
    cmds = {
        "python -c pass (interpreter start)": (BARE, "-"),
        "atm: import atm, open, read 30 days of close": (ATM, args.store),
        "polars.read_parquet, then filter": (POLARS_READ, glob),
        "polars.scan_parquet with the filter pushed down": (POLARS_SCAN, glob),
    }
    samples: dict[str, list[float]] = {k: [] for k in cmds}
    results = {}
    for rep in range(args.reps + 1):
        for name, (code, target) in cmds.items():
            t = time.perf_counter()
            out = subprocess.run([args.python, "-c", code, target, str(t0), str(t1)], capture_output=True, text=True)
            dt = time.perf_counter() - t
            if out.returncode != 0:
                sys.exit(f"{name}: {out.stderr}")
            if rep == 0:  # untimed: warms the page cache and checks the answer
                results[name] = out.stdout.split()
            else:
                samples[name].append(dt)
    want = results["atm: import atm, open, read 30 days of close"]
    for name, got in results.items():
        if name.startswith("python -c pass"):
            continue
        if int(got[0]) != RANGE_ROWS or got != want:
            sys.exit(f"{name} read {got}, atm {want}: not the same 30 days")
    base = statistics.median(samples["atm: import atm, open, read 30 days of close"])
    print(f"time to the first 30-day range ({RANGE_ROWS} closes) in a new process, median of {args.reps}:")
    for name, xs in samples.items():
        m = statistics.median(xs)
        print(f"  {name:<50} {m * 1000:8.1f} ms  ({m / base:5.2f}x atm)  min {min(xs) * 1000:.1f}  max {max(xs) * 1000:.1f}")
    if args.json:
        Path(args.json).write_text(json.dumps({"t0_ms": t0, "t1_ms": t1, "samples_s": samples}, indent=1))


if __name__ == "__main__":
    main()
