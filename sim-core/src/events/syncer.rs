//! The crawler and the watcher of a data sync: both read the source
//! system's table and send copies of its keys to the destination.

use crate::engine::{Component, Ctx, Timer};
use crate::message::{Msg, NodeId};
use crate::protocol::SyncMsg;
use crate::time::{ms_to_ns, Duration};
use std::collections::VecDeque;

/// The metrics a crawler or a watcher reports.
pub const METRICS: [&str; 3] = ["crawled_keys", "watch_rounds", "watch_copies"];

/// Which job a syncer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Copies every key the source holds when it starts, once, at a rate.
    Crawler,
    /// Every interval, copies every key the source holds.
    Watcher,
}

/// A syncer's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncTimer {
    /// Begin: a crawler lists the keys, a watcher makes a round.
    Begin,
    /// A crawler reads its next key.
    Read,
    /// A copy read `copy_ms` ago leaves for the destination.
    Send,
}

impl Timer for SyncTimer {
    fn to_word(self) -> u64 {
        self as u64
    }
    fn from_word(word: u64) -> Option<Self> {
        [SyncTimer::Begin, SyncTimer::Read, SyncTimer::Send].get(word as usize).copied()
    }
}

/// A running crawler or watcher.
#[derive(Debug)]
pub struct Syncer {
    role: Role,
    destination: NodeId,
    /// A crawler: when it starts; a watcher: its first round.
    start: Duration,
    /// A crawler: between two keys; a watcher: between two rounds.
    every: Duration,
    /// From reading a key to sending its copy (transforming it).
    copy: Duration,
    /// A crawler's keys still to read.
    todo: VecDeque<u64>,
    /// Copies read, waiting `copy` to leave (in reading order).
    ready: VecDeque<(u64, SyncMsg)>,
    crawled: u64,
    rounds: u64,
    copies: u64,
}

impl Syncer {
    /// A syncer of `role` sending to `destination`, starting at `start_ms`,
    /// reading a key (crawler) or making a round (watcher) every
    /// `every_ms`, each copy leaving `copy_ms` after its read.
    pub fn new(role: Role, destination: NodeId, start_ms: f64, every_ms: f64, copy_ms: f64) -> Self {
        Syncer {
            role,
            destination,
            start: ms_to_ns(start_ms),
            every: ms_to_ns(every_ms),
            copy: ms_to_ns(copy_ms),
            todo: VecDeque::new(),
            ready: VecDeque::new(),
            crawled: 0,
            rounds: 0,
            copies: 0,
        }
    }

    /// Reads `key` from the source's table and schedules its copy.
    fn read(&mut self, ctx: &mut Ctx<SyncTimer>, key: u64) {
        let Some(&(id, version)) = ctx.stores_mut().source().get(&key) else { return };
        let repair = self.role == Role::Watcher;
        let msg = SyncMsg::Copy { key: key as u32, id, version: version.min(u64::from(u32::MAX)) as u32, repair };
        self.ready.push_back((ctx.now() + self.copy, msg));
        ctx.set_background_timer(self.copy, SyncTimer::Send);
    }

    fn begin(&mut self, ctx: &mut Ctx<SyncTimer>) {
        let keys: Vec<u64> = ctx.stores_mut().source().keys().copied().collect();
        match self.role {
            Role::Crawler => {
                self.todo = keys.into();
                ctx.set_background_timer(0, SyncTimer::Read);
            }
            Role::Watcher => {
                self.rounds += 1;
                ctx.metric_set("watch_rounds", self.rounds as f64);
                for key in keys {
                    self.read(ctx, key);
                }
                ctx.set_background_timer(self.every, SyncTimer::Begin);
            }
        }
    }
}

impl Component for Syncer {
    type Timer = SyncTimer;

    fn start(&mut self, ctx: &mut Ctx<SyncTimer>) {
        ctx.set_background_timer(self.start, SyncTimer::Begin);
    }

    fn on_message(&mut self, _ctx: &mut Ctx<SyncTimer>, _from: NodeId, _msg: Msg) {}

    fn on_timer(&mut self, ctx: &mut Ctx<SyncTimer>, timer: SyncTimer) {
        match timer {
            SyncTimer::Begin => self.begin(ctx),
            SyncTimer::Read => {
                let Some(key) = self.todo.pop_front() else { return };
                self.crawled += 1;
                ctx.metric_set("crawled_keys", self.crawled as f64);
                self.read(ctx, key);
                if !self.todo.is_empty() {
                    ctx.set_background_timer(self.every, SyncTimer::Read);
                }
            }
            SyncTimer::Send => {
                while self.ready.front().is_some_and(|&(at, _)| at <= ctx.now()) {
                    let (_, msg) = self.ready.pop_front().expect("a ready copy");
                    if self.role == Role::Watcher {
                        self.copies += 1;
                        ctx.metric_set("watch_copies", self.copies as f64);
                    }
                    ctx.send(self.destination, msg);
                }
            }
        }
    }

    /// A crash loses the copies not sent and the crawl's place: a restart
    /// crawls again (a watcher's next round comes from `start`).
    fn crash(&mut self) {
        self.todo.clear();
        self.ready.clear();
    }
}
