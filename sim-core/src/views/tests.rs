//! Unit tests of the table, the cache, the readers and the writer's hook,
//! driven through their handlers with the harness, each step by hand.

use super::*;
use crate::engine::{Component, Emitted, Harness};
use crate::message::{Msg, MsgId, NodeId, Record};
use crate::observer::StateFact;
use crate::producer::WriteHook;
use crate::protocol::{KvMsg, SinkMsg};
use crate::time::NS_PER_MS;

const MS: u64 = NS_PER_MS;
const ME: NodeId = 5;
const CONSUMER: NodeId = 1;
const READER: NodeId = 2;
const TABLE: NodeId = 3;

fn table(extra: &str) -> (Harness, Table) {
    let spec: TableSpec = toml::from_str(extra).expect("a valid table");
    let mut t = Table::new(&spec);
    let mut h = Harness::new(ME);
    let started = h.start(&mut t);
    assert_eq!(started.state_facts(), [StateFact::Replica { complete: true }], "a table answers for every key");
    (h, t)
}

fn write(id: MsgId, key: u64) -> SinkMsg {
    SinkMsg::Write { rec: Record::new(id, key), partition: 0, offset: id }
}

fn holds(e: &Emitted) -> Vec<(u64, Option<MsgId>)> {
    e.state_facts()
        .into_iter()
        .filter_map(|f| match f {
            StateFact::Holds { key, id } => Some((key, id)),
            _ => None,
        })
        .collect()
}

/// The values sent to `to`: (key, req, seen).
fn values(e: &Emitted, to: NodeId) -> Vec<(u64, u64, Option<MsgId>)> {
    e.sent_to(to)
        .into_iter()
        .filter_map(|m| match m {
            Msg::Kv(KvMsg::Value { key, req, seen }) => Some((key, req, seen)),
            _ => None,
        })
        .collect()
}

fn written(e: &Emitted) -> Vec<MsgId> {
    e.sent_to(CONSUMER)
        .into_iter()
        .filter_map(|m| match m {
            Msg::Sink(SinkMsg::Written { id }) => Some(id),
            _ => None,
        })
        .collect()
}

#[test]
fn a_table_applies_a_write_once_reports_what_it_holds_and_answers_every_copy() {
    let (mut h, mut t) = table("");
    let e = h.message(&mut t, CONSUMER, write(10, 7));
    assert_eq!((e.applied(), holds(&e), written(&e)), (vec![10], vec![(7, Some(10))], vec![10]));
    let again = h.message(&mut t, CONSUMER, write(10, 7));
    assert!(again.applied().is_empty() && holds(&again).is_empty(), "a redone write is a duplicate");
    assert_eq!(written(&again), [10], "a duplicate is answered too, or the consumer would resend it forever");
    assert_eq!(again.metric("table_duplicates"), 1.0);
}

#[test]
fn a_table_answers_a_read_after_its_latency_with_the_row_then_and_a_tombstone_is_a_value() {
    let (mut h, mut t) = table("read_latency = { dist = \"constant\", ms = 4 }");
    h.message(&mut t, CONSUMER, write(1, 7));
    let e = h.message(&mut t, READER, KvMsg::Get { key: 7, req: 40 });
    assert_eq!(e.timers::<Served>(), [(4 * MS, Served(0))]);
    assert!(e.sent().is_empty());
    // The delete (id 2) lands while the read is served: the answer shows it.
    h.message(&mut t, CONSUMER, write(2, 7));
    h.now = 4 * MS;
    assert_eq!(values(&h.timer(&mut t, Served(0)), READER), [(7, 40, Some(2))]);
    h.message(&mut t, READER, KvMsg::Get { key: 8, req: 41 });
    assert_eq!(values(&h.timer(&mut t, Served(1)), READER), [(8, 41, None)], "never written: 404");
}

#[test]
fn an_older_write_overwrites_a_newer_unless_the_table_is_versioned() {
    // Ids are made in production order: 5 was made before 9.
    let (mut h, mut t) = table("");
    h.message(&mut t, CONSUMER, write(9, 7));
    let e = h.message(&mut t, CONSUMER, write(5, 7));
    assert_eq!((e.applied(), holds(&e)), (vec![5], vec![(7, Some(5))]), "last to arrive wins: the lost update");
    let (mut h, mut t) = table("versioned = true");
    h.message(&mut t, CONSUMER, write(9, 7));
    let e = h.message(&mut t, CONSUMER, write(5, 7));
    assert_eq!(e.applied(), [5], "its effect is taken (absorbed), so the ledger does not call it lost");
    assert!(holds(&e).is_empty());
    assert_eq!(t.row(7), Some(9));
    assert_eq!(e.metric("table_older_kept"), 1.0);
}

