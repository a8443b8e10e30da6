"""Reads an `atm export` dataset with DuckDB, Polars and pyarrow and checks
it against `atm query`: every row, every value, the partition columns, the
types, and that a time filter prunes row groups by their statistics.

    python check_export.py ATM STORE OUT

Prints one JSON line with what it checked; exits non-zero on a mismatch.
"""

import csv
import io
import json
import subprocess
import sys

import duckdb
import numpy as np
import polars as pl
import pyarrow.dataset as ds
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

atm, store, out = sys.argv[1:4]
glob = f"{out}/**/*.parquet"
COLUMNS = ["open_time", "open", "high", "low", "close", "volume", "close_time",
           "quote_volume", "trades", "taker_buy_base", "taker_buy_quote"]
TIMES = ("open_time", "close_time")


def fail(msg):
    print(f"MISMATCH: {msg}", file=sys.stderr)
    sys.exit(1)


def run(*args):
    return subprocess.run([atm, "--store", store, *args], check=True, capture_output=True, text=True).stdout


API_INTERVAL = {"1mo": "1M"}

# The whole dataset through DuckDB, as one table with the partition columns.
con = duckdb.connect()
rel = con.sql(f"select * from read_parquet('{glob}', hive_partitioning = true)")
types = dict(zip(rel.columns, [str(t) for t in rel.types]))
for c in TIMES:
    if types[c] != "TIMESTAMP WITH TIME ZONE":
        fail(f"duckdb reads {c} as {types[c]}")
if not types["trades"].startswith(("UINTEGER", "INTEGER", "BIGINT", "UBIGINT")):
    fail(f"trades is {types['trades']}")
series = con.sql(f"""select market, interval, symbol, count(*) as n
                     from read_parquet('{glob}', hive_partitioning = true) group by all order by all""").fetchall()
checked_rows = 0
for market, interval, symbol, n in series:
    expected = list(csv.DictReader(io.StringIO(run(
        "query", "--market", market, "--symbol", symbol, "--interval", API_INTERVAL.get(interval, interval), "--format", "csv"))))
    if len(expected) != n:
        fail(f"{market}/{symbol}/{interval}: duckdb counts {n} rows, atm query prints {len(expected)}")
    got = con.sql(f"""select epoch_ms(open_time) as open_time, * exclude (open_time, close_time, market, interval, symbol, year),
                             epoch_ms(close_time) as close_time
                      from read_parquet('{glob}', hive_partitioning = true)
                      where market = '{market}' and interval = '{interval}' and symbol = '{symbol}'
                      order by open_time""").fetchnumpy()
    for c in COLUMNS:
        want = np.array([float(r[c]) for r in expected])
        have = np.asarray(got[c], dtype=np.float64)
        if c not in TIMES and c != "trades":
            # f32 columns: atm prints the shortest decimal of the stored f32.
            want = want.astype(np.float32).astype(np.float64) if types[c] == "FLOAT" else want
        if not np.array_equal(want, have):
            i = int(np.argmax(want != have))
            fail(f"{market}/{symbol}/{interval} {c} row {i}: atm query {expected[i][c]}, duckdb {have[i]}")
    checked_rows += n

# Polars reads the same table (lazily, with the partition columns).
lf = pl.scan_parquet(glob, hive_partitioning=True)
counts = lf.group_by(["market", "interval", "symbol"]).len().sort(["market", "interval", "symbol"]).collect()
polars_counts = [(r["market"], r["interval"], r["symbol"], r["len"]) for r in counts.iter_rows(named=True)]
if polars_counts != [tuple(s) for s in series]:
    fail(f"polars counts {polars_counts} != duckdb {series}")
schema = lf.collect_schema()
if str(schema["open_time"]) != "Datetime(time_unit='ms', time_zone='UTC')":
    fail(f"polars reads open_time as {schema['open_time']}")
duck_sum = con.sql(f"select sum(volume::double), sum(trades) from read_parquet('{glob}', hive_partitioning = true)").fetchall()[0]
pl_sum = lf.select(pl.col("volume").cast(pl.Float64).sum(), pl.col("trades").cast(pl.Int64).sum()).collect().row(0)
if abs(duck_sum[0] - pl_sum[0]) > 1e-6 * abs(duck_sum[0]) or duck_sum[1] != pl_sum[1]:
    fail(f"sums differ: duckdb {duck_sum}, polars {pl_sum}")

# Every row group has min/max statistics on open_time, and a time filter
# prunes row groups through them (pyarrow's dataset scanner).
row_groups = pruned_to = 0
for frag in ds.dataset(out, format="parquet", partitioning="hive").get_fragments():
    meta = pq.ParquetFile(frag.path).metadata
    for i in range(meta.num_row_groups):
        col = meta.row_group(i).column(0)
        if col.path_in_schema != "open_time" or not (col.statistics and col.statistics.has_min_max):
            fail(f"{frag.path} row group {i}: no min/max statistics on open_time")
        if col.compression != "ZSTD":
            fail(f"{frag.path}: {col.compression}, not ZSTD")
    if meta.num_row_groups > 1:
        first = meta.row_group(0).column(0).statistics
        f = (ds.field("open_time") >= first.min) & (ds.field("open_time") <= first.max)
        kept = frag.split_by_row_group(f, schema=frag.physical_schema)
        if len(kept) >= meta.num_row_groups:
            fail(f"{frag.path}: a filter on the first row group's time span kept {len(kept)} of {meta.num_row_groups} row groups")
        row_groups += meta.num_row_groups
        pruned_to += len(kept)
# `atm query --format arrow` from a pipe: the same names, types and values
# as the exported file of the series.
market, interval, symbol, n = series[-1]
piped = subprocess.run([atm, "--store", store, "query", "--market", market, "--symbol", symbol, "--interval",
                        API_INTERVAL.get(interval, interval), "--format", "arrow"], check=True, capture_output=True).stdout
table = ipc.open_stream(piped).read_all()
exported = ds.dataset(f"{out}/market={market}/interval={interval}/symbol={symbol}", format="parquet").to_table()
if table.schema != exported.schema:
    fail(f"atm query --format arrow schema {table.schema} != exported {exported.schema}")
if not table.equals(exported.sort_by("open_time")):
    fail(f"atm query --format arrow differs from the export of {market}/{symbol}/{interval}")
print(json.dumps({"series": len(series), "rows": checked_rows, "row_groups": row_groups, "row_groups_after_filter": pruned_to,
                  "arrow_stream_rows": table.num_rows}))
