//! Command-line flags, defined once (help text comes from these doc comments).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// atm: every Binance kline on local disk, readable at memory speed.
#[derive(Debug, Parser)]
#[command(name = "atm", version, about, long_about = None, after_help = "Examples:\n  atm import --market um ~/Downloads/BTCUSDT-1m-2024-02.zip\n  atm query --market um --symbol BTCUSDT --interval 1m --from 2024-02-01 --to 2024-02-01T01:00:00Z\n  atm info --format json\n  atm verify\n  atm compact --before 2024-01-01")]
pub struct Cli {
    /// Store directory (default: $XDG_DATA_HOME/atm or ~/.local/share/atm).
    #[arg(long, global = true, env = "ATM_STORE", value_name = "DIR")]
    pub store: Option<PathBuf>,
    /// More log output (-v: info, -vv: debug, -vvv: trace).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Less log output (-q: errors only, -qq: nothing).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub quiet: u8,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Import Binance kline CSV, .csv.gz and data.binance.vision .zip files (or directories of them).
    Import(ImportArgs),
    /// Print the klines of one series.
    Query(QueryArgs),
    /// List every series with its span, slot counts and size on disk.
    Info(InfoArgs),
    /// Check every checksum and invariant of the store, and with --exchange compare stored klines with the exchange's (--repair fixes them); one line per problem.
    Verify(VerifyArgs),
    /// Compress sealed (old) blocks with zstd; reads stay transparent.
    Compact(CompactArgs),
    /// Fill the store with the complete kline history of the chosen markets, symbols and intervals.
    #[command(
        after_help = "Examples:\n  atm sync --exchange sim --markets spot --symbols BTCUSDT,ETHUSDT --intervals 1h,1d\n  atm sync --markets um --symbols '*USDT' --intervals 1m --since 2024-01-01 --dry-run\n  atm sync --exchange http://127.0.0.1:8080 --format json"
    )]
    Sync(SyncArgs),
    /// Keep the store live from Binance's kline streams (after filling the gap since each series' newest kline).
    #[command(
        after_help = "Examples:\n  atm stream --exchange sim --markets spot --symbols BTCUSDT,ETHUSDT --duration 1m\n  atm stream --markets um --symbols '*USDT' --intervals 1m,1h"
    )]
    Stream(StreamArgs),
    /// Load each market's exchangeInfo into the store's symbol registry and list it.
    Markets(MarketsArgs),
    /// Write stored klines as a Hive-partitioned dataset (Parquet, Arrow or CSV) that DuckDB, Polars, pyarrow and Spark read as one table; again, only what changed is rewritten.
    #[command(
        after_help = "Examples:\n  atm export --out data\n  atm export --out data --markets um --symbols '*USDT' --intervals 1m,1h --from 2024-01-01\n  duckdb -c \"select count(*) from read_parquet('data/**/*.parquet', hive_partitioning = true)\"\n\nLayout: DIR/market=<m>/interval=<i>/symbol=<S>/year=<YYYY>/klines.parquet"
    )]
    Export(ExportArgs),
    /// The built-in Binance simulator (REST, WebSocket, archives) on loopback.
    #[command(subcommand)]
    Sim(SimCommand),
    /// Show every atm process that runs (or ran) on the store, and its stages, live with --watch.
    #[command(
        after_help = "Examples:\n  atm status\n  atm status --watch\n  atm status --format json"
    )]
    Status(StatusArgs),
    /// Print the store's log record (the lines the commands logged), or follow it.
    Log(LogArgs),
    /// Browse the store in a terminal UI: pick a series, read it as a table and a chart, watch it fill live (read-only).
    #[command(
        after_help = "Keys: / filter · Enter open · Tab next pane · ↑/↓ PgUp/PgDn scroll · g/G first/last · : go to date · +/- zoom · ? every key · q quit\n\nExamples:\n  atm view\n  atm --store /data/atm view\n  atm view --market um --symbol BTCUSDT --interval 1h\n  NO_COLOR=1 atm view"
    )]
    View(ViewArgs),
}

/// `atm view`.
#[derive(Debug, Args)]
pub struct ViewArgs {
    /// Open this symbol's series at start (with --market; default spot).
    #[arg(long)]
    pub symbol: Option<String>,
    /// The market of --symbol.
    #[arg(long, value_enum, requires = "symbol")]
    pub market: Option<MarketArg>,
    /// The interval of --symbol (default: its shortest with data).
    #[arg(long, requires = "symbol")]
    pub interval: Option<String>,
}

