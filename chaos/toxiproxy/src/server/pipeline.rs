//! One direction of one proxied connection: chunks read from the source go through the proxy's
//! toxic chain, in order, and out to the destination. This is where the toxic semantics live.
//!
//! Toxiproxy runs one goroutine per toxic joined by channels. Here one future walks each chunk
//! through the chain. The reader keeps stamping chunks with their arrival time while the chain
//! waits, and latency counts from that stamp (as Toxiproxy's does), so queued chunks are not
//! delayed twice. The chain is re-read between steps and while waiting, so a toxic added,
//! updated or removed applies to live connections. An update or removal cuts short a wait the
//! toxic was imposing, as Toxiproxy's interrupt does.

use crate::api::Stream;
use crate::server::metrics::Counters;
use crate::server::toxic::{Chain, Kind, ToxicSpec};
use rand::RngExt;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, sleep, sleep_until};

/// Bytes read in one go, stamped with when they arrived.
#[derive(Debug)]
pub(crate) struct Chunk {
    pub data: Vec<u8>,
    pub received: Instant,
}

/// How a connection ends: a normal close (FIN) or a reset (RST, `SO_LINGER` 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ending {
    Close,
    Reset,
}

/// Why the flow of chunks stopped. `After(id)` closes the stream at the toxic with that id: the
/// toxics after it still see the end of the stream (a later slow_close still delays it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stop {
    After(u64),
    Reset,
}

/// Work for the current chunk, kept on a stack so a toxic that cuts a chunk into pieces sends
/// each piece through the rest of the chain before the next one.
#[derive(Debug)]
enum Item {
    /// A chunk that has been through every toxic up to and including id `.1`.
    Chunk(Chunk, u64),
    /// The slicer's gap between pieces, skipped if its toxic changes meanwhile.
    Pause { owner: u64, rev: u64, gap: Duration },
    /// limit_data reached its limit once the pieces above this item are out.
    Close { after: u64 },
}

/// What one connection's direction remembers about one toxic.
#[derive(Debug)]
struct LinkToxic {
    rev: u64,
    /// Toxicity is drawn once per connection and direction (and again when the toxic is updated,
    /// as Toxiproxy restarts the toxic then).
    active: bool,
    is_timeout: bool,
    /// When a timeout toxic closes the connection; pushed back by every chunk it drops.
    deadline: Option<Instant>,
    /// limit_data's count survives updates, as Toxiproxy keeps it in the stub's state.
    limit_sent: i64,
    bandwidth_next: Option<Instant>,
}

impl LinkToxic {
    fn new(toxic: &ToxicSpec, now: Instant) -> Self {
        let mut state = Self {
            rev: toxic.rev,
            active: false,
            is_timeout: matches!(toxic.kind, Kind::Timeout { .. }),
            deadline: None,
            limit_sent: 0,
            bandwidth_next: None,
        };
        state.restart(toxic, now);
        state
    }

    fn restart(&mut self, toxic: &ToxicSpec, now: Instant) {
        self.rev = toxic.rev;
        self.active = rand::random::<f32>() < toxic.toxicity;
        self.bandwidth_next = None;
        self.deadline = match toxic.kind {
            Kind::Timeout { timeout } if self.active && timeout > 0 => Some(now + millis(timeout)),
            _ => None,
        };
    }
}

pub(crate) struct Pipeline<W> {
    direction: Stream,
    chain_rx: watch::Receiver<Chain>,
    chain: Chain,
    input: mpsc::Receiver<Chunk>,
    output: W,
    counters: Arc<Counters>,
    states: HashMap<u64, LinkToxic>,
}

impl<W: AsyncWrite + Unpin> Pipeline<W> {
    pub fn new(
        direction: Stream,
        chain_rx: watch::Receiver<Chain>,
        input: mpsc::Receiver<Chunk>,
        output: W,
        counters: Arc<Counters>,
    ) -> Self {
        Self {
            direction,
            chain_rx,
            // A fresh Arc never equals the published one, so the first sync reads the chain.
            chain: Arc::new(Vec::new()),
            input,
            output,
            counters,
            states: HashMap::new(),
        }
    }

