//! The record accumulator of a log producer (Kafka's `RecordAccumulator`):
//! records wait per partition in batches, and a batch may leave when it is
//! full (`batch_size` bytes, or `batch_records` records) or has waited
//! `linger_ms` since its first record. A full batch is closed and the next
//! record opens a new one; an open batch keeps taking records while the
//! producer has no free request slot, so batches grow with the load, as
//! Kafka's do. A record larger than `batch_size` gets a batch of its own.
//!
//! Which batches go next: once a batch is ready, one request takes the
//! oldest batch of every partition, starting from the oldest ready one, up
//! to `max.request.size` (1 MiB, Kafka's default; not a setting here), as
//! Kafka's sender drains every partition a broker leads. A queue producer is the same with
//! batches of one record: each is full at once, so it sends per message.
//!
//! Left out: the accumulator's memory limit (`buffer.memory`, which blocks
//! `send`), compression, and records split when a batch is too large.
//!
//! Speed: the oldest ready batch is found from an index of every
//! partition's front batch by (opened at, partition), the still-open ones
//! apart from the closed ones, so a call that finds nothing ready (the
//! common case: every new record tries to send while the batches linger)
//! costs one look at the oldest front rather than a scan of every waiting
//! partition. On `bench/workloads/cluster.toml` (300 partitions, 5 ms
//! linger) that scan was 58% of all instructions.

use crate::message::Record;
use crate::time::{Duration, Time};
use std::collections::{BTreeSet, VecDeque};

/// Records of one partition sent together in one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Batch {
    /// The records, in production order.
    pub recs: Vec<Record>,
    /// Their size in bytes.
    pub bytes: u64,
    /// When its first record came (the linger and the delivery timeout
    /// count from here).
    pub opened_at: Time,
    /// Full: it takes no more records.
    pub closed: bool,
}

/// The batches waiting to be sent, per partition.
#[derive(Debug)]
pub(crate) struct Accumulator {
    max_bytes: u64,
    max_records: usize,
    linger_ns: Duration,
    parts: Vec<VecDeque<Batch>>,
    /// One bit per partition, set while it has a batch: the scans below
    /// skip the empty partitions a word at a time.
    busy: Vec<u64>,
    /// The front batch of every partition that has one, as (opened at,
    /// partition): the open ones (ready once lingered) ...
    open_fronts: BTreeSet<(Time, u32)>,
    /// ... and the closed ones (ready at once).
    closed_fronts: BTreeSet<(Time, u32)>,
    records: usize,
}

impl Accumulator {
    /// Batches of at most `max_bytes` and `max_records` (each at least 1),
    /// sent after `linger_ns` at the latest, for `partitions` partitions.
    pub fn new(partitions: usize, max_bytes: u64, max_records: usize, linger_ns: Duration) -> Self {
        Accumulator {
            max_bytes: max_bytes.max(1),
            max_records: max_records.max(1),
            linger_ns,
            parts: (0..partitions.max(1)).map(|_| VecDeque::new()).collect(),
            busy: vec![0; partitions.max(1).div_ceil(64)],
            open_fronts: BTreeSet::new(),
            closed_fronts: BTreeSet::new(),
            records: 0,
        }
    }

    /// The index entry of the front batch of `partition`: when it opened,
    /// and whether it is closed.
    fn front_of(&self, partition: u32) -> Option<(Time, bool)> {
        self.parts[partition as usize].front().map(|b| (b.opened_at, b.closed))
    }

    /// Keeps the front index in step once the front batch of `partition`
    /// went from `was` to what it is now.
    fn refile(&mut self, partition: u32, was: Option<(Time, bool)>) {
        let now = self.front_of(partition);
        if now == was {
            return;
        }
        if let Some((t, closed)) = was {
            let set = if closed { &mut self.closed_fronts } else { &mut self.open_fronts };
            set.remove(&(t, partition));
        }
        if let Some((t, closed)) = now {
            let set = if closed { &mut self.closed_fronts } else { &mut self.open_fronts };
            set.insert((t, partition));
        }
    }

