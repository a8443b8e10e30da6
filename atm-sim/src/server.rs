//! The HTTP and WebSocket server: hyper on a tokio runtime, one task per
//! connection. Routing only: the answers come from [`Exchange`].
//!
//! ```no_run
//! use atm_sim::{SimConfig, SimServer};
//! let sim = SimServer::start(SimConfig::default()).unwrap();
//! println!("Binance at {}", sim.base_url());
//! // e.g. GET {base}/api/v3/klines?symbol=BTCUSDT&interval=1m
//! sim.stop();
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream;
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::header::{HeaderValue, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::exchange::{Exchange, SimConfig};
use crate::rest::{Reply, Transport};

/// A response body: whole, or cut short by a `reset` fault.
pub type Body = BoxBody<Bytes, std::io::Error>;

/// A running simulator, serving on its own threads until stopped or dropped.
pub struct SimServer {
    base: String,
    addr: SocketAddr,
    exchange: Arc<Exchange>,
    shutdown: watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SimServer {
    /// Builds the exchange and starts serving it; returns once the socket
    /// is bound, so the base URL is usable at once.
    pub fn start(config: SimConfig) -> Result<SimServer> {
        let exchange = Arc::new(Exchange::new(config)?);
        let runtime = runtime()?;
        let listener = runtime
            .block_on(TcpListener::bind(exchange.config.addr))
            .map_err(|e| Error::Io {
                what: format!("bind {}", exchange.config.addr),
                source: e,
            })?;
        let addr = listener.local_addr().map_err(|e| Error::Io {
            what: "local address".into(),
            source: e,
        })?;
        let (shutdown, stop) = watch::channel(false);
        let ex = exchange.clone();
        let thread = std::thread::Builder::new()
            .name("atm-sim".into())
            .spawn(move || runtime.block_on(serve(listener, ex, stop)))
            .map_err(|e| Error::Io {
                what: "spawn the server thread".into(),
                source: e,
            })?;
        Ok(SimServer {
            base: format!("http://{addr}"),
            addr,
            exchange,
            shutdown,
            thread: Some(thread),
        })
    }

    /// The base URL, `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The exchange being served (its clock, universe, counters).
    pub fn exchange(&self) -> &Arc<Exchange> {
        &self.exchange
    }

    /// Stops serving and waits for the server's threads to finish.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        let _ = self.shutdown.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        self.halt();
    }
}

/// The server's runtime: two worker threads, as many as this project's
/// machines have cores.
fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("atm-sim-worker")
        .enable_all()
        .build()
        .map_err(|e| Error::Io {
            what: "start the async runtime".into(),
            source: e,
        })
}

/// Runs the simulator in the calling thread until SIGINT or SIGTERM;
/// `ready` gets the base URL once the socket is bound.
pub fn run_until_signal(config: SimConfig, ready: impl FnOnce(&str, &Exchange)) -> Result<()> {
    let exchange = Arc::new(Exchange::new(config)?);
    let runtime = runtime()?;
    runtime.block_on(async move {
        // The handlers first: a signal that arrives as soon as the first
        // line is out (a script that read it) must stop the server cleanly,
        // not kill it by the default action.
        let signals = Signals::install()?;
        let listener = TcpListener::bind(exchange.config.addr)
            .await
            .map_err(|e| Error::Io {
                what: format!("bind {}", exchange.config.addr),
                source: e,
            })?;
        let addr = listener.local_addr().map_err(|e| Error::Io {
            what: "local address".into(),
            source: e,
        })?;
        ready(&format!("http://{addr}"), &exchange);
        let (tx, rx) = watch::channel(false);
        let server = tokio::spawn(serve(listener, exchange, rx));
        signals.wait().await;
        log::info!("signal received, shutting down");
        let _ = tx.send(true);
        let _ = server.await;
        Ok(())
    })
}

/// SIGTERM and SIGINT, listened for from the moment they are installed.
struct Signals {
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        let io = |e| Error::Io {
            what: "install signal handlers".into(),
            source: e,
        };
        Ok(Signals {
            term: signal(SignalKind::terminate()).map_err(io)?,
            int: signal(SignalKind::interrupt()).map_err(io)?,
        })
    }

    /// Waits for either signal.
    async fn wait(mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

/// Accepts connections until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    exchange: Arc<Exchange>,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    log::warn!("accept: {e}");
                    continue;
                }
            },
            _ = stop.changed() => break,
        };
        let _ = tcp.set_nodelay(true);
        let ex = exchange.clone();
        let mut stop = stop.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| handle(ex.clone(), req));
            let conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(tcp), service)
                .with_upgrades();
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        log::debug!("connection from {peer}: {e}");
                    }
                }
                _ = stop.changed() => {}
            }
        });
    }
}

async fn handle(
    exchange: Arc<Exchange>,
    req: Request<Incoming>,
) -> std::result::Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    let method = req.method().as_str().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    if crate::ws::is_upgrade(&req) {
        return Ok(crate::ws::upgrade(exchange, req));
    }
    let reply = exchange
        .rest(&path, &query)
        .or_else(|| exchange.control(&method, &path, &query))
        .or_else(|| exchange.archive(&path, &query))
        .unwrap_or_else(|| Reply {
            status: 404,
            headers: vec![],
            content_type: "text/plain",
            body: Bytes::from_static(b"Not Found"),
            transport: Transport::Normal,
        });
    if let Transport::Slow(d) = reply.transport {
        tokio::time::sleep(d).await;
    }
    Ok(to_response(reply))
}

/// Turns a [`Reply`] into an HTTP response; a `reset` sends half the body
/// (with the full `Content-Length`) and then fails the connection.
pub fn to_response(reply: Reply) -> Response<Body> {
    let len = reply.body.len();
    let body: Body = match reply.transport {
        Transport::Reset => {
            let half = reply.body.slice(..len / 2);
            let frames = vec![
                Ok(Frame::data(half)),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "injected reset",
                )),
            ];
            BodyExt::boxed(StreamBody::new(stream::iter(frames)))
        }
        _ => Full::new(reply.body)
            .map_err(|never| match never {})
            .boxed(),
    };
    let mut resp = Response::new(body);
    *resp.status_mut() =
        StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(reply.content_type));
    h.insert(CONTENT_LENGTH, HeaderValue::from(len));
    for (k, v) in reply.headers {
        if let Ok(v) = HeaderValue::from_str(&v) {
            h.insert(k, v);
        }
    }
    resp
}