    /// Runs until the source ends, a toxic closes or resets the stream, or a write fails.
    pub async fn run(mut self) -> Ending {
        match self.flow().await {
            Stop::Reset => Ending::Reset,
            Stop::After(after) => self.finish(after).await,
        }
    }

    async fn flow(&mut self) -> Stop {
        loop {
            if let Err(stop) = self.sync() {
                return stop;
            }
            let timer = self.next_timeout();
            let chunk = tokio::select! {
                () = chain_changed(&mut self.chain_rx) => continue,
                () = sleep_opt(timer.map(|(at, _)| at)) => {
                    return Stop::After(timer.map_or(0, |(_, id)| id));
                }
                chunk = self.input.recv() => chunk,
            };
            let Some(chunk) = chunk else {
                return Stop::After(0);
            };
            if let Err(stop) = self.process(chunk).await {
                return stop;
            }
        }
    }

    async fn process(&mut self, chunk: Chunk) -> Result<(), Stop> {
        let mut work = vec![Item::Chunk(chunk, 0)];
        while let Some(item) = work.pop() {
            self.sync()?;
            match item {
                Item::Chunk(chunk, after) => self.step(chunk, after, &mut work).await?,
                Item::Pause { owner, rev, gap } => {
                    self.wait(owner, rev, Instant::now() + gap).await?;
                }
                Item::Close { after } => return Err(Stop::After(after)),
            }
        }
        Ok(())
    }

    /// Applies the first active toxic after `after` to the chunk.
    async fn step(
        &mut self,
        mut chunk: Chunk,
        after: u64,
        work: &mut Vec<Item>,
    ) -> Result<(), Stop> {
        let Some(toxic) = self.next_active(after) else {
            return self.write(&chunk.data).await;
        };
        let (id, rev) = (toxic.id, toxic.rev);
        match toxic.kind {
            Kind::Noop | Kind::SlowClose { .. } => work.push(Item::Chunk(chunk, id)),
            Kind::Latency { latency, jitter } => {
                let due = chunk.received + millis(jittered(latency, jitter));
                let waited = self.wait(id, rev, due).await?;
                chunk.received = if waited { due } else { Instant::now() };
                work.push(Item::Chunk(chunk, id));
            }
            Kind::Bandwidth { rate } if rate <= 0 => work.push(Item::Chunk(chunk, id)),
            Kind::Bandwidth { rate } => {
                // Like Toxiproxy, a chunk larger than 100 ms worth goes out in 100 ms pieces;
                // each piece comes back to this toxic (id - 1 is before it, after the previous).
                let piece = usize::try_from(rate.saturating_mul(100)).unwrap_or(usize::MAX);
                if chunk.data.len() > piece {
                    for data in chunk.data.chunks(piece).rev() {
                        let piece = Chunk {
                            data: data.to_vec(),
                            received: chunk.received,
                        };
                        work.push(Item::Chunk(piece, id - 1));
                    }
                    return Ok(());
                }
                let now = Instant::now();
                let due = match self.states.get_mut(&id) {
                    Some(state) => {
                        let start = state.bandwidth_next.map_or(now, |next| next.max(now));
                        let due = start + transfer_time(chunk.data.len(), rate);
                        state.bandwidth_next = Some(due);
                        due
                    }
                    None => now,
                };
                self.wait(id, rev, due).await?;
                work.push(Item::Chunk(chunk, id));
            }
            Kind::Timeout { timeout } => {
                // The chunk is dropped; that is the toxic. Data keeps the connection alive.
                if let Some(state) = self.states.get_mut(&id)
                    && timeout > 0
                {
                    state.deadline = Some(Instant::now() + millis(timeout));
                }
            }
            Kind::ResetPeer { timeout } => {
                sleep(millis(timeout)).await;
                return Err(Stop::Reset);
            }
            Kind::Slicer {
                average_size,
                size_variation,
                delay,
            } => {
                let gap = Duration::from_micros(u64::try_from(delay).unwrap_or(0));
                for range in slice_points(chunk.data.len(), average_size, size_variation)
                    .into_iter()
                    .rev()
                {
                    if !gap.is_zero() {
                        work.push(Item::Pause {
                            owner: id,
                            rev,
                            gap,
                        });
                    }
                    let piece = Chunk {
                        data: chunk.data[range].to_vec(),
                        received: chunk.received,
                    };
                    work.push(Item::Chunk(piece, id));
                }
            }
            Kind::LimitData { bytes } => {
                let Some(state) = self.states.get_mut(&id) else {
                    return Ok(());
                };
                let remaining = bytes.saturating_sub(state.limit_sent).max(0);
                let take = usize::try_from(remaining)
                    .unwrap_or(usize::MAX)
                    .min(chunk.data.len());
                chunk.data.truncate(take);
                state.limit_sent = state
                    .limit_sent
                    .saturating_add(i64::try_from(take).unwrap_or(i64::MAX));
                if state.limit_sent >= bytes {
                    work.push(Item::Close { after: id });
                }
                if !chunk.data.is_empty() {
                    work.push(Item::Chunk(chunk, id));
                }
            }
        }
        Ok(())
    }

