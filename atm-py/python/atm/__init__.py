"""atm for Python: read an atm store of Binance klines.

Open a store read-only with :func:`open`, read a series with
:meth:`Store.read`: a :class:`Klines` whose value columns are zero-copy,
read-only numpy arrays over the store's mapped files. Convert with
:meth:`Klines.to_arrow`, :meth:`Klines.to_pandas`, :meth:`Klines.to_polars`,
or hand a ``Klines`` to anything that takes the Arrow PyCapsule stream
interface (``pyarrow.table(k)``, ``polars.DataFrame(k)``, DuckDB).

>>> import atm
>>> store = atm.open()                      # ATM_STORE or ~/.local/share/atm
>>> k = store.read("um", "BTCUSDT", "1m", "2024-01-01", "2024-01-31")
>>> k.close[k.state == 1].mean()            # numpy, no copy of the closes
>>> df = k.to_pandas()                      # present klines, UTC index

See docs/python.md for the semantics (validation, consistency, what a
zero-copy view can see later, the GIL).
"""

from __future__ import annotations

import datetime as _dt
import os as _os
import re as _re
from pathlib import Path as _Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Union

if TYPE_CHECKING:
    import numpy as np

from . import _atm
from ._errors import (
    CorruptError,
    Error,
    NeedsRecoveryError,
    SeriesNotFoundError,
    StoreNotFoundError,
    UnsupportedVersionError,
)

__all__ = [
    "open",
    "default_store_path",
    "Store",
    "Klines",
    "COLUMNS",
    "UNKNOWN",
    "PRESENT",
    "MISSING",
    "Error",
    "CorruptError",
    "NeedsRecoveryError",
    "UnsupportedVersionError",
    "SeriesNotFoundError",
    "StoreNotFoundError",
]

#: Column names, as the header of ``atm query --format csv``.
COLUMNS: tuple = tuple(_atm.COLUMN_NAMES)
#: Values of the ``state`` column.
UNKNOWN, PRESENT, MISSING = 0, 1, 2

TimeLike = Union[int, str, _dt.datetime, _dt.date, None]


def default_store_path() -> _Path:
    """The store the CLI uses without ``--store``: ``$ATM_STORE``, else
    ``$XDG_DATA_HOME/atm``, else ``~/.local/share/atm``."""
    env = _os.environ.get("ATM_STORE")
    if env:
        return _Path(env)
    xdg = _os.environ.get("XDG_DATA_HOME")
    if xdg:
        return _Path(xdg) / "atm"
    home = _os.environ.get("HOME")
    return (_Path(home) / ".local" / "share" if home else _Path(".")) / "atm"


def open(path: Union[str, "_os.PathLike[str]", None] = None) -> "Store":  # noqa: A001
    """Opens the store in ``path`` (default: :func:`default_store_path`)
    **read-only**: it never writes a byte to the store, never replays a
    crashed writer's journal, and works while ``atm sync``, ``stream`` or
    ``import`` write. A store the process has open already is shared (its
    maps and the blocks it verified): a new handle costs one ``stat``.

    Raises :class:`StoreNotFoundError` when the directory holds no store,
    :class:`CorruptError` when its header is damaged,
    :class:`UnsupportedVersionError` for a newer format."""
    p = default_store_path() if path is None else _Path(_os.fspath(path))
    return Store._wrap(_atm.Store(str(p)))


_DIGITS = _re.compile(r"^-?\d+$")
_DATE = _re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _ms(t: TimeLike, what: str) -> Optional[int]:
    """A time argument as epoch ms (as ``atm query --from/--to`` reads it)."""
    if t is None:
        return None
    if isinstance(t, bool):
        raise ValueError(f"{what}: expected a time, got {t!r}")
    if isinstance(t, int):
        return t
    if isinstance(t, _dt.datetime):
        if t.tzinfo is None:
            t = t.replace(tzinfo=_dt.timezone.utc)
        return int(t.timestamp() * 1000)
    if isinstance(t, _dt.date):
        return _ms(_dt.datetime(t.year, t.month, t.day), what)
    if hasattr(t, "astype") and hasattr(t, "dtype"):  # numpy datetime64 / integer
        import numpy as np

        if np.issubdtype(t.dtype, np.datetime64):
            return int(t.astype("datetime64[ms]").astype("int64"))
        if np.issubdtype(t.dtype, np.integer):
            return int(t)
    if isinstance(t, str):
        s = t.strip()
        if _DIGITS.match(s):
            return int(s)
        if _DATE.match(s):
            return _ms(_dt.date.fromisoformat(s), what)
        try:
            return _ms(_dt.datetime.fromisoformat(s.replace("Z", "+00:00")), what)
        except ValueError:
            pass
    raise ValueError(
        f"{what}: {t!r} is not a time (a datetime, a date, an RFC 3339 or "
        "YYYY-MM-DD string, or epoch milliseconds)"
    )


