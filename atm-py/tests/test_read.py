"""Reading stores made by the real `atm` binary: values, zero-copy, errors."""

from __future__ import annotations

import gc
import os
import struct
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import atm
from conftest import TESTDATA, assert_equals_query, run_atm, snapshot

VALUE_COLUMNS = [c for c in atm.COLUMNS if c not in ("open_time", "close_time")]


def test_every_series_of_an_import_equals_atm_query(imported):
    store = atm.open(imported)
    listed = store.series()
    keys = {(s["market"], s["symbol"], s["interval"]) for s in listed}
    assert keys == {("spot", "ADABTC", "1m"), ("spot", "DOGEUSDT", "1s"), ("um", "FILUSDT", "1m")}
    for s in listed:
        k = store.read(s["market"], s["symbol"], s["interval"])
        assert int((k.state == atm.PRESENT).sum()) == s["present"]
        assert int((k.state == atm.MISSING).sum()) == s["missing"]
        assert int((k.state == atm.UNKNOWN).sum()) == s["unknown"]
        assert len(k) == s["present"] + s["missing"] + s["unknown"]
        assert k.open_time[0] == s["first_open_time"]
        assert k.open_time[-1] == s["last_open_time"]
        assert assert_equals_query(imported, k) == s["present"]
    assert [s["symbol"] for s in store.series(market="spot", interval="1s")] == ["DOGEUSDT"]


def test_series_lists_what_atm_info_lists(imported):
    import json

    info = json.loads(run_atm(imported, "info", "--format", "json"))
    assert atm.open(imported).series() == info


def test_ranges_and_tails_equal_atm_query(imported):
    store = atm.open(imported)
    cases = [
        ("2024-02-10", "2024-02-11", ["--from", "2024-02-10", "--to", "2024-02-11"]),
        ("2024-02-03T12:34:00Z", 1707400000000, ["--from", "2024-02-03T12:34:00Z", "--to", "1707400000000"]),
    ]
    for a, z, args in cases:
        k = store.read("um", "FILUSDT", "1m", a, z)
        assert assert_equals_query(imported, k, *args) > 0
    t = store.read("um", "FILUSDT", "1m", tail=100)
    assert assert_equals_query(imported, t, "--tail", "100") == 100
    t = store.read("um", "FILUSDT", "1m", "2024-02-10", "2024-02-11", tail=7)
    assert assert_equals_query(imported, t, "--from", "2024-02-10", "--to", "2024-02-11", "--tail", "7") == 7
    import datetime as dt

    k = store.read("um", "FILUSDT", "1m", dt.datetime(2024, 2, 10), dt.date(2024, 2, 11))
    assert len(k) == 24 * 60 + 1
    assert len(store.read("um", "FILUSDT", "1m", "2030-01-01", "2030-02-01")) == 0
    whole = store.read("um", "FILUSDT", "1m")
    latest = store.latest("um", "FILUSDT", "1m")
    assert latest["open_time"] == whole.open_time[-1]
    assert latest["close"] == float(whole.close[-1])
    assert latest["trades"] == int(whole.trades[-1])


def test_synced_f64_store_equals_atm_query(synced):
    store = atm.open(synced)
    assert store.precision == "f64"
    series = store.series()
    assert {(s["market"], s["interval"]) for s in series} == {
        ("spot", "1m"),
        ("spot", "1h"),
        ("um", "1m"),
        ("um", "1h"),
    }
    for s in series:
        k = store.read(s["market"], s["symbol"], s["interval"])
        assert k.close.dtype == np.float64
        assert assert_equals_query(synced, k) == s["present"]


def mappings_of(path: Path) -> list:
    """(start, end, file offset) of this process's mappings of `path`."""
    out = []
    with open("/proc/self/maps") as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) == 6 and parts[5].strip() == str(path):
                a, z = (int(x, 16) for x in parts[0].split("-"))
                out.append((a, z, int(parts[2], 16)))
    return out


