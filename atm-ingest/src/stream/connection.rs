//! One WebSocket connection's life: connect and subscribe, read, answer the
//! applier's subscription changes, detect silence, reconnect with backoff,
//! and rotate make-before-break before the exchange's lifetime cut.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use atm_store::{Market, SeriesKey};
use crossbeam_channel::{Receiver, Sender};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::Message;

use super::{Item, Shared};
use crate::ws_shard::stream_requests;

/// Streams per SUBSCRIBE message.
const PER_MESSAGE: usize = 200;
/// A connection silent this long is replaced.
const WATCHDOG: Duration = Duration::from_secs(30);

type Ws = tungstenite::WebSocket<MaybeTlsStream<std::net::TcpStream>>;

/// A change of what a connection carries, sent by the applier.
pub(crate) enum Command {
    /// Add these streams (name and series).
    Subscribe(Vec<(String, SeriesKey)>),
    /// Remove these streams.
    Unsubscribe(Vec<String>),
}

/// What a connection thread needs to know.
pub(crate) struct Config {
    pub market: Market,
    pub url: String,
    /// Replace the connection after this long.
    pub lifetime: Duration,
    /// The market's incoming-message limit (SUBSCRIBEs are paced under it).
    pub messages_per_second: u32,
}

/// The streams a connection carries, in subscription order.
struct Streams(Vec<(String, SeriesKey)>);

impl Streams {
    fn names(&self) -> Vec<String> {
        self.0.iter().map(|(n, _)| n.clone()).collect()
    }
    fn keys(&self) -> Vec<SeriesKey> {
        self.0.iter().map(|(_, k)| k.clone()).collect()
    }
}

/// Runs a connection until the stop flag is set or the applier is gone.
/// Every drop is reported ([`Item::Dropped`]) so the applier repairs what
/// may have been lost.
pub(crate) fn run(
    cfg: &Config,
    streams: Vec<(String, SeriesKey)>,
    commands: &Receiver<Command>,
    shared: &Shared,
    tx: &Sender<Item>,
) {
    let market = cfg.market;
    let mut streams = Streams(streams);
    let mut failures = 0u32;
    let mut first = true;
    let forward = |t: tungstenite::Utf8Bytes| {
        shared.events.fetch_add(1, Relaxed);
        shared.bytes.fetch_add(t.len() as u64, Relaxed);
        tx.send(Item::Text(market, t, Instant::now())).is_ok()
    };
    while !shared.stop.load(Relaxed) {
        if !first {
            shared.reconnects.fetch_add(1, Relaxed);
            if tx.send(Item::Dropped(streams.keys())).is_err() {
                return;
            }
        }
        first = false;
        let mut ws = match open(cfg, &streams.names()) {
            Ok(ws) => ws,
            Err(e) => {
                failures += 1;
                let wait = crate::client::backoff(failures);
                log::warn!("{market}: {e}; again in {wait:?}");
                std::thread::sleep(wait);
                continue;
            }
        };
        shared.connections.fetch_add(1, Relaxed);
        let mut opened = Instant::now();
        let mut last_message = Instant::now();
        while !shared.stop.load(Relaxed) {
            if let Err(e) = apply_commands(cfg, &mut ws, &mut streams, commands) {
                log::warn!("{market}: changing subscriptions: {e}; reconnecting");
                break;
            }
            if opened.elapsed() >= cfg.lifetime {
                match rotate(&mut ws, cfg, &streams.names(), &forward) {
                    Ok(()) => {
                        shared.connections.fetch_add(1, Relaxed);
                        shared.rotations.fetch_add(1, Relaxed);
                        log::info!(
                            "{market}: connection rotated before the exchange's lifetime cut"
                        );
                        opened = Instant::now();
                        last_message = Instant::now();
                    }
                    Err(e) => {
                        log::warn!("{market}: rotating a connection: {e}; reconnecting");
                        break;
                    }
                }
            }
            match read_one(&mut ws) {
                Read::Text(t) => {
                    failures = 0;
                    last_message = Instant::now();
                    if !forward(t) {
                        return;
                    }
                }
                Read::Nothing => {
                    if last_message.elapsed() > WATCHDOG {
                        log::warn!("{market}: no message for {WATCHDOG:?}: reconnecting");
                        break;
                    }
                }
                Read::Closed(why) => {
                    log::info!("{market}: {why}");
                    failures += 1;
                    break;
                }
            }
        }
        let _ = ws.close(None);
        let _ = ws.flush();
        if failures > 1 {
            std::thread::sleep(crate::client::backoff(failures - 1));
        }
    }
}

