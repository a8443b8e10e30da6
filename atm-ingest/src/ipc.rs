//! In-process requests to the thread that owns a piece of work, over
//! crossbeam channels, each with its own reply channel and a timeout.
//!
//! * **FAR** (function activation request): "do this" — pause a market,
//!   flush now, stop — answered when done.
//! * **DAR** (data acquisition request): "copy out your numbers" — the owner
//!   keeps fast-changing values (counters, latency histograms) in its own
//!   memory, touched by no one else, and copies them out only when asked.
//!
//! Both are a [`Caller`] on the asking side and a [`Receiver`] of
//! [`Request`]s the owner polls in its loop (usually in a `select!` with its
//! work channel):
//!
//! ```
//! use std::time::Duration;
//! use atm_ingest::ipc::{channel, CallError};
//!
//! let (caller, requests) = channel::<u32, u32>(4);
//! let owner = std::thread::spawn(move || {
//!     for r in requests {
//!         let n = *r.body();
//!         r.reply(n * 2);
//!     }
//! });
//! assert_eq!(caller.call(21, Duration::from_secs(1)).unwrap(), 42);
//! drop(caller);
//! owner.join().unwrap();
//! ```

use std::time::Duration;

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, SendTimeoutError, Sender};

/// A request with its reply channel.
#[derive(Debug)]
pub struct Request<Q, A> {
    body: Q,
    reply: Sender<A>,
}

impl<Q, A> Request<Q, A> {
    /// What is asked.
    pub fn body(&self) -> &Q {
        &self.body
    }

    /// Answers; `false` if the caller stopped waiting (timed out or gone).
    pub fn reply(self, answer: A) -> bool {
        self.reply.send(answer).is_ok()
    }
}

/// Why a call got no answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// The owner did not answer in time (busy, or blocked in its work).
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The owner has exited (its request channel or the request was dropped).
    #[error("the owner has exited")]
    OwnerGone,
}

/// The asking side of a request channel; cheap to clone.
#[derive(Debug)]
pub struct Caller<Q, A> {
    tx: Sender<Request<Q, A>>,
}

impl<Q, A> Clone for Caller<Q, A> {
    fn clone(&self) -> Self {
        Caller {
            tx: self.tx.clone(),
        }
    }
}

impl<Q, A> Caller<Q, A> {
    /// Sends `body` and waits for the answer, at most `timeout` for each of
    /// queueing the request and receiving the reply.
    pub fn call(&self, body: Q, timeout: Duration) -> Result<A, CallError> {
        let (tx, rx) = bounded(1);
        match self.tx.send_timeout(Request { body, reply: tx }, timeout) {
            Ok(()) => {}
            Err(SendTimeoutError::Timeout(_)) => return Err(CallError::Timeout(timeout)),
            Err(SendTimeoutError::Disconnected(_)) => return Err(CallError::OwnerGone),
        }
        match rx.recv_timeout(timeout) {
            Ok(a) => Ok(a),
            Err(RecvTimeoutError::Timeout) => Err(CallError::Timeout(timeout)),
            Err(RecvTimeoutError::Disconnected) => Err(CallError::OwnerGone),
        }
    }
}

/// A FAR (function activation request) channel, a request answered by a
/// thread: "do this" requests `Q`, each answered with `A` when done.
pub type Far<Q, A> = Caller<Q, A>;

/// A DAR (data acquisition request) channel, data answered on request: a
/// snapshot `T` of values the owning thread keeps in its own memory.
pub type Dar<T> = Caller<(), T>;

/// A request channel holding at most `capacity` unanswered requests.
pub fn channel<Q, A>(capacity: usize) -> (Caller<Q, A>, Receiver<Request<Q, A>>) {
    let (tx, rx) = bounded(capacity.max(1));
    (Caller { tx }, rx)
}

/// Asks several owners for their snapshots at once, round after round.
///
/// An owner busy in its work (a fetcher inside an HTTP request) answers when
/// it gets back to its loop, possibly after this round's deadline: its
/// answer is kept for the next round instead of thrown away, and no new
/// request is queued behind the unanswered one. So each value is at most
/// one round old, and an owner that has exited keeps its last value.
pub struct Gather<T> {
    dars: Vec<Dar<T>>,
    pending: Vec<Option<Receiver<T>>>,
    last: Vec<T>,
}