def test_value_columns_are_zero_copy_views_of_the_mapped_file(imported):
    store = atm.open(imported)
    a = store.read("um", "FILUSDT", "1m", "2024-02-05", "2024-02-20")
    # The same store: its open series file (one map) serves both reads.
    b = store.read("um", "FILUSDT", "1m", "2024-02-10", "2024-02-12")
    kl = imported / "um" / "1m" / "FILUSDT.kl"
    maps = mappings_of(kl.resolve())
    assert maps, "the series file is mapped"
    for name in VALUE_COLUMNS:
        col = a[name]
        assert a.is_zero_copy(name)
        assert not col.flags.owndata
        assert not col.flags.writeable
        with pytest.raises(ValueError):
            col.flags.writeable = True
        ptr = col.__array_interface__["data"][0]
        assert any(s <= ptr and ptr + col.nbytes <= e for s, e, _ in maps), name
        assert np.shares_memory(col, b[name]), name
    # pyarrow adopts the same buffers (no gaps in this range).
    pa = pytest.importorskip("pyarrow")
    t = pa.table(a)
    assert t.num_rows == len(a)
    close = t.column("close").chunk(0)
    assert close.buffers()[1].address == a.close.__array_interface__["data"][0]
    # copy=True: private arrays.
    c = store.read("um", "FILUSDT", "1m", "2024-02-10", "2024-02-12", copy=True)
    assert not c.is_zero_copy("close")
    assert not np.shares_memory(c.close, b.close)
    np.testing.assert_array_equal(c.close, b.close)


def test_handles_of_one_store_share_its_maps_and_a_store_made_again_is_opened_anew(tmp_path):
    """`atm.open` of a store the process has open shares it: a hundred
    handles, each reading, map the series file once. A store deleted and
    imported again at the same path (its inode number may well be reused)
    is a new store: its new klines are read, not the old map's."""
    src = TESTDATA / "spot" / "daily" / "klines" / "ADABTC" / "1m" / "ADABTC-1m-2021-11-27.csv"
    rows = src.read_text().splitlines()
    part = tmp_path / "part" / "spot" / "ADABTC-1m-2021-11-27.csv"
    part.parent.mkdir(parents=True)
    part.write_text("\n".join(rows[:4]) + "\n")
    store_dir = tmp_path / "store"
    run_atm(store_dir, "import", str(part))
    kl = (store_dir / "spot" / "1m" / "ADABTC.kl").resolve()
    for _ in range(100):
        assert len(atm.open(store_dir).read("spot", "ADABTC", "1m", copy=True)) == 4
    assert len(mappings_of(kl)) == 1, mappings_of(kl)
    gc.collect()
    subprocess.run(["rm", "-rf", str(store_dir)], check=True)
    run_atm(store_dir, "import", str(src))
    k = atm.open(store_dir).read("spot", "ADABTC", "1m")
    assert len(k) == 10
    np.testing.assert_array_equal(k.close, np.float32([float(r.split(",")[4]) for r in rows]))


def test_views_outlive_the_store_object(imported):
    store = atm.open(imported)
    k = store.read("um", "FILUSDT", "1m")
    close = k.close
    want = close.copy()
    del store, k
    gc.collect()
    np.testing.assert_array_equal(close, want)
    assert close.base is not None


def test_conversions(imported):
    store = atm.open(imported)
    k = store.read("um", "FILUSDT", "1m", "2024-02-10", "2024-02-11")
    pd = pytest.importorskip("pandas")
    df = k.to_pandas()
    assert isinstance(df.index, pd.DatetimeIndex)
    assert str(df.index.tz) == "UTC"
    assert df.index[0] == pd.Timestamp("2024-02-10", tz="UTC")
    assert list(df.columns) == [c for c in atm.COLUMNS if c != "open_time"]
    np.testing.assert_array_equal(df["close"].to_numpy(), k.present().close)
    pl = pytest.importorskip("polars")
    d = k.to_polars()
    assert d.columns == list(atm.COLUMNS)
    assert d.height == len(k.present())
    np.testing.assert_array_equal(d["volume"].to_numpy(), k.volume)
    d2 = pl.DataFrame(k)
    assert d2.equals(d)
    sub = store.read("um", "FILUSDT", "1m", columns=["close", "trades"])
    assert sub.columns == ["open_time", "close", "close_time", "trades", "state"]
    with pytest.raises(AttributeError):
        sub.open
    assert sub.to_arrow().column_names == ["open_time", "close", "close_time", "trades"]


