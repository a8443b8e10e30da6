"""Reading beside the real writers: `atm import` and `atm stream` writing
while Python reads in a loop, a REST correction under a zero-copy view, and
`Store.live` against a running stream."""

from __future__ import annotations

import gzip
import json
import subprocess
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

import atm
from conftest import TESTDATA, assert_equals_query, atm_bin, run_atm, sim_serve

VALUE_COLUMNS = [c for c in atm.COLUMNS if c not in ("open_time", "close_time")]


def exchange_now(base: str) -> int:
    with urllib.request.urlopen(f"{base}/sim/v1/clock") as r:
        return int(json.load(r)["now"])


def read_while(writer: subprocess.Popen, store_dir: Path, key: tuple, also=None) -> tuple[list, int]:
    """Reads `key` (copy=True, present rows) in a loop until `writer` exits;
    returns the distinct snapshots (open times and value columns) and the
    number of reads. Only "no store yet" and "no series yet" may be raised."""
    snaps, reads = [], 0
    while writer.poll() is None:
        try:
            k = atm.open(store_dir).read(*key, copy=True).present()
        except (atm.StoreNotFoundError, atm.SeriesNotFoundError):
            continue
        reads += 1
        if also:
            also()
        if len(k) and (not snaps or len(k) != len(snaps[-1][0])):
            snaps.append((k.open_time, {c: k[c] for c in VALUE_COLUMNS}))
    return snaps, reads


def assert_snapshots_are_the_final_stores(store_dir: Path, key: tuple, snaps: list) -> None:
    """Every kline of every snapshot is whole and is the one the store ends
    with (no torn kline: a half-applied commit would show a present row with
    some values of before it)."""
    final = atm.open(store_dir).read(*key).present()
    pos = {int(t): i for i, t in enumerate(final.open_time)}
    for times, cols in snaps:
        missing = [int(t) for t in times if int(t) not in pos]
        assert not missing, f"snapshot rows the final store lacks: {missing[:5]}"
        idx = np.array([pos[int(t)] for t in times])
        for c, v in cols.items():
            np.testing.assert_array_equal(v, final[c][idx], err_msg=c)