/// `atm export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The dataset's directory: new, empty, or an earlier export (updated in place).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// File format.
    #[arg(long, value_enum, default_value_t = ExportFormatArg::Parquet)]
    pub format: ExportFormatArg,
    /// Markets, comma-separated.
    #[arg(long, default_value = "spot,um,cm", value_delimiter = ',', value_enum)]
    pub markets: Vec<MarketArg>,
    /// Symbols: all, a comma-separated list, or a glob like '*USDT'.
    #[arg(long, default_value = "all")]
    pub symbols: String,
    /// Intervals, comma-separated; every stored one when not given.
    #[arg(long, value_delimiter = ',')]
    pub intervals: Vec<String>,
    /// First open time, inclusive: RFC 3339, a date (00:00 UTC) or epoch ms.
    #[arg(long, value_name = "T")]
    pub from: Option<String>,
    /// Last open time, inclusive.
    #[arg(long, value_name = "T")]
    pub to: Option<String>,
    /// Remove the files of earlier exports whose series is outside this selection.
    #[arg(long)]
    pub prune: bool,
    /// Summary format.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Text)]
    pub summary: SummaryFormat,
}

/// `atm export --format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormatArg {
    /// Apache Parquet, zstd (klines.parquet).
    Parquet,
    /// Arrow IPC files (klines.arrow).
    Arrow,
    /// CSV with a header row (klines.csv).
    Csv,
}

impl From<ExportFormatArg> for atm_store::export::ExportFormat {
    fn from(f: ExportFormatArg) -> Self {
        match f {
            ExportFormatArg::Parquet => atm_store::export::ExportFormat::Parquet,
            ExportFormatArg::Arrow => atm_store::export::ExportFormat::Arrow,
            ExportFormatArg::Csv => atm_store::export::ExportFormat::Csv,
        }
    }
}

/// `atm status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Text)]
    pub format: SummaryFormat,
    /// Refresh every second until interrupted (JSON: one object per line).
    #[arg(long)]
    pub watch: bool,
}

/// `atm log`.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Keep printing lines as they are appended (like `tail -f`).
    #[arg(short, long)]
    pub follow: bool,
    /// Only the last N lines.
    #[arg(short = 'n', long, value_name = "N")]
    pub lines: Option<usize>,
}

/// `--exchange`.
#[derive(Debug, Args)]
pub struct ExchangeArgs {
    /// binance (the real hosts), sim (a simulator started in this process) or a base URL (e.g. a running `atm sim serve`).
    #[arg(long, default_value = "binance", value_name = "E")]
    pub exchange: String,
    /// Markets, comma-separated.
    #[arg(long, default_value = "spot,um,cm", value_delimiter = ',', value_enum)]
    pub markets: Vec<MarketArg>,
}

/// What `atm sync` and `atm stream` work on: the exchange, markets,
/// symbols and intervals.
#[derive(Debug, Args)]
pub struct SelectionArgs {
    #[command(flatten)]
    pub exchange: ExchangeArgs,
    /// Symbols: all, a comma-separated list, or a glob like '*USDT'.
    #[arg(long, default_value = "all")]
    pub symbols: String,
    /// Intervals, comma-separated (1s 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M).
    #[arg(long, default_value = "1m", value_delimiter = ',')]
    pub intervals: Vec<String>,
}

/// `atm stream`.
#[derive(Debug, Args)]
pub struct StreamArgs {
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// Stop after this long, real time (e.g. 90s, 30m, 2h); run until SIGINT/SIGTERM without it.
    #[arg(long, value_name = "D")]
    pub duration: Option<String>,
    /// REST requests in flight for the start-up backfill.
    #[arg(long, default_value_t = 8)]
    pub workers: usize,
    /// Replace each connection (make-before-break) after this long, real time; default: before the exchange's 24-hour cut.
    #[arg(long, value_name = "D")]
    pub rotate_after: Option<String>,
    /// Roll the intervals longer than 1m up from the 1m stream (also stored) instead of subscribing to them; REST cross-checks them.
    #[arg(long)]
    pub derive: bool,
    /// Re-read the markets (new listings are streamed, delisted symbols dropped) this often, real time; default: every 5 minutes of exchange time.
    #[arg(long, value_name = "D")]
    pub refresh: Option<String>,
    /// Column precision if the stream creates the store.
    #[arg(long, value_enum, default_value_t = PrecisionArg::F32)]
    pub precision: PrecisionArg,
    /// Summary format.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Text)]
    pub format: SummaryFormat,
}