    /// Waits until `due` on behalf of toxic `owner`. `Ok(false)` when the toxic was updated or
    /// removed meanwhile (the wait is cut short); `Err` when another toxic ends the stream.
    async fn wait(&mut self, owner: u64, rev: u64, due: Instant) -> Result<bool, Stop> {
        loop {
            self.sync()?;
            if !self.chain.iter().any(|t| t.id == owner && t.rev == rev) {
                return Ok(false);
            }
            let timer = self.next_timeout();
            tokio::select! {
                () = sleep_until(due) => return Ok(true),
                () = chain_changed(&mut self.chain_rx) => {}
                () = sleep_opt(timer.map(|(at, _)| at)) => {
                    return Err(Stop::After(timer.map_or(0, |(_, id)| id)));
                }
            }
        }
    }

    /// The end of the stream passes through the toxics after `after`: slow_close holds it,
    /// reset_peer turns it into a reset.
    async fn finish(mut self, after: u64) -> Ending {
        // A removal seen here changes nothing: the stream is ending anyway.
        let _ = self.sync();
        let remaining: Vec<Kind> = self
            .active_toxics()
            .filter(|t| t.id > after)
            .map(|t| t.kind)
            .collect();
        for kind in remaining {
            match kind {
                Kind::SlowClose { delay } => sleep(millis(delay)).await,
                Kind::ResetPeer { timeout } => {
                    sleep(millis(timeout)).await;
                    return Ending::Reset;
                }
                _ => {}
            }
        }
        Ending::Close
    }

    async fn write(&mut self, data: &[u8]) -> Result<(), Stop> {
        match self.output.write_all(data).await {
            Ok(()) => {
                self.counters.add_sent(data.len());
                Ok(())
            }
            // The destination is gone: no toxic after this point sees the end.
            Err(_) => Err(Stop::After(u64::MAX)),
        }
    }

    /// Catches up with the published chain. Removing a timeout toxic closes the stream, as
    /// Toxiproxy's timeout cleanup does, whether or not its toxicity draw made it active.
    fn sync(&mut self) -> Result<(), Stop> {
        let chain = self.chain_rx.borrow_and_update().clone();
        if Arc::ptr_eq(&chain, &self.chain) {
            return Ok(());
        }
        let now = Instant::now();
        let mut removed_timeout: Option<u64> = None;
        self.states.retain(|id, state| {
            let kept = chain.iter().any(|t| t.id == *id);
            if !kept && state.is_timeout {
                removed_timeout = Some(removed_timeout.map_or(*id, |other| other.min(*id)));
            }
            kept
        });
        for toxic in chain.iter().filter(|t| t.stream == self.direction) {
            match self.states.get_mut(&toxic.id) {
                Some(state) if state.rev == toxic.rev => {}
                Some(state) => state.restart(toxic, now),
                None => {
                    self.states.insert(toxic.id, LinkToxic::new(toxic, now));
                }
            }
        }
        self.chain = chain;
        match removed_timeout {
            Some(id) => Err(Stop::After(id)),
            None => Ok(()),
        }
    }