def test_reading_in_a_loop_while_atm_sync_writes(tmp_path):
    """`atm sync` of ten months of ETHUSDT 1m (many commits) while this
    process reads the series in a loop."""
    store_dir = tmp_path / "store"
    writer = subprocess.Popen(
        [
            atm_bin(), "--store", str(store_dir), "sync", "--exchange", "sim", "--markets", "um",
            "--symbols", "ETHUSDT", "--intervals", "1m", "--since", "2025-01-01", "--until", "2025-10-20",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    key = ("um", "ETHUSDT", "1m")
    try:
        snaps, reads = read_while(writer, store_dir, key)
    finally:
        _, err = writer.communicate(timeout=300)
    assert writer.returncode == 0, err
    assert reads > 0 and len(snaps) > 1, (reads, len(snaps))
    assert_snapshots_are_the_final_stores(store_dir, key, snaps)


def test_reading_in_a_loop_while_atm_import_writes(tmp_path):
    """`atm import` of 29 daily files (29 commits) of FILUSDT 1m while this
    process reads the series in a loop: each read is a prefix of whole days,
    every value the source's."""
    month = TESTDATA / "futures" / "um" / "monthly" / "klines" / "FILUSDT" / "1m" / "FILUSDT-1m-2024-02.csv.gz"
    rows = gzip.decompress(month.read_bytes()).decode().splitlines()
    header = rows[0] if not rows[0][0].isdigit() else None
    data = rows[1:] if header else rows
    days: dict[str, list[str]] = {}
    for r in data:
        day = time.strftime("%Y-%m-%d", time.gmtime(int(r.split(",")[0]) // 1000))
        days.setdefault(day, []).append(r)
    src = tmp_path / "src" / "futures" / "um" / "daily" / "klines" / "FILUSDT" / "1m"
    src.mkdir(parents=True)
    for day, lines in days.items():
        (src / f"FILUSDT-1m-{day}.csv").write_text("\n".join(([header] if header else []) + lines) + "\n")
    assert len(days) == 29
    store_dir = tmp_path / "store"
    writer = subprocess.Popen(
        [atm_bin(), "--store", str(store_dir), "import", str(tmp_path / "src")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    key = ("um", "FILUSDT", "1m")
    try:
        snaps, reads = read_while(writer, store_dir, key)
    finally:
        _, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, err
    assert reads > 0
    for times, _ in snaps:
        assert len(times) % 1440 == 0, "each file commits whole: reads see whole days"
    assert_snapshots_are_the_final_stores(store_dir, key, snaps)
    final = atm.open(store_dir).read(*key)
    assert len(final.present()) == len(data)
    want_close = np.float32([float(r.split(",")[4]) for r in data])
    np.testing.assert_array_equal(final.present().close, want_close)


def test_reading_in_a_loop_while_atm_stream_writes_and_live_shows_the_kline_in_progress(tmp_path):
    """An exchange minute a second: `atm stream` keeps two series live for
    12 s while this process reads them in a loop and polls `Store.live`.
    Every read is whole and the exchange's; `live` shows the kline in
    progress after the newest stored one while the stream runs, and None
    once it has stopped."""
    store_dir = tmp_path / "store"
    with sim_serve("--universe", "real", "--time-scale", "60") as base:
        since = exchange_now(base) - 3 * 3_600_000
        run_atm(
            store_dir, "sync", "--exchange", base, "--markets", "spot", "--symbols", "BTCUSDT,ETHUSDT",
            "--intervals", "1m", "--since", str(since),
        )
        writer = subprocess.Popen(
            [
                atm_bin(), "--store", str(store_dir), "stream", "--exchange", base, "--markets", "spot",
                "--symbols", "BTCUSDT,ETHUSDT", "--intervals", "1m", "--duration", "12s",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        key = ("spot", "BTCUSDT", "1m")
        lives = []
        store = atm.open(store_dir)

        def poll_live():
            live = store.live(*key)
            if live is not None:
                newest = store.latest(*key)
                lives.append((live, newest))

        try:
            snaps, reads = read_while(writer, store_dir, key, also=poll_live)
        finally:
            _, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err
        out = run_atm(store_dir, "verify", "--exchange", base, "--markets", "spot")
        assert "0 differ, 0 missing, 0 extra" in out, out
    assert reads > 10 and len(snaps) > 3, (reads, len(snaps))
    assert_snapshots_are_the_final_stores(store_dir, key, snaps)
    for symbol in ("BTCUSDT", "ETHUSDT"):
        assert assert_equals_query(store_dir, atm.open(store_dir).read("spot", symbol, "1m")) > 180
    assert lives, "a running stream publishes the kline in progress"
    for live, newest in lives:
        assert live["open_time"] % 60_000 == 0
        assert live["close_time"] == live["open_time"] + 59_999
        assert live["low"] <= min(live["open"], live["close"]) <= max(live["open"], live["close"]) <= live["high"]
        # The kline in progress comes after the newest stored one (the stream
        # stores a kline when it closes, then publishes the next).
        assert newest is None or live["open_time"] >= newest["open_time"], (live, newest)
    assert len({live["open_time"] for live, _ in lives}) > 3, "live moves on with the exchange"
    assert store.live(*key) is None, "no stream runs any more"


def test_a_rest_correction_shows_through_a_view(tmp_path):
    """`atm verify --repair` against an exchange whose klines differ (another
    seed) rewrites every stored kline: a zero-copy view read before shows
    the corrected values, a `copy=True` read keeps the old ones."""
    store_dir = tmp_path / "store"
    key = ("um", "BTCUSDT", "1h")
    with sim_serve("--universe", "real", "--seed", "1") as first:
        run_atm(
            store_dir, "sync", "--exchange", first, "--markets", "um", "--symbols", "BTCUSDT",
            "--intervals", "1h", "--since", "2025-10-01", "--until", "2025-10-03",
        )
    store = atm.open(store_dir)
    view = store.read(*key)
    kept = store.read(*key, copy=True)
    assert view.is_zero_copy("close") and len(view) == 49
    with sim_serve("--universe", "real", "--seed", "2") as second:
        out = run_atm(store_dir, "verify", "--exchange", second, "--markets", "um", "--repair")
        assert "49 differ" in out and "49 klines rewritten" in out, out
    now = atm.open(store_dir).read(*key, copy=True)
    assert not np.array_equal(now.close, kept.close)
    for c in VALUE_COLUMNS:
        np.testing.assert_array_equal(view[c], now[c], err_msg=f"the view shows the correction: {c}")
    changed = [c for c in VALUE_COLUMNS if not np.array_equal(kept[c], now[c])]
    assert {"open", "close", "volume"} <= set(changed), changed
    np.testing.assert_array_equal(view.state, kept.state)


def test_nothing_but_documented_errors_while_a_stream_creates_the_store(tmp_path):
    """Reading a store that a stream is creating from nothing: before the
    store and the series exist the reads raise the documented errors, and
    afterwards every read succeeds."""
    store_dir = tmp_path / "store"
    errors = set()
    with sim_serve("--universe", "real", "--time-scale", "60") as base:
        writer = subprocess.Popen(
            [
                atm_bin(), "--store", str(store_dir), "stream", "--exchange", base, "--markets", "um",
                "--symbols", "ETHUSDT", "--intervals", "1m", "--duration", "5s",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            ok = 0
            while writer.poll() is None:
                try:
                    atm.open(store_dir).read("um", "ETHUSDT", "1m")
                    ok += 1
                except (atm.StoreNotFoundError, atm.SeriesNotFoundError) as e:
                    errors.add(type(e).__name__)
        finally:
            _, err = writer.communicate(timeout=60)
        assert writer.returncode == 0, err
    assert ok > 0 and errors <= {"StoreNotFoundError", "SeriesNotFoundError"}