#[test]
fn a_table_crash_keeps_its_rows_and_loses_the_reads_in_progress() {
    let (mut h, mut t) = table("");
    h.message(&mut t, CONSUMER, write(3, 1));
    h.message(&mut t, READER, KvMsg::Get { key: 1, req: 0 });
    t.crash();
    let restarted = h.restart(&mut t);
    assert_eq!(restarted.state_facts(), [StateFact::Replica { complete: true }]);
    assert!(h.timer(&mut t, Served(0)).is_empty(), "the read died with the process");
    assert_eq!(t.row(1), Some(3));
    assert!(h.message(&mut t, CONSUMER, write(3, 1)).applied().is_empty(), "the processed ids are durable too");
}

fn cache(extra: &str) -> (Harness, Cache) {
    let spec: CacheSpec = toml::from_str(&format!("table = \"db\"\n{extra}")).expect("a valid cache");
    let mut c = Cache::new(&spec, TABLE);
    let mut h = Harness::new(ME);
    assert_eq!(h.start(&mut c).state_facts(), [StateFact::Replica { complete: false }]);
    (h, c)
}

#[test]
fn a_cache_miss_reads_the_table_answers_its_value_and_fills() {
    let (mut h, mut c) = cache("");
    let e = h.message(&mut c, READER, KvMsg::Get { key: 7, req: 40 });
    assert_eq!(e.timers::<CacheTimer>(), [(MS, CacheTimer::Lookup(0))], "the default latency is 1 ms");
    h.now = MS;
    let miss = h.timer(&mut c, CacheTimer::Lookup(0));
    assert_eq!(miss.sent_to(TABLE), [Msg::Kv(KvMsg::Get { key: 7, req: 0 })]);
    assert_eq!(miss.metric("cache_misses"), 1.0);
    h.now = 6 * MS;
    let fill = h.message(&mut c, TABLE, KvMsg::Value { key: 7, req: 0, seen: Some(12) });
    assert_eq!(values(&fill, READER), [(7, 40, Some(12))]);
    assert_eq!(holds(&fill), [(7, Some(12))]);
    h.message(&mut c, READER, KvMsg::Get { key: 7, req: 41 });
    let hit = h.timer(&mut c, CacheTimer::Lookup(1));
    assert_eq!((values(&hit, READER), hit.metric("cache_hits")), (vec![(7, 41, Some(12))], 1.0));
    assert!(hit.sent_to(TABLE).is_empty());
}

#[test]
fn a_not_found_is_not_cached_and_a_fill_does_not_overwrite_a_newer_put() {
    let (mut h, mut c) = cache("");
    h.message(&mut c, READER, KvMsg::Get { key: 7, req: 40 });
    h.timer(&mut c, CacheTimer::Lookup(0));
    let none = h.message(&mut c, TABLE, KvMsg::Value { key: 7, req: 0, seen: None });
    assert_eq!((values(&none, READER), holds(&none)), (vec![(7, 40, None)], vec![]));
    // A miss goes to the table; meanwhile the API writes through a newer value.
    h.message(&mut c, READER, KvMsg::Get { key: 7, req: 41 });
    h.timer(&mut c, CacheTimer::Lookup(1));
    assert_eq!(holds(&h.message(&mut c, 9, KvMsg::Put { key: 7, id: 20 })), [(7, Some(20))]);
    let late = h.message(&mut c, TABLE, KvMsg::Value { key: 7, req: 1, seen: Some(12) });
    assert_eq!(values(&late, READER), [(7, 41, Some(12))], "the reader gets what the table said");
    assert!(holds(&late).is_empty(), "the older fill leaves the newer entry");
    assert_eq!(c.entry(7), Some(20));
}