/// `atm sync`.
#[derive(Debug, Args)]
pub struct SyncArgs {
    #[command(flatten)]
    pub selection: SelectionArgs,
    /// First open time wanted (inclusive; RFC 3339, a date or epoch ms).
    #[arg(long, value_name = "T")]
    pub since: Option<String>,
    /// Last open time wanted (inclusive).
    #[arg(long, value_name = "T")]
    pub until: Option<String>,
    /// Also sync symbols that no longer trade.
    #[arg(long)]
    pub include_delisted: bool,
    /// Ask the exchange again for ranges recorded as known-missing.
    #[arg(long)]
    pub recheck_missing: bool,
    /// Print the plan (series, klines, requests, weight, time, bytes) and fetch no klines.
    #[arg(long)]
    pub dry_run: bool,
    /// Fill oldest first instead of newest first.
    #[arg(long)]
    pub oldest_first: bool,
    /// Requests in flight.
    #[arg(long, default_value_t = 8)]
    pub workers: usize,
    /// Where history comes from: auto (data.binance.vision's monthly and daily zips, REST for the rest), archive (zips only) or rest.
    #[arg(long, default_value = "auto", value_name = "S")]
    pub source: String,
    /// Archive downloads in flight.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub archive_workers: usize,
    /// Column precision if the sync creates the store.
    #[arg(long, value_enum, default_value_t = PrecisionArg::F32)]
    pub precision: PrecisionArg,
    /// Output format of the summary.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Text)]
    pub format: SummaryFormat,
}

/// `atm markets`.
#[derive(Debug, Args)]
pub struct MarketsArgs {
    #[command(flatten)]
    pub exchange: ExchangeArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = MarketsFormat::Table)]
    pub format: MarketsFormat,
}

/// Output of `atm sync`'s summary.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum SummaryFormat {
    /// Lines for people.
    Text,
    /// One JSON object.
    Json,
}

/// Output of `atm markets`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum MarketsFormat {
    /// Aligned columns.
    Table,
    /// A JSON array, one object per symbol.
    Json,
}

/// `atm sim ...`.
#[derive(Debug, Subcommand)]
pub enum SimCommand {
    /// Serve a simulated Binance until SIGINT/SIGTERM; prints {"base":..} as the first stdout line.
    #[command(
        after_help = "Examples:\n  atm sim serve\n  atm sim serve --universe real --now 2025-11-24 --time-scale 60\n  atm sim serve --faults http5xx=0.02,http429=0.01,reset=0.01,slow=0.02:2s,ws_disconnect=20m\n\nPoint a client at it: python-binance Client(base_endpoint=...) or ccxt urls['api'] = BASE + '/api/v3'.\nSee docs/simulator.md."
    )]
    Serve(SimServeArgs),
}

/// `atm sim serve`.
#[derive(Debug, Args)]
pub struct SimServeArgs {
    /// Address to bind (port 0: any free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    pub addr: std::net::SocketAddr,
    /// Seed of every random draw (klines, listings, faults).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// `real` (Binance's exchangeInfo snapshots) or N generated symbols per market.
    #[arg(long, default_value = "20")]
    pub universe: String,
    /// The exchange's time at start: RFC 3339, a date or epoch ms (default: the wall clock).
    #[arg(long, value_name = "T")]
    pub now: Option<String>,
    /// Run the exchange clock X times faster than real time.
    #[arg(long, default_value_t = 1.0, value_name = "X")]
    pub time_scale: f64,
    /// Faults to inject, e.g. http5xx=0.02,reset=0.01,slow=0.02:2s (docs/simulator.md).
    #[arg(long, default_value = "", value_name = "SPEC")]
    pub faults: String,
    /// Serve without request-weight limits (for throughput benchmarks).
    #[arg(long)]
    pub no_limits: bool,
    /// Listings while running (generated universes): one new symbol per market lists D (exchange time) after start, and one is delisted 2D after start.
    #[arg(long, value_name = "D")]
    pub churn: Option<String>,
}

/// Binance market.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum MarketArg {
    /// Spot.
    Spot,
    /// USDⓈ-M futures.
    Um,
    /// COIN-M futures.
    Cm,
}

impl From<MarketArg> for atm_store::Market {
    fn from(m: MarketArg) -> Self {
        match m {
            MarketArg::Spot => atm_store::Market::Spot,
            MarketArg::Um => atm_store::Market::UsdM,
            MarketArg::Cm => atm_store::Market::CoinM,
        }
    }
}