class Store:
    """An atm store, opened read-only with :func:`atm.open`. Safe to share
    between threads; reads release the GIL."""

    __slots__ = ("_native",)

    @classmethod
    def _wrap(cls, native: Any) -> "Store":
        s = cls.__new__(cls)
        s._native = native
        return s

    @property
    def path(self) -> _Path:
        """The store's directory."""
        return _Path(self._native.path)

    @property
    def precision(self) -> str:
        """``"f32"`` or ``"f64"``: the numpy type of the float columns."""
        return self._native.precision

    def series(self, market: Optional[str] = None, interval: Optional[str] = None) -> List[Dict[str, Any]]:
        """The series of the store (of ``market``, of ``interval``), as
        ``atm info --format json`` lists them: one dict per series with
        ``market``, ``symbol``, ``interval``, ``first_open_time``,
        ``last_open_time`` (epoch ms or None), ``present``, ``missing``,
        ``unknown`` (slot counts over the span) and ``bytes`` (on disk)."""
        return self._native.series(market, interval)

    def read(
        self,
        market: str,
        symbol: str,
        interval: str,
        start: TimeLike = None,
        end: TimeLike = None,
        *,
        tail: Optional[int] = None,
        columns: Optional[Sequence[str]] = None,
        copy: bool = False,
        kind: str = "klines",
    ) -> "Klines":
        """The klines of one series.

        ``market`` is ``spot``, ``um`` or ``cm``; ``start``/``end`` are
        inclusive bounds on open time, as ``atm query --from/--to`` takes them
        (a datetime (naive means UTC), a date, an RFC 3339 or ``YYYY-MM-DD``
        string, or epoch milliseconds); without them, the series' whole span.

        The result covers every grid slot of the range that lies within the
        series' span (first to last present kline), present or not: see
        ``Klines.state``. ``tail=N`` starts it at the N-th newest present
        kline of the range instead. ``columns`` limits the value columns read
        (and verified); the times and ``state`` are always there.

        Value columns are read-only numpy arrays **over the store's mapped
        file** (no copy) where the data is hot; ``copy=True`` gives arrays
        over a private copy made inside the read instead (isolated from later
        writes; read-only too: ``np.array(k.close)`` for a writeable one). Every block the read touches is checksummed first
        (once per process), and the whole window is read in one consistent
        snapshot (no torn kline).

        Raises :class:`SeriesNotFoundError` (a ``KeyError``) naming what the
        store has, ``ValueError`` for bad arguments, :class:`CorruptError`
        for damage, :class:`NeedsRecoveryError` for a series a crashed
        writer left half-changed. ``kind`` is reserved (only ``"klines"``)."""
        if kind != "klines":
            raise ValueError(f"kind={kind!r}: only 'klines' is supported")
        if tail is not None and (isinstance(tail, bool) or not isinstance(tail, int) or tail < 0):
            raise ValueError(f"tail={tail!r}: expected a non-negative integer")
        if isinstance(columns, str):
            columns = [columns]
        a = _ms(start, "start")
        z = _ms(end, "end")
        native = self._native.read(
            market,
            symbol,
            interval,
            -(2**63) if a is None else a,
            2**63 - 1 if z is None else z,
            tail,
            None if columns is None else list(columns),
            bool(copy),
        )
        return Klines._wrap(native)

    def latest(self, market: str, symbol: str, interval: str) -> Optional[Dict[str, Any]]:
        """The newest present kline of the series as a dict (``atm query``'s
        column names; times in epoch ms), or None. O(1)."""
        return self._native.latest(market, symbol, interval)

    def live(self, market: str, symbol: str, interval: str) -> Optional[Dict[str, Any]]:
        """The kline in progress that a running ``atm stream`` publishes in
        shared memory (no network), as a dict like :meth:`latest`'s, or None
        when no stream publishes this series."""
        return self._native.live(market, symbol, interval)

    def status(self) -> List[Dict[str, Any]]:
        """Every atm process that runs (or ran) on the store, as
        ``atm status --format json`` lists them under ``processes``."""
        import json

        return json.loads(self._native.status_json())

    def registry(self, market: str) -> List[Dict[str, Any]]:
        """The symbols of ``market`` that the store knows (from ``atm sync``
        / ``atm markets``), sorted: dicts with ``symbol``, ``status``,
        ``base``, ``quote``, ``listed``, ``first_kline``, ``delisted`` (epoch
        ms or None), ``history`` (status changes) and ``extra``."""
        import json

        reg = json.loads(self._native.registry_json(market))
        return [reg["symbols"][s] for s in sorted(reg["symbols"])]

    def cross_section(
        self,
        market: str,
        interval: str,
        at: TimeLike,
        columns: Optional[Sequence[str]] = None,
        symbols: Optional[Sequence[str]] = None,
    ) -> Dict[str, Any]:
        """One kline per symbol at open time ``at`` (a universe snapshot):
        a dict of numpy arrays, one entry per symbol of ``market`` and
        ``interval`` (only ``symbols`` if given, in the store's order):
        ``symbol`` (str), ``present`` (bool), then the ``columns`` asked for
        (all by default; floats as float64, NaN where there is no kline;
        trades uint32 and times int64, 0 there)."""
        import numpy as np

        t = _ms(at, "at")
        if t is None:
            raise ValueError("at: a time is required")
        names = list(COLUMNS) if columns is None else list(columns)
        for n in names:
            if n not in COLUMNS:
                raise ValueError(f"unknown column {n!r}: expected some of {', '.join(COLUMNS)}")
        rows = self._native.cross_section(market, interval, t)
        if symbols is not None:
            wanted = set(symbols)
            rows = [r for r in rows if r[0] in wanted]
        out: Dict[str, Any] = {
            "symbol": np.array([r[0] for r in rows], dtype=object),
            "present": np.array([r[1] is not None for r in rows], dtype=bool),
        }
        for n in names:
            if n in ("open_time", "close_time"):
                out[n] = np.array([r[1][n] if r[1] else 0 for r in rows], dtype=np.int64)
            elif n == "trades":
                out[n] = np.array([r[1][n] if r[1] else 0 for r in rows], dtype=np.uint32)
            else:
                out[n] = np.array([r[1][n] if r[1] else np.nan for r in rows], dtype=np.float64)
        return out

    def __repr__(self) -> str:
        return f"<atm.Store {self._native.path} (read-only)>"