#[test]
fn an_entry_expires_its_ttl_after_it_was_last_set_and_an_evict_forgets_it() {
    let (mut h, mut c) = cache("ttl_ms = 100");
    let put = h.message(&mut c, 9, KvMsg::Put { key: 7, id: 20 });
    assert_eq!(put.timers::<CacheTimer>(), [(100 * MS, CacheTimer::Expire)]);
    h.now = 50 * MS;
    h.message(&mut c, 9, KvMsg::Put { key: 7, id: 21 });
    h.now = 100 * MS;
    let early = h.timer(&mut c, CacheTimer::Expire);
    assert!(holds(&early).is_empty(), "set again at 50 ms: it lives until 150 ms");
    h.now = 150 * MS;
    let gone = h.timer(&mut c, CacheTimer::Expire);
    assert_eq!((holds(&gone), gone.metric("cache_expired")), (vec![(7, None)], 1.0));
    h.message(&mut c, 9, KvMsg::Put { key: 8, id: 30 });
    assert_eq!(holds(&h.message(&mut c, 9, KvMsg::Evict { key: 8 })), [(8, None)]);
    assert!(holds(&h.message(&mut c, 9, KvMsg::Evict { key: 8 })).is_empty(), "nothing held: nothing changes");
}

#[test]
fn a_crashed_cache_comes_back_empty() {
    let (mut h, mut c) = cache("");
    h.message(&mut c, 9, KvMsg::Put { key: 7, id: 20 });
    c.crash();
    assert_eq!(h.restart(&mut c).state_facts(), [StateFact::Replica { complete: false }]);
    assert_eq!(c.entry(7), None);
}

fn readers(extra: &str) -> (Harness, Readers) {
    let spec: ReadersSpec = toml::from_str(&format!("target = \"db\"\n{extra}")).expect("valid readers");
    let mut r = Readers::new(&spec, TABLE);
    let mut h = Harness::new(ME);
    h.start(&mut r);
    (h, r)
}