impl From<PrecisionArg> for atm_store::Precision {
    fn from(p: PrecisionArg) -> Self {
        match p {
            PrecisionArg::F32 => atm_store::Precision::F32,
            PrecisionArg::F64 => atm_store::Precision::F64,
        }
    }
}

/// Float width of a new store.
#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum PrecisionArg {
    /// 4-byte floats (default): ~7 significant digits.
    #[default]
    F32,
    /// 8-byte floats: exact for every price Binance prints.
    F64,
}

/// `atm import`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// Market of files whose path has no spot/, futures/um/ or futures/cm/ component.
    #[arg(long, value_enum)]
    pub market: Option<MarketArg>,
    /// Column precision if the store is created by this import.
    #[arg(long, value_enum, default_value_t = PrecisionArg::F32)]
    pub precision: PrecisionArg,
    /// Files or directories to import.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

/// Output format of `atm query`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum QueryFormat {
    /// Aligned columns for people.
    Table,
    /// CSV with a header row, Binance's column order, times in ms.
    Csv,
    /// A JSON array of objects keyed by the CSV column names.
    Json,
    /// An Arrow IPC stream (the columns of `atm export`), for pyarrow or polars reading a pipe.
    Arrow,
}

/// `atm query`.
#[derive(Debug, Args)]
pub struct QueryArgs {
    /// Market of the series.
    #[arg(long, value_enum)]
    pub market: MarketArg,
    /// Symbol, e.g. BTCUSDT.
    #[arg(long)]
    pub symbol: String,
    /// Interval: 1s 1m 3m 5m 15m 30m 1h 2h 4h 6h 8h 12h 1d 3d 1w 1M.
    #[arg(long)]
    pub interval: String,
    /// First open time, inclusive: RFC 3339, a date (00:00 UTC) or epoch ms.
    #[arg(long, value_name = "T")]
    pub from: Option<String>,
    /// Last open time, inclusive: RFC 3339, a date (00:00 UTC) or epoch ms.
    #[arg(long, value_name = "T")]
    pub to: Option<String>,
    /// Only the last N klines (of the range, if one is given).
    #[arg(long, value_name = "N")]
    pub tail: Option<usize>,
    /// Also print the kline in progress, as a running `atm stream` publishes it (read from shared memory, no network).
    #[arg(long)]
    pub live: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = QueryFormat::Table)]
    pub format: QueryFormat,
}

/// Text or JSON.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum InfoFormat {
    /// Aligned columns.
    Table,
    /// A JSON array, one object per series.
    Json,
}

/// `atm info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = InfoFormat::Table)]
    pub format: InfoFormat,
}

/// `atm verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Also compare stored klines with this exchange's (binance, sim or a base URL); without it only the files' checksums and invariants are checked.
    #[arg(long, value_name = "E")]
    pub exchange: Option<String>,
    /// Markets to compare, comma-separated.
    #[arg(long, default_value = "spot,um,cm", value_delimiter = ',', value_enum)]
    pub markets: Vec<MarketArg>,
    /// Compare only N pages (one request each), drawn at random over every stored range.
    #[arg(long, value_name = "N")]
    pub sample: Option<u64>,
    /// Seed of the random sample.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Rewrite every kline that differs or is missing from REST, and refetch blocks that fail their checksums.
    #[arg(long, requires = "exchange")]
    pub repair: bool,
    /// Instead of comparing klines, check every archive the store imported (`atm sync --source auto|archive`) against its `.CHECKSUM` now: reports archives Binance replaced or removed since, with the range they filled.
    #[arg(long, requires = "exchange")]
    pub archives: bool,
    /// Requests in flight.
    #[arg(long, default_value_t = 8)]
    pub workers: usize,
    /// Output: text (one line per problem, then a summary line) or json (one object with the counts and a `problems` array).
    #[arg(long, value_enum, default_value_t = SummaryFormat::Text)]
    pub format: SummaryFormat,
}

/// `atm compact`.
#[derive(Debug, Args)]
pub struct CompactArgs {
    /// Only series of this market.
    #[arg(long, value_enum)]
    pub market: Option<MarketArg>,
    /// Only this symbol.
    #[arg(long)]
    pub symbol: Option<String>,
    /// Only this interval.
    #[arg(long)]
    pub interval: Option<String>,
    /// Only blocks that end before this open time (RFC 3339, date or epoch ms).
    /// Without it, every block before the newest one of each series.
    #[arg(long, value_name = "T")]
    pub before: Option<String>,
}