/// Carries out the applier's subscription changes on the open connection.
fn apply_commands(
    cfg: &Config,
    ws: &mut Ws,
    streams: &mut Streams,
    commands: &Receiver<Command>,
) -> Result<(), String> {
    for c in commands.try_iter() {
        let (method, names) = match c {
            Command::Subscribe(add) => {
                let names: Vec<String> = add.iter().map(|(n, _)| n.clone()).collect();
                streams.0.extend(add);
                ("SUBSCRIBE", names)
            }
            Command::Unsubscribe(gone) => {
                streams.0.retain(|(n, _)| !gone.contains(n));
                ("UNSUBSCRIBE", gone)
            }
        };
        send_paced(
            ws,
            &stream_requests(method, &names, PER_MESSAGE, 1_000),
            cfg.messages_per_second,
        )?;
    }
    Ok(())
}

/// Sends `messages`, one per `1 / (limit - 1)` seconds, under the market's
/// incoming-message limit.
fn send_paced(ws: &mut Ws, messages: &[String], messages_per_second: u32) -> Result<(), String> {
    let pace =
        Duration::from_secs_f64(1.0 / f64::from(messages_per_second.saturating_sub(1).max(1)));
    for (i, m) in messages.iter().enumerate() {
        if i > 0 {
            std::thread::sleep(pace);
        }
        ws.send(Message::text(m.as_str()))
            .map_err(|e| format!("sending {m}: {e}"))?;
    }
    Ok(())
}

/// Connects and subscribes to `streams`.
fn open(cfg: &Config, streams: &[String]) -> Result<Ws, String> {
    let (mut ws, _) =
        tungstenite::connect(&cfg.url).map_err(|e| format!("connecting to {}: {e}", cfg.url))?;
    set_read_timeout(&mut ws, Duration::from_millis(200));
    send_paced(
        &mut ws,
        &stream_requests("SUBSCRIBE", streams, PER_MESSAGE, 1),
        cfg.messages_per_second,
    )?;
    Ok(ws)
}

/// What one read from a connection gave.
enum Read {
    Text(tungstenite::Utf8Bytes),
    Nothing,
    Closed(String),
}

fn read_one(ws: &mut Ws) -> Read {
    match ws.read() {
        Ok(Message::Text(t)) => Read::Text(t),
        Ok(Message::Close(_)) => Read::Closed("the server closed the connection".into()),
        Ok(_) => Read::Nothing,
        Err(tungstenite::Error::Io(e))
            if matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ) =>
        {
            Read::Nothing
        }
        Err(e) => Read::Closed(format!("connection lost: {e}")),
    }
}

/// Make-before-break: opens the next connection, reads both (forwarding
/// every event; the applier drops duplicates) until the new one has
/// answered its SUBSCRIBEs and sent an event, then closes the old one.
fn rotate(
    ws: &mut Ws,
    cfg: &Config,
    streams: &[String],
    forward: &dyn Fn(tungstenite::Utf8Bytes) -> bool,
) -> Result<(), String> {
    let mut next = open(cfg, streams)?;
    let subscribes = streams.len().div_ceil(PER_MESSAGE);
    let (mut replies, mut events) = (0, 0);
    let t = Instant::now();
    while replies < subscribes || events == 0 {
        if t.elapsed() > WATCHDOG {
            return Err(format!(
                "the new connection did not start streaming within {WATCHDOG:?}"
            ));
        }
        match read_one(&mut next) {
            Read::Text(m) => {
                if m.starts_with("{\"result\"") {
                    replies += 1;
                } else {
                    events += 1;
                }
                if !forward(m) {
                    return Ok(());
                }
            }
            Read::Nothing => {}
            Read::Closed(why) => return Err(why),
        }
        // The old connection is still read meanwhile.
        if let Read::Text(m) = read_one(ws) {
            if !forward(m) {
                return Ok(());
            }
        }
    }
    // What the old connection still holds (closes from before the new one
    // subscribed) is read before it is closed.
    while let Read::Text(m) = read_one(ws) {
        if !forward(m) {
            return Ok(());
        }
    }
    let mut old = std::mem::replace(ws, next);
    let _ = old.close(None);
    let _ = old.flush();
    Ok(())
}

fn set_read_timeout(ws: &mut Ws, t: Duration) {
    let _ = match ws.get_mut() {
        MaybeTlsStream::Plain(s) => s.set_read_timeout(Some(t)),
        MaybeTlsStream::Rustls(s) => s.get_mut().set_read_timeout(Some(t)),
        _ => Ok(()),
    };
}