    fn active_toxics(&self) -> impl Iterator<Item = &Arc<ToxicSpec>> {
        self.chain.iter().filter(|t| {
            t.stream == self.direction && self.states.get(&t.id).is_some_and(|s| s.active)
        })
    }

    fn next_active(&self, after: u64) -> Option<Arc<ToxicSpec>> {
        // The chain is in id order: new toxics are appended and updates keep their place.
        self.active_toxics().find(|t| t.id > after).cloned()
    }

    fn next_timeout(&self) -> Option<(Instant, u64)> {
        self.states
            .iter()
            .filter_map(|(id, state)| state.deadline.map(|at| (at, *id)))
            .min()
    }
}

async fn chain_changed(rx: &mut watch::Receiver<Chain>) {
    // The sender goes when the proxy is deleted; the connection is being cancelled then.
    if rx.changed().await.is_err() {
        std::future::pending::<()>().await;
    }
}

async fn sleep_opt(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn millis(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// `latency ± jitter`, uniform in `[latency - jitter, latency + jitter)` as Toxiproxy draws it.
fn jittered(latency: i64, jitter: i64) -> i64 {
    if jitter <= 0 {
        return latency;
    }
    latency.saturating_add(rand::rng().random_range(-jitter..jitter))
}

/// Time to send `len` bytes at `rate` KB/s, where Toxiproxy's KB is 1000 bytes.
fn transfer_time(len: usize, rate: i64) -> Duration {
    let rate = u128::try_from(rate.max(1)).unwrap_or(1);
    let nanos = (len as u128).saturating_mul(1_000_000) / rate;
    Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX))
}

/// Toxiproxy's slicer split: halve (± variation) until a piece is within `average + variation`.
fn slice_points(len: usize, average: i64, variation: i64) -> Vec<Range<usize>> {
    // Toxiproxy recurses forever on an average of 0 and requires variation < average.
    let average = usize::try_from(average).unwrap_or(0).max(1);
    let variation = usize::try_from(variation).unwrap_or(0).min(average - 1);
    let mut pieces = Vec::new();
    let mut todo = Vec::new();
    todo.push(0..len);
    while let Some(range) = todo.pop() {
        let size = range.end - range.start;
        if size <= average + variation {
            pieces.push(range);
            continue;
        }
        // size > 2 * variation + 1 here, so both halves stay non-empty.
        let mut mid = range.start + size / 2;
        if variation > 0 {
            mid = mid + rand::rng().random_range(0..2 * variation) - variation;
        }
        todo.push(mid..range.end);
        todo.push(range.start..mid);
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_cover_the_chunk_in_order_within_the_size_bounds() {
        for _ in 0..100 {
            let pieces = slice_points(1000, 10, 5);
            let mut next = 0;
            for piece in &pieces {
                assert_eq!(piece.start, next);
                assert!(!piece.is_empty() && piece.len() <= 15, "{piece:?}");
                next = piece.end;
            }
            assert_eq!(next, 1000);
        }
    }

    #[test]
    fn a_zero_average_slices_to_single_bytes_instead_of_recursing_forever() {
        assert_eq!(slice_points(3, 0, 0).len(), 3);
    }

    #[test]
    fn a_kilobyte_is_a_thousand_bytes() {
        assert_eq!(transfer_time(1000, 1), Duration::from_secs(1));
        assert_eq!(transfer_time(500, 10), Duration::from_millis(50));
    }

    #[test]
    fn jitter_stays_within_its_bounds() {
        for _ in 0..1000 {
            let delay = jittered(100, 10);
            assert!((90..110).contains(&delay));
        }
    }
}