def test_duckdb_queries_klines_through_the_arrow_stream(imported):
    """DuckDB's Python API takes a `Klines` as a table (through
    `__arrow_c_stream__`) and computes the same as numpy."""
    duckdb = pytest.importorskip("duckdb")
    k = atm.open(imported).read("um", "FILUSDT", "1m", "2024-02-10", "2024-02-11")
    con = duckdb.connect()
    got = con.execute(
        "select count(*), max(high), sum(volume), epoch_ms(min(open_time)), epoch_ms(max(close_time))"
        " from (select * from k)"
    ).fetchone()
    p = k.present()
    assert got[0] == len(p)
    assert got[1] == pytest.approx(float(p.high.max()))
    assert got[2] == pytest.approx(float(p.volume.astype(np.float64).sum()), rel=1e-6)
    assert (got[3], got[4]) == (int(p.open_time[0]), int(p.close_time[-1]))
    hourly = con.execute(
        "select epoch_ms(date_trunc('hour', open_time)) h, last(close order by open_time) c"
        " from k group by h order by h"
    ).fetchall()
    assert len(hourly) == 25
    assert hourly[1][1] == pytest.approx(float(p.close[119]))


def test_reads_from_many_threads(imported):
    store = atm.open(imported)
    want = store.read("um", "FILUSDT", "1m", copy=True).close
    errors = []

    def work():
        try:
            for _ in range(20):
                np.testing.assert_array_equal(store.read("um", "FILUSDT", "1m").close, want)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


def test_bad_arguments_raise_value_error(imported):
    store = atm.open(imported)
    for args, kw in [
        (("xx", "FILUSDT", "1m"), {}),
        (("um", "FILUSDT", "7m"), {}),
        (("um", "../../etc/passwd", "1m"), {}),
        (("um", "FIL/USDT", "1m"), {}),
        (("um", "", "1m"), {}),
        (("um", "A" * 300, "1m"), {}),
        (("um", "FILUSDT", "1m", "2024-02-11", "2024-02-10"), {}),
        (("um", "FILUSDT", "1m", "yesterday"), {}),
        (("um", "FILUSDT", "1m"), {"columns": ["nope"]}),
        (("um", "FILUSDT", "1m"), {"tail": -1}),
        (("um", "FILUSDT", "1m"), {"kind": "funding"}),
    ]:
        with pytest.raises(ValueError):
            store.read(*args, **kw)


def test_a_missing_series_is_a_key_error_naming_what_the_store_has(imported):
    store = atm.open(imported)
    with pytest.raises(KeyError) as e:
        store.read("um", "BTCUSDT", "1m")
    assert isinstance(e.value, atm.SeriesNotFoundError)
    assert isinstance(e.value, atm.Error)
    assert "FILUSDT 1m" in str(e.value)
    with pytest.raises(atm.SeriesNotFoundError, match="no cm series"):
        store.latest("cm", "BTCUSD_PERP", "1m")


def test_a_missing_store(tmp_path):
    with pytest.raises(atm.StoreNotFoundError) as e:
        atm.open(tmp_path / "nothing")
    assert isinstance(e.value, FileNotFoundError)
    assert isinstance(e.value, atm.Error)
    os.environ["ATM_STORE"] = str(tmp_path / "env-store")
    try:
        assert atm.default_store_path() == tmp_path / "env-store"
        with pytest.raises(atm.StoreNotFoundError, match="env-store"):
            atm.open()
    finally:
        del os.environ["ATM_STORE"]


def damaged_copy(src: Path, dst: Path) -> Path:
    """A copy of the store to damage. Series files are sparse and sized for
    the whole grid (a 1s series spans terabytes of address space): copy them
    with their holes, never with `shutil.copytree`, which would fill them."""
    subprocess.run(["cp", "-a", "--sparse=always", str(src), str(dst)], check=True)
    used = int(subprocess.run(["du", "-sk", str(dst)], capture_output=True, text=True, check=True).stdout.split()[0])
    assert used < 512 * 1024, f"the copy of {src} takes {used} KiB: holes were filled"
    return dst


def test_a_flipped_byte_in_a_column_is_a_corrupt_error_naming_file_and_series(imported, tmp_path):
    store_dir = damaged_copy(imported, tmp_path / "s")
    kl = store_dir / "um" / "1m" / "FILUSDT.kl"
    # Find a byte of the mapped close column of a present kline: the view
    # gives its address; its offset in the file is that minus the mapping's.
    # In another process: this one is to read the file first after the
    # damage (a process verifies a block once, and its handles share that).
    find = (
        "import sys, atm\n"
        "k = atm.open(sys.argv[1]).read('um', 'FILUSDT', '1m', '2024-02-10', '2024-02-10T00:10:00Z')\n"
        "ptr = k.close.__array_interface__['data'][0]\n"
        "for line in open('/proc/self/maps'):\n"
        "    p = line.split(None, 5)\n"
        "    a, z = (int(x, 16) for x in p[0].split('-'))\n"
        "    if len(p) == 6 and p[5].strip() == sys.argv[2] and a <= ptr < z:\n"
        "        print(ptr - a + int(p[2], 16))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", find, str(store_dir), str(kl.resolve())], capture_output=True, text=True, check=True
    )
    off = int(out.stdout)
    with open(kl, "r+b") as f:
        f.seek(off)
        b = f.read(1)
        f.seek(off)
        f.write(bytes([b[0] ^ 0x40]))
    with pytest.raises(atm.CorruptError) as e:
        atm.open(store_dir).read("um", "FILUSDT", "1m")
    msg = str(e.value)
    assert "FILUSDT.kl" in msg and "FILUSDT" in msg