fn reads(e: &Emitted) -> Vec<(u64, Option<MsgId>, bool)> {
    e.state_facts()
        .into_iter()
        .filter_map(|f| match f {
            StateFact::Read { key, seen, own } => Some((key, seen, own)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_user_told_of_a_create_reads_it_after_the_delay_and_reports_the_answer_as_own() {
    let (mut h, mut r) = readers("own_delay = { dist = \"constant\", ms = 200 }");
    let made = h.message(&mut r, 9, KvMsg::Made { key: 7, id: 3, delete: false });
    assert_eq!(made.timers::<ReadersTimer>(), [(200 * MS, ReadersTimer::Own)]);
    h.now = 200 * MS;
    let due = h.timer(&mut r, ReadersTimer::Own);
    assert_eq!(due.sent_to(TABLE), [Msg::Kv(KvMsg::Get { key: 7, req: 1 })]);
    assert!(reads(&due).is_empty(), "a read is reported where its answer arrives");
    h.now = 205 * MS;
    let answer = h.message(&mut r, TABLE, KvMsg::Value { key: 7, req: 1, seen: None });
    assert_eq!(reads(&answer), [(7, None, true)]);
    assert!(reads(&h.message(&mut r, TABLE, KvMsg::Value { key: 7, req: 1, seen: None })).is_empty(), "once");
}

#[test]
fn a_delete_is_not_opened_and_a_newer_write_by_someone_else_makes_the_read_not_own() {
    let (mut h, mut r) = readers("own_delay = { dist = \"constant\", ms = 200 }");
    assert!(h.message(&mut r, 9, KvMsg::Made { key: 7, id: 3, delete: true }).timers::<ReadersTimer>().is_empty());
    h.message(&mut r, 9, KvMsg::Made { key: 8, id: 4, delete: false });
    h.now = 100 * MS;
    h.message(&mut r, 9, KvMsg::Made { key: 8, id: 6, delete: false });
    h.now = 200 * MS;
    // Serials 0 and 1 went to the two own reads scheduled: this read is 2.
    assert_eq!(h.timer(&mut r, ReadersTimer::Own).sent_to(TABLE), [Msg::Kv(KvMsg::Get { key: 8, req: 2 })]);
    let answer = h.message(&mut r, TABLE, KvMsg::Value { key: 8, req: 2, seen: Some(6) });
    assert_eq!(reads(&answer), [(8, Some(6), false)]);
}

#[test]
fn own_is_judged_when_the_answer_arrives_so_a_write_made_while_the_read_flew_counts() {
    let (mut h, mut r) = readers("own_delay = { dist = \"constant\", ms = 200 }");
    h.message(&mut r, 9, KvMsg::Made { key: 8, id: 4, delete: false });
    h.now = 200 * MS;
    h.timer(&mut r, ReadersTimer::Own);
    // Someone else deletes the link while the read is on its way.
    h.message(&mut r, 9, KvMsg::Made { key: 8, id: 5, delete: true });
    let answer = h.message(&mut r, TABLE, KvMsg::Value { key: 8, req: 1, seen: Some(4) });
    assert_eq!(reads(&answer), [(8, Some(4), false)]);
}

#[test]
fn others_read_at_their_rate_until_the_drain_and_an_unanswered_read_times_out() {
    let spec =
        "arrival = { process = \"constant\", rate_per_s = 10 }\nkeys = { distribution = \"uniform\", count = 5 }";
    let (mut h, mut r) = readers(&format!("{spec}\ntimeout_ms = 50"));
    h.now = 100 * MS;
    let e = h.timer(&mut r, ReadersTimer::Arrival);
    let sent = e.sent_to(TABLE);
    assert!(matches!(sent[..], [Msg::Kv(KvMsg::Get { key, req: 0 })] if key < 5), "{sent:?}");
    assert_eq!(e.timers::<ReadersTimer>(), [(100 * MS, ReadersTimer::Arrival), (50 * MS, ReadersTimer::Timeout)]);
    h.now = 150 * MS;
    assert_eq!(h.timer(&mut r, ReadersTimer::Timeout).errors(), ["read-timeout"]);
    assert_eq!(h.drain(&mut r).cancelled::<ReadersTimer>(), [ReadersTimer::Arrival]);
    h.now = 200 * MS;
    assert!(h.timer(&mut r, ReadersTimer::Arrival).sent().is_empty(), "no reads in the drain");
}

/// The writer's hook, with a cache of the given flags.
fn hook(deletes: f64, write_through: bool, markers: bool) -> WriteHook {
    WriteHook::with_cache(deletes, TABLE, write_through, markers, Some(READER))
}

/// What the hook sent and reported for write `id` of key 7.
fn made(hook: &WriteHook, id: MsgId) -> (Vec<Msg>, Vec<StateFact>) {
    let mut hook = hook.clone();
    let mut h = Harness::new(ME);
    let ((), e) = h.act::<ReadersTimer, ()>(|ctx| hook.made(ctx, 7, id));
    (e.sent_to(TABLE), e.state_facts())
}

#[test]
fn the_writer_sets_puts_a_marker_or_invalidates_as_the_cache_says_then_tells_the_user() {
    let mut creates = hook(0.0, true, false);
    let (cache, facts) = made(&creates, 4);
    assert_eq!(cache, [Msg::Kv(KvMsg::Put { key: 7, id: 4 })]);
    assert_eq!(facts, [StateFact::Wrote { key: 7, id: 4, delete: false }]);
    assert_eq!(made(&hook(0.0, false, true), 4).0, [Msg::Kv(KvMsg::Evict { key: 7 })], "cache-aside");
    assert_eq!(made(&hook(1.0, true, true), 4).0, [Msg::Kv(KvMsg::Put { key: 7, id: 4 })], "a deletion marker");
    let (cache, facts) = made(&hook(1.0, true, false), 4);
    assert_eq!(cache, [Msg::Kv(KvMsg::Evict { key: 7 })]);
    assert_eq!(facts, [StateFact::Wrote { key: 7, id: 4, delete: true }]);
    let mut h = Harness::new(ME);
    let ((), e) = h.act::<ReadersTimer, ()>(|ctx| creates.made(ctx, 7, 4));
    assert_eq!(e.sent_to(READER), [Msg::Kv(KvMsg::Made { key: 7, id: 4, delete: false })]);
}

#[test]
fn the_deletes_are_the_fraction_asked_and_a_function_of_the_id_alone() {
    let hook = WriteHook::new(0.25);
    let n = 4000;
    let deletes =
        (0..n).filter(|&id| made(&hook, id).1 == [StateFact::Wrote { key: 7, id, delete: true }]).count() as f64;
    // Binomial(4000, 0.25): standard deviation 27.4; five of them either side.
    assert!((deletes - 1000.0).abs() < 5.0 * 27.4, "{deletes} deletes of {n}");
    assert_eq!(made(&hook, 17), made(&hook, 17), "the same id is the same write, whoever asks");
}