impl<T: Clone + Default> Gather<T> {
    /// Gathers from `dars`; every value starts as `T::default()`.
    pub fn new(dars: Vec<Dar<T>>) -> Gather<T> {
        let n = dars.len();
        Gather {
            dars,
            pending: vec![None; n],
            last: vec![T::default(); n],
        }
    }

    /// One round: asks every owner not already asked, waits at most
    /// `timeout` in all, and returns the latest value of each.
    pub fn poll(&mut self, timeout: Duration) -> &[T] {
        let deadline = std::time::Instant::now() + timeout;
        for (d, p) in self.dars.iter().zip(self.pending.iter_mut()) {
            if p.is_none() {
                let (tx, rx) = bounded(1);
                if d.tx
                    .try_send(Request {
                        body: (),
                        reply: tx,
                    })
                    .is_ok()
                {
                    *p = Some(rx);
                }
            }
        }
        for (p, last) in self.pending.iter_mut().zip(self.last.iter_mut()) {
            let Some(rx) = p else { continue };
            match rx.recv_deadline(deadline) {
                Ok(v) => {
                    *last = v;
                    *p = None;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => *p = None,
            }
        }
        &self.last
    }

    /// The latest values, without asking.
    pub fn last(&self) -> &[T] {
        &self.last
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_timeouts_and_an_owner_that_has_exited() {
        // A reply.
        let (c, rx) = channel::<&str, usize>(1);
        let owner = std::thread::spawn(move || {
            let r = rx.recv().unwrap();
            let n = r.body().len();
            assert!(r.reply(n));
            // The owner exits, dropping its receiver.
        });
        assert_eq!(c.call("four", Duration::from_secs(5)), Ok(4));
        owner.join().unwrap();
        assert_eq!(
            c.call("gone", Duration::from_millis(50)),
            Err(CallError::OwnerGone)
        );

        // An owner that is busy and never answers: a timeout, then a full queue.
        let (c, rx) = channel::<(), ()>(1);
        let t = std::time::Instant::now();
        assert_eq!(
            c.call((), Duration::from_millis(30)),
            Err(CallError::Timeout(Duration::from_millis(30)))
        );
        assert!(t.elapsed() >= Duration::from_millis(30));
        assert_eq!(
            c.call((), Duration::from_millis(10)),
            Err(CallError::Timeout(Duration::from_millis(10))),
            "queue full"
        );
        // A late answer to a caller that gave up is refused, not an error.
        let late = rx.recv().unwrap();
        assert!(!late.reply(()));
        // An owner that drops a request without answering has exited mid-way.
        let (c2, rx2) = channel::<(), ()>(1);
        let dropper = std::thread::spawn(move || drop(rx2.recv().unwrap()));
        assert_eq!(
            c2.call((), Duration::from_secs(5)),
            Err(CallError::OwnerGone)
        );
        dropper.join().unwrap();
    }

    #[test]
    fn gather_keeps_late_answers_and_the_last_value_of_silent_owners() {
        let (a, a_rx) = channel::<(), u64>(1);
        let (slow, slow_rx) = channel::<(), u64>(1);
        let (gone, gone_rx) = channel::<(), u64>(1);
        drop(gone_rx);
        // This owner answers two requests, then exits.
        let owner = std::thread::spawn(move || {
            for local in [10, 20] {
                a_rx.recv().unwrap().reply(local);
            }
        });
        let mut g = Gather::new(vec![a, slow, gone]);
        assert_eq!(g.poll(Duration::from_millis(50)), &[10, 0, 0]);
        // The slow owner answers after the round's deadline: kept for the next round.
        let late = slow_rx.recv().unwrap();
        assert!(late.reply(7));
        assert_eq!(g.poll(Duration::from_millis(50)), &[20, 7, 0]);
        owner.join().unwrap();
        assert_eq!(
            g.poll(Duration::from_millis(10)),
            &[20, 7, 0],
            "exited owners keep their last value"
        );
        assert_eq!(g.last(), &[20, 7, 0]);
    }
}