def test_a_truncated_series_file_is_refused(imported, tmp_path):
    store_dir = damaged_copy(imported, tmp_path / "s")
    kl = store_dir / "um" / "1m" / "FILUSDT.kl"
    with open(kl, "r+b") as f:
        f.truncate(4096)
    with pytest.raises(atm.CorruptError, match="FILUSDT"):
        atm.open(store_dir).read("um", "FILUSDT", "1m")


def test_a_newer_store_version_is_refused_clearly(imported, tmp_path):
    store_dir = damaged_copy(imported, tmp_path / "s")
    head = store_dir / "atm-store"
    b = bytearray(head.read_bytes())
    b[8:12] = struct.pack("<I", 99)
    head.write_bytes(bytes(b))
    with pytest.raises(atm.UnsupportedVersionError, match="version 99"):
        atm.open(store_dir)


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), as the format's checksums (slow; for headers)."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def test_a_newer_series_file_version_is_refused_clearly(imported, tmp_path):
    """A series file written by a newer atm (its header's version 2, its
    checksum right) is refused naming the file and both versions; the other
    series read on."""
    store_dir = damaged_copy(imported, tmp_path / "s")
    kl = store_dir / "um" / "1m" / "FILUSDT.kl"
    with open(kl, "r+b") as f:
        head = bytearray(f.read(4096))
        assert head[:8] == b"ATMSER\0\0"
        head[8:12] = struct.pack("<I", 2)
        head[4092:4096] = struct.pack("<I", crc32c(bytes(head[:4092])))
        f.seek(0)
        f.write(head)
    before = snapshot(store_dir)
    store = atm.open(store_dir)
    with pytest.raises(atm.UnsupportedVersionError, match=r"FILUSDT\.kl.*version 2") as e:
        store.read("um", "FILUSDT", "1m")
    assert "1" in str(e.value)
    assert len(store.read("spot", "ADABTC", "1m")) == 10
    assert snapshot(store_dir) == before


def test_reads_write_nothing_to_the_store(imported, synced):
    for store_dir in (imported, synced):
        before = snapshot(store_dir)
        store = atm.open(store_dir)
        for s in store.series():
            k = store.read(s["market"], s["symbol"], s["interval"])
            k.present()
            k.open_time
            store.latest(s["market"], s["symbol"], s["interval"])
            try:
                k.to_arrow()
            except ImportError:
                pass
        with pytest.raises(KeyError):
            store.read("spot", "NOPE", "1m")
        del store, k
        gc.collect()
        assert snapshot(store_dir) == before