class Klines:
    """Klines of one series over a range of grid slots.

    Columns are attributes (and items: ``k["close"]``) named like the
    ``atm query --format csv`` header: ``open_time``, ``open``, ``high``,
    ``low``, ``close``, ``volume``, ``close_time``, ``quote_volume``,
    ``trades``, ``taker_buy_base``, ``taker_buy_quote``, plus ``state``
    (uint8: 0 unknown, 1 present, 2 known-missing).

    Value columns are of the store's type (float32 or float64; trades
    uint32), read-only, and, unless read with ``copy=True``, views of the
    mapped file where it is hot (``is_zero_copy(name)`` tells). Values of
    rows that are not present are whatever the file holds there (zeros,
    in practice): mask with ``state``.
    ``open_time``/``close_time`` (int64 epoch ms; irregular klines with their
    exact times) and ``state`` are computed on first access, allocated."""

    __slots__ = ("_native", "_cache")

    @classmethod
    def _wrap(cls, native: Any) -> "Klines":
        k = cls.__new__(cls)
        k._native = native
        k._cache = {}
        return k

    # -- metadata
    market = property(lambda self: self._native.market, doc="Market code.")
    symbol = property(lambda self: self._native.symbol, doc="Symbol.")
    interval = property(lambda self: self._native.interval, doc="Interval.")
    precision = property(lambda self: self._native.precision, doc='"f32" or "f64".')

    @property
    def columns(self) -> List[str]:
        """Names of the columns this Klines holds."""
        return list(self._native.names())

    def __len__(self) -> int:
        return len(self._native)

    def __getitem__(self, name: str) -> "np.ndarray":
        """The numpy array of column ``name`` (``KeyError`` if it was not read)."""
        if name not in self._cache:
            self._cache[name] = self._native.column(name)
        return self._cache[name]

    def _attr(self, name: str) -> "np.ndarray":
        try:
            return self[name]
        except KeyError as e:
            raise AttributeError(str(e)) from None

    @property
    def open_time(self) -> "np.ndarray":
        """Open times, int64 epoch ms (computed; irregular klines exact)."""
        return self._attr("open_time")

    @property
    def open(self) -> "np.ndarray":
        """Open prices (float32/float64 view of the map)."""
        return self._attr("open")

    @property
    def high(self) -> "np.ndarray":
        """High prices (float32/float64 view of the map)."""
        return self._attr("high")

    @property
    def low(self) -> "np.ndarray":
        """Low prices (float32/float64 view of the map)."""
        return self._attr("low")

    @property
    def close(self) -> "np.ndarray":
        """Close prices (float32/float64 view of the map)."""
        return self._attr("close")

    @property
    def volume(self) -> "np.ndarray":
        """Base-asset volumes (float32/float64 view of the map)."""
        return self._attr("volume")

    @property
    def close_time(self) -> "np.ndarray":
        """Close times, int64 epoch ms (computed; irregular klines exact)."""
        return self._attr("close_time")

    @property
    def quote_volume(self) -> "np.ndarray":
        """Quote-asset volumes (float32/float64 view of the map)."""
        return self._attr("quote_volume")

    @property
    def trades(self) -> "np.ndarray":
        """Trade counts (uint32 view of the map)."""
        return self._attr("trades")

    @property
    def taker_buy_base(self) -> "np.ndarray":
        """Taker buy base-asset volumes (float32/float64 view of the map)."""
        return self._attr("taker_buy_base")

    @property
    def taker_buy_quote(self) -> "np.ndarray":
        """Taker buy quote-asset volumes (float32/float64 view of the map)."""
        return self._attr("taker_buy_quote")

    @property
    def state(self) -> "np.ndarray":
        """Slot states, uint8: 0 unknown, 1 present, 2 known-missing (computed)."""
        return self._attr("state")

    def is_zero_copy(self, name: str) -> bool:
        """True when value column ``name`` is a view of the mapped file."""
        return self._native.is_zero_copy(name)

    def present(self) -> "Klines":
        """Only the present rows, as ``atm query`` prints them. Copies the
        columns when the range has gaps; shares the views when it has none."""
        return Klines._wrap(self._native.present())

    def __arrow_c_stream__(self, requested_schema: Any = None) -> Any:
        """The present rows as an Arrow C stream (the PyCapsule interface):
        ``pyarrow.table(k)``, ``polars.DataFrame(k)``, DuckDB. Times are UTC
        millisecond timestamps. Value buffers are shared with the map when
        every row is present and hot; gaps, cold blocks and ``copy=True``
        mean copies. The time columns are always computed."""
        return self._native.__arrow_c_stream__(requested_schema)

    def to_arrow(self) -> Any:
        """The present rows as a ``pyarrow.Table`` (see ``__arrow_c_stream__``
        for when it copies). Needs pyarrow."""
        import pyarrow as pa

        return pa.RecordBatchReader.from_stream(self).read_all()

    def to_pandas(self) -> Any:
        """The present rows as a ``pandas.DataFrame`` indexed by open time
        (a UTC ``DatetimeIndex``). pandas copies the columns it converts
        (float32 stays float32). Needs pandas and pyarrow."""
        df = self.to_arrow().to_pandas()
        return df.set_index("open_time")

    def to_polars(self) -> Any:
        """The present rows as a ``polars.DataFrame`` (through the Arrow C
        stream: Polars adopts the buffers it can). Needs polars."""
        import polars as pl

        try:
            return pl.DataFrame(self)
        except TypeError:  # older Polars without the PyCapsule interface
            return pl.from_arrow(self.to_arrow())

    def __repr__(self) -> str:
        return repr(self._native)