    /// Adds `rec` of `bytes` bytes to `partition` at `now`. Returns when
    /// its batch's linger ends if the record opened a batch that must wait
    /// for it (the caller arms a timer then).
    pub fn add(&mut self, now: Time, partition: u32, rec: Record, bytes: u64) -> Option<Time> {
        let (max_bytes, max_records) = (self.max_bytes, self.max_records);
        let was = self.front_of(partition);
        let q = &mut self.parts[partition as usize];
        let fits = q.back().is_some_and(|b| !b.closed && b.bytes + bytes <= max_bytes);
        if !fits {
            if let Some(b) = q.back_mut() {
                b.closed = true;
            }
            q.push_back(Batch { recs: Vec::new(), bytes: 0, opened_at: now, closed: false });
        }
        let b = q.back_mut().expect("a batch is open");
        self.busy[partition as usize / 64] |= 1 << (partition % 64);
        b.recs.push(rec);
        b.bytes += bytes;
        b.closed = b.bytes >= max_bytes || b.recs.len() >= max_records;
        self.records += 1;
        let waits = b.recs.len() == 1 && !b.closed && self.linger_ns > 0;
        self.refile(partition, was);
        waits.then(|| now.saturating_add(self.linger_ns))
    }

    #[cfg(test)]
    fn ready(&self, b: &Batch, now: Time) -> bool {
        b.closed || now >= b.opened_at.saturating_add(self.linger_ns)
    }

    /// The partition whose batch should leave next at `now`: the oldest
    /// ready one (the lowest partition among equals).
    #[cfg(test)]
    pub fn next_ready(&self, now: Time) -> Option<u32> {
        self.next_ready_by(now, |_| Some(0))
    }

    /// Like [`Accumulator::next_ready`], among the partitions `route`
    /// gives a destination (in a cluster: a known leader with a free
    /// request slot). Always inlined, as [`Accumulator::drain_by`] is.
    #[inline(always)]
    fn next_ready_by(&self, now: Time, route: impl Fn(u32) -> Option<u64>) -> Option<u32> {
        // Both lists in (opened at, partition) order, merged: the first
        // ready one that `route` takes is the oldest, the lowest partition
        // among equals.
        let lingered = now.checked_sub(self.linger_ns);
        let mut open = self.open_fronts.iter().take_while(|&&(t, _)| lingered.is_some_and(|l| t <= l)).peekable();
        let mut closed = self.closed_fronts.iter().peekable();
        loop {
            let next = match (open.peek(), closed.peek()) {
                (Some(a), Some(b)) if a <= b => open.next(),
                (Some(_), Some(_)) | (None, Some(_)) => closed.next(),
                (Some(_), None) => open.next(),
                (None, None) => return None,
            };
            let &(_, p) = next.expect("peeked");
            if route(p).is_some() {
                return Some(p);
            }
        }
    }

    /// The reference for [`Accumulator::next_ready_by`]: a scan of every
    /// waiting partition (what it was before the front index).
    #[cfg(test)]
    fn next_ready_by_scan(&self, now: Time, route: impl Fn(u32) -> Option<u64>) -> Option<u32> {
        let mut best: Option<(Time, u32)> = None;
        for p in self.waiting() {
            if let Some(b) = self.parts[p as usize].front().filter(|b| self.ready(b, now)) {
                if best.is_none_or(|(t, _)| b.opened_at < t) && route(p).is_some() {
                    best = Some((b.opened_at, p));
                }
            }
        }
        best.map(|(_, p)| p)
    }

    /// The first partition from `from` on that has a batch.
    fn next_busy(&self, from: u32) -> Option<u32> {
        let mut w = from as usize / 64;
        let mut bits = self.busy.get(w)? & (u64::MAX << (from % 64));
        while bits == 0 {
            w += 1;
            bits = *self.busy.get(w)?;
        }
        Some(w as u32 * 64 + bits.trailing_zeros())
    }

    /// The batches of one produce request at `now`, once some batch is
    /// ready: the oldest batch of every partition that has one, ready or
    /// still lingering (Kafka's sender drains every partition the broker
    /// leads, not only the ready ones), starting from the partition of the
    /// oldest ready batch, up to `max_bytes` in all (at least one batch).
    pub fn drain(&mut self, now: Time, max_bytes: u64) -> Vec<(u32, Batch)> {
        self.drain_by(now, max_bytes, |_| Some(0))
    }