def test_what_a_view_held_afterwards_sees(tmp_path):
    """docs/python.md, "What a zero-copy view can see later": a kline
    written later into an unknown slot of the window shows through the view
    (not through `state`); `atm compact` punching the view's block out of the
    file reads as zeros under it; `copy=True` arrays never change."""
    src = TESTDATA / "spot" / "daily" / "klines" / "ADABTC" / "1m" / "ADABTC-1m-2021-11-27.csv"
    rows = src.read_text().splitlines()
    part = tmp_path / "part" / "spot" / "ADABTC-1m-2021-11-27.csv"
    part.parent.mkdir(parents=True)
    part.write_text("\n".join(rows[:3] + rows[6:]) + "\n")  # slots 3..5 unknown
    store_dir = tmp_path / "store"
    run_atm(store_dir, "import", str(part))
    store = atm.open(store_dir)
    view = store.read("spot", "ADABTC", "1m")
    copy = store.read("spot", "ADABTC", "1m", copy=True)
    assert len(view) == 10
    assert list(view.state[3:6]) == [atm.UNKNOWN] * 3
    assert list(view.close[3:6]) == [0.0] * 3
    run_atm(store_dir, "import", str(src))
    want = np.float32([float(r.split(",")[4]) for r in rows])
    np.testing.assert_array_equal(view.close, want)  # the new klines show through
    assert list(view.state[3:6]) == [atm.UNKNOWN] * 3  # the state is the snapshot's
    assert list(copy.close[3:6]) == [0.0] * 3  # a copy never changes
    np.testing.assert_array_equal(store.read("spot", "ADABTC", "1m").state, [atm.PRESENT] * 10)

    # Compaction under a view: FILUSDT's 41,760 klines span 11 blocks, all
    # but the newest sealed.
    fil = TESTDATA / "futures"
    big = tmp_path / "big"
    run_atm(big, "import", str(fil))
    store = atm.open(big)
    view = store.read("um", "FILUSDT", "1m")
    kept = store.read("um", "FILUSDT", "1m", copy=True)
    assert view.is_zero_copy("close")
    run_atm(big, "compact")
    after = atm.open(big).read("um", "FILUSDT", "1m")
    assert not after.is_zero_copy("close")  # cold blocks are copied out
    np.testing.assert_array_equal(after.close, kept.close)
    assert_equals_query(big, after)
    zeros = view.close == 0
    assert zeros[:4096].all(), "a punched-out block reads as zeros under an old view"
    assert not zeros[-100:].any(), "the newest block stays hot"
    np.testing.assert_array_equal(view.close[~zeros], kept.close[~zeros])


def test_registry_status_live_and_cross_section(synced):
    import json

    store = atm.open(synced)
    reg = store.registry("um")
    names = [r["symbol"] for r in reg]
    assert "BTCUSDT" in names and names == sorted(names)
    btc = reg[names.index("BTCUSDT")]
    assert btc["status"] and "first_kline" in btc and "listed" in btc
    assert store.registry("cm") == [] or all("symbol" in r for r in store.registry("cm"))
    assert store.status() == json.loads(run_atm(synced, "status", "--format", "json"))["processes"]
    assert store.live("um", "BTCUSDT", "1m") is None  # no stream runs
    at = "2025-10-05T12:00:00Z"
    cs = store.cross_section("um", "1h", at)
    syms = list(cs["symbol"])
    assert syms == sorted(s["symbol"] for s in store.series(market="um", interval="1h"))
    for i, sym in enumerate(syms):
        k = store.read("um", sym, "1h", at, at)
        assert cs["present"][i]
        assert cs["close"][i] == k.close[0]
        assert cs["open_time"][i] == k.open_time[0]
    only = store.cross_section("um", "1h", at, columns=["close"], symbols=["ETHUSDT"])
    assert list(only) == ["symbol", "present", "close"] and list(only["symbol"]) == ["ETHUSDT"]
    far = store.cross_section("um", "1h", "2019-01-01")
    assert not far["present"].any() and np.isnan(far["close"]).all()
    with pytest.raises(ValueError):
        store.cross_section("um", "1h", at, columns=["nope"])


def test_a_series_a_crashed_writer_left_mid_commit_needs_recovery(imported, tmp_path):
    """A block whose seqlock stays odd (its writer died inside a commit):
    the reader waits 2 s, then raises NeedsRecoveryError naming the file,
    and repairs nothing (read-only: no journal replay)."""
    store_dir = damaged_copy(imported, tmp_path / "s")
    kl = store_dir / "um" / "1m" / "FILUSDT.kl"
    with open(kl, "r+b") as f:
        f.seek(48)  # header: block table offset (docs/format.md)
        (table,) = struct.unpack("<Q", f.read(8))
        f.seek(32)
        (capacity,) = struct.unpack("<Q", f.read(8))
        f.seek(table)
        entries = f.read((capacity + 4095) // 4096 * 64)
        first = next(
            b for b in range(len(entries) // 64) if struct.unpack_from("<I", entries, b * 64 + 8)[0] > 0
        )
        (seq,) = struct.unpack_from("<I", entries, first * 64)
        assert seq % 2 == 0
        f.seek(table + first * 64)
        f.write(struct.pack("<I", seq + 1))
    before = snapshot(store_dir)
    store = atm.open(store_dir)
    with pytest.raises(atm.NeedsRecoveryError, match="FILUSDT.kl"):
        store.read("um", "FILUSDT", "1m")
    assert len(store.read("spot", "ADABTC", "1m")) == 10  # other series read on
    assert snapshot(store_dir) == before