    /// Like [`Accumulator::drain`], for one destination: the partitions
    /// `route` sends where the oldest ready batch it routes goes (in a
    /// cluster: the leader of its partition). Partitions it routes nowhere
    /// keep their batches. Always inlined into its one caller, with its
    /// `route` closure (so is [`Accumulator::next_ready_by`]): out of line,
    /// the scans call the closure for every partition (about 25M more
    /// instructions on the cluster benchmark).
    #[inline(always)]
    pub fn drain_by(&mut self, now: Time, max_bytes: u64, route: impl Fn(u32) -> Option<u64>) -> Vec<(u32, Batch)> {
        let Some(first) = self.next_ready_by(now, &route) else { return Vec::new() };
        let to = route(first);
        let n = self.parts.len() as u32;
        let (mut out, mut bytes) = (Vec::new(), 0u64);
        // Every partition with a batch, from `first` round to `first - 1`
        // (taking a batch clears no bit ahead of the scan).
        'scan: for (lo, hi) in [(first, n), (0, first)] {
            let mut at = lo;
            while let Some(p) = self.next_busy(at).filter(|&p| p < hi) {
                at = p + 1;
                let Some(b) = self.parts[p as usize].front() else { continue };
                if route(p) != to {
                    continue;
                }
                if !out.is_empty() && bytes + b.bytes > max_bytes {
                    break 'scan;
                }
                bytes += b.bytes;
                let b = self.take(p).expect("a batch at the front");
                out.push((p, b));
            }
        }
        out
    }

    /// The partitions that have records waiting.
    pub fn waiting(&self) -> impl Iterator<Item = u32> + '_ {
        let mut at = 0;
        std::iter::from_fn(move || {
            let p = self.next_busy(at)?;
            at = p + 1;
            Some(p)
        })
    }

    /// Takes the oldest batch of `partition`.
    pub fn take(&mut self, partition: u32) -> Option<Batch> {
        let q = self.parts.get_mut(partition as usize)?;
        let was = q.front().map(|b| (b.opened_at, b.closed));
        let b = q.pop_front()?;
        if q.is_empty() {
            self.busy[partition as usize / 64] &= !(1 << (partition % 64));
        }
        self.records -= b.recs.len();
        self.refile(partition, was);
        Some(b)
    }

    /// Every record waiting, by partition, then in order.
    pub fn records(&self) -> impl Iterator<Item = &Record> + '_ {
        self.parts.iter().flatten().flat_map(|b| b.recs.iter())
    }

    /// True when no record waits.
    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Forgets every record (a crash: the accumulator is memory).
    pub fn clear(&mut self) {
        self.parts.iter_mut().for_each(VecDeque::clear);
        self.busy.iter_mut().for_each(|w| *w = 0);
        self.open_fronts.clear();
        self.closed_fronts.clear();
        self.records = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: u64) -> Record {
        Record::new(id, 0)
    }

    #[test]
    fn a_batch_waits_for_its_linger_unless_full() {
        let mut a = Accumulator::new(1, 3000, usize::MAX, 5);
        assert_eq!(a.add(10, 0, rec(0), 1000), Some(15), "a new batch lingers");
        assert_eq!(a.add(12, 0, rec(1), 1000), None, "a second record opens nothing");
        assert_eq!(a.next_ready(14), None);
        assert_eq!(a.next_ready(15), Some(0), "ready once lingered");
        assert_eq!(a.add(13, 0, rec(2), 1000), None);
        assert_eq!(a.next_ready(13), Some(0), "full at 3000 bytes: ready at once");
        let b = a.take(0).expect("a batch");
        assert_eq!((b.recs.len(), b.bytes, b.opened_at, b.closed), (3, 3000, 10, true));
        assert!(a.is_empty());
    }

    #[test]
    fn a_record_that_does_not_fit_opens_the_next_batch() {
        let mut a = Accumulator::new(1, 2500, usize::MAX, 5);
        a.add(0, 0, rec(0), 1000);
        a.add(0, 0, rec(1), 1000);
        assert_eq!(a.add(1, 0, rec(2), 1000), Some(6), "2,000 + 1,000 > 2,500: a new batch");
        assert_eq!(a.next_ready(1), Some(0), "the first batch is closed");
        assert_eq!(a.take(0).map(|b| b.recs.len()), Some(2));
        assert_eq!(a.next_ready(5), None, "the second lingers");
        assert_eq!(a.records().map(|r| r.id).collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn a_record_larger_than_a_batch_goes_alone_and_at_once() {
        let mut a = Accumulator::new(1, 100, usize::MAX, 5);
        assert_eq!(a.add(0, 0, rec(0), 500), None, "full at once: no linger");
        assert_eq!(a.next_ready(0), Some(0));
    }

    #[test]
    fn batches_of_one_record_are_full_at_once() {
        let mut a = Accumulator::new(1, u64::MAX, 1, 5);
        a.add(0, 0, rec(0), 1);
        a.add(0, 0, rec(1), 1);
        assert_eq!(a.take(0).map(|b| b.recs), Some(vec![rec(0)]));
        assert_eq!(a.next_ready(0), Some(0));
    }

    #[test]
    fn the_oldest_ready_batch_goes_first_whatever_its_partition() {
        let mut a = Accumulator::new(3, 1000, usize::MAX, 0);
        a.add(5, 2, rec(0), 10);
        a.add(6, 0, rec(1), 10);
        a.add(7, 1, rec(2), 10);
        assert_eq!(a.next_ready(7), Some(2));
        a.take(2);
        assert_eq!(a.next_ready(7), Some(0));
        a.clear();
        assert!(a.is_empty() && a.next_ready(7).is_none());
    }

    #[test]
    fn a_request_takes_every_partition_s_oldest_batch_once_one_is_ready() {
        let mut a = Accumulator::new(4, 1000, usize::MAX, 5);
        a.add(0, 1, rec(0), 600); // lingering until 5
        a.add(1, 3, rec(2), 10); // lingering until 6
        a.add(2, 0, rec(3), 10); // lingering until 7
        assert!(a.drain(2, u64::MAX).is_empty(), "nothing is ready: every batch lingers");
        a.add(2, 1, rec(1), 600); // 1,200 > 1,000 bytes: closes partition 1's first batch
        let got: Vec<(u32, Vec<u64>)> =
            a.drain(2, u64::MAX).into_iter().map(|(p, b)| (p, b.recs.iter().map(|r| r.id).collect())).collect();
        assert_eq!(got, vec![(1, vec![0]), (3, vec![2]), (0, vec![3])], "from the ready partition round");
        assert_eq!(a.records().map(|r| r.id).collect::<Vec<_>>(), vec![1], "one batch per partition");
    }

    #[test]
    fn a_request_stops_at_its_size_limit_but_carries_at_least_one_batch() {
        let mut a = Accumulator::new(3, 1000, usize::MAX, 0);
        a.add(0, 0, rec(0), 5000);
        a.add(0, 1, rec(1), 10);
        a.add(0, 2, rec(2), 10);
        assert_eq!(a.drain(0, 100).len(), 1, "one batch over the limit goes alone");
        assert_eq!(a.drain(0, 15).len(), 1, "10 + 10 > 15");
        assert_eq!(a.drain(0, 15).len(), 1);
        assert!(a.is_empty());
    }

    #[test]
    fn a_request_by_route_takes_only_the_partitions_going_where_the_oldest_routed_batch_goes() {
        let mut a = Accumulator::new(4, 1000, usize::MAX, 0);
        a.add(0, 0, rec(0), 10); // oldest, but routed nowhere
        a.add(1, 1, rec(1), 10);
        a.add(2, 2, rec(2), 10);
        a.add(3, 3, rec(3), 10);
        let route = |p: u32| [None, Some(7), Some(8), Some(7)][p as usize];
        let ids = |v: Vec<(u32, Batch)>| v.into_iter().map(|(p, _)| p).collect::<Vec<_>>();
        assert_eq!(ids(a.drain_by(5, u64::MAX, route)), vec![1, 3], "to 7: partitions 1 and 3");
        assert_eq!(ids(a.drain_by(5, u64::MAX, route)), vec![2]);
        assert!(a.drain_by(5, u64::MAX, route).is_empty(), "partition 0 waits for a route");
        assert_eq!(a.waiting().collect::<Vec<_>>(), vec![0]);
    }

    #[test]
    fn a_request_goes_round_many_partitions_from_the_oldest_ready_one() {
        let mut a = Accumulator::new(200, 1000, usize::MAX, 0);
        for (t, p) in [(4, 3), (3, 70), (1, 130), (2, 199), (5, 64), (6, 63)] {
            a.add(t, p, rec(u64::from(p)), 10);
        }
        assert_eq!(a.waiting().collect::<Vec<_>>(), vec![3, 63, 64, 70, 130, 199]);
        let got: Vec<u32> = a.drain(6, u64::MAX).into_iter().map(|(p, _)| p).collect();
        assert_eq!(got, vec![130, 199, 3, 63, 64, 70], "from 130 round to 129");
        assert_eq!(a.waiting().count(), 0, "every partition's only batch went");
        a.add(7, 64, rec(1), 10);
        a.add(7, 127, rec(2), 10);
        assert_eq!(a.waiting().collect::<Vec<_>>(), vec![64, 127]);
        assert_eq!(a.next_ready(7), Some(64), "the lowest partition among equals");
    }

    #[test]
    fn no_linger_sends_a_batch_as_soon_as_it_may() {
        let mut a = Accumulator::new(1, 1000, usize::MAX, 0);
        assert_eq!(a.add(5, 0, rec(0), 10), None);
        assert_eq!(a.next_ready(5), Some(0));
    }

    /// One step of a random accumulator history.
    #[derive(Debug, Clone)]
    enum Step {
        /// Time passes, then a record of so many bytes comes to a partition.
        Add(u64, u32, u64),
        /// Time passes, then a request is drained under a routing table.
        Drain(u64, Vec<Option<u64>>, u64),
        Clear,
    }

    fn step() -> impl proptest::strategy::Strategy<Value = Step> {
        use proptest::prelude::*;
        let route = prop::collection::vec(prop::option::weighted(0.7, 0u64..3), 7);
        prop_oneof![
            8 => (0u64..4, 0u32..7, 1u64..700).prop_map(|(dt, p, b)| Step::Add(dt, p, b)),
            3 => (0u64..4, route, 1u64..3000).prop_map(|(dt, r, m)| Step::Drain(dt, r, m)),
            1 => Just(Step::Clear),
        ]
    }

    proptest::proptest! {
        /// The front index picks exactly the batch the scan of every
        /// waiting partition picked, under any routing, through adds,
        /// drains and clears.
        #[test]
        fn the_front_index_picks_what_the_scan_picked(
            linger in 0u64..6,
            max_records in 1usize..5,
            steps in proptest::collection::vec(step(), 1..120),
        ) {
            let mut a = Accumulator::new(7, 1000, max_records, linger);
            let (mut now, mut id) = (0, 0);
            for s in steps {
                match s {
                    Step::Add(dt, p, b) => {
                        now += dt;
                        id += 1;
                        a.add(now, p, rec(id), b);
                    }
                    Step::Drain(dt, r, max) => {
                        now += dt;
                        let route = |p: u32| r[p as usize];
                        proptest::prop_assert_eq!(a.next_ready_by(now, route), a.next_ready_by_scan(now, route));
                        for t in [now, now + 3, now + 9] {
                            proptest::prop_assert_eq!(a.next_ready_by(t, |_| Some(0)), a.next_ready_by_scan(t, |_| Some(0)));
                        }
                        a.drain_by(now, max, route);
                    }
                    Step::Clear => a.clear(),
                }
                let mut fronts: Vec<(Time, u32, bool)> =
                    a.waiting().map(|p| { let b = &a.parts[p as usize][0]; (b.opened_at, p, b.closed) }).collect();
                fronts.sort_unstable();
                let mut index: Vec<(Time, u32, bool)> = a.open_fronts.iter().map(|&(t, p)| (t, p, false))
                    .chain(a.closed_fronts.iter().map(|&(t, p)| (t, p, true))).collect();
                index.sort_unstable();
                proptest::prop_assert_eq!(index, fronts, "the index lists every front batch once");
            }
        }
    }
}
