//! Unit tests of the bank and the ATM, driven through their handlers with
//! the harness: authorisations, declines, reconciliations applied once,
//! the offline policies and their limit, probing, resending, and crashes.

use super::atm::{Atm, AtmTimer, NOTE_DOLLARS};
use super::{AtmSpec, Bank, BankSpec, Processed};
use crate::engine::{Component, Emitted, Harness};
use crate::ledger::DupCause;
use crate::message::{Msg, MsgId, NodeId};
use crate::observer::StateFact::{self, Declined, Dispensed, Opened, Settled};
use crate::protocol::BankMsg;
use crate::time::NS_PER_MS;

const MS: u64 = NS_PER_MS;
const BANK: NodeId = 1;
const ATM: NodeId = 2;
const OTHER_ATM: NodeId = 3;

/// `base` with the fields of `extra` put over it.
fn table(base: &str, extra: &str) -> toml::Table {
    let mut t: toml::Table = toml::from_str(base).expect("a valid base table");
    t.extend(toml::from_str::<toml::Table>(extra).expect("valid extra fields"));
    t
}

fn bank_spec(extra: &str) -> BankSpec {
    let base = "accounts = 3\nbalance = 100\nprocessing = { dist = \"constant\", ms = 5 }";
    table(base, extra).try_into().expect("a valid bank table")
}

fn bank(extra: &str) -> (Harness, Bank) {
    let mut b = Bank::new(&bank_spec(extra));
    let mut h = Harness::new(BANK);
    let e = h.start(&mut b);
    assert!(e.sent().is_empty() && e.timers::<Processed>().is_empty(), "a bank waits to be asked");
    let opened: Vec<(u32, i64)> = e
        .state_facts()
        .into_iter()
        .map(|f| match f {
            Opened { account, balance } => (account, balance),
            other => panic!("a bank only opens accounts at the start: {other:?}"),
        })
        .collect();
    assert_eq!(opened.iter().map(|o| o.0).collect::<Vec<_>>(), (0..b.accounts()).collect::<Vec<_>>());
    assert!(opened.iter().all(|&(a, x)| b.balance(a) == Some(x)), "the observer hears the balances opened");
    (h, b)
}

/// The money facts one handler reported.
fn money(e: &Emitted) -> Vec<StateFact> {
    e.state_facts()
}

/// The bank's answers to `to`.
fn answers(e: &Emitted, to: NodeId) -> Vec<BankMsg> {
    e.sent_to(to)
        .into_iter()
        .filter_map(|m| match m {
            Msg::Bank(b) => Some(b),
            _ => None,
        })
        .collect()
}

/// Asks `b` to authorise and processes it at once.
fn authorize(h: &mut Harness, b: &mut Bank, call: u64, account: u32, amount: u32) -> Vec<BankMsg> {
    let e = h.message(b, ATM, BankMsg::Authorize { call, account, amount });
    let [(delay, t)] = e.timers::<Processed>()[..] else { panic!("one processing timer: {e:?}") };
    assert_eq!(delay, 5 * MS, "answered after the processing time");
    answers(&h.timer(b, t), ATM)
}

#[test]
fn the_bank_opens_every_account_with_its_balance() {
    let (_, b) = bank("");
    assert_eq!((0..3).map(|a| b.balance(a)).collect::<Vec<_>>(), [Some(100); 3]);
    assert_eq!(b.balance(3), None, "only `accounts` accounts");
    // A distribution: balances are whole dollars, drawn per account.
    let (_, b) = bank("accounts = 50\nbalance = { dist = \"uniform\", min = 0, max = 600 }");
    let balances: Vec<i64> = (0..50).map(|a| b.balance(a).unwrap()).collect();
    assert!(balances.iter().all(|x| (0..=600).contains(x)), "{balances:?}");
    assert!(balances.windows(2).any(|w| w[0] != w[1]), "drawn, not all equal");
}

#[test]
fn an_authorisation_is_approved_and_debited_when_the_balance_covers_it() {
    let (mut h, mut b) = bank("");
    assert_eq!(authorize(&mut h, &mut b, 7, 1, 60), [BankMsg::Authorized { call: 7, approved: true }]);
    assert_eq!(b.balance(1), Some(40), "debited at once");
    assert_eq!(authorize(&mut h, &mut b, 8, 1, 40), [BankMsg::Authorized { call: 8, approved: true }]);
    assert_eq!(b.balance(1), Some(0), "exactly the balance is covered");
    assert_eq!(authorize(&mut h, &mut b, 9, 1, 20), [BankMsg::Authorized { call: 9, approved: false }]);
    assert_eq!(b.balance(1), Some(0), "a decline debits nothing");
    assert_eq!(authorize(&mut h, &mut b, 10, 99, 20), [BankMsg::Authorized { call: 10, approved: false }]);
}

#[test]
fn a_reconciliation_always_debits_once_and_is_answered_every_time() {
    let (mut h, mut b) = bank("");
    let e = h.message(&mut b, ATM, BankMsg::Reconcile { id: 4, account: 0, amount: 160 });
    assert_eq!(e.started(), [4]);
    let mut held = Vec::new();
    b.held(&mut held);
    assert_eq!(held, [4], "held while it is processed");
    let done = h.timer(&mut b, Processed(0));
    assert_eq!(done.applied(), [4], "applied in the bank's domain");
    assert_eq!(money(&done), [Settled { account: 0, amount: 160 }]);
    assert_eq!(answers(&done, ATM), [BankMsg::Reconciled { id: 4 }]);
    assert_eq!(b.balance(0), Some(-60), "below zero: the cash is gone");
    // A resend (its answer was lost): answered again, not debited twice.
    let e = h.message(&mut b, ATM, BankMsg::Reconcile { id: 4, account: 0, amount: 160 });
    assert!(e.started().is_empty(), "nothing new to process");
    let again = h.timer(&mut b, Processed(1));
    assert!(again.applied().is_empty() && money(&again).is_empty(), "settled once");
    assert_eq!(again.metric("reconcile_repeats"), 1.0);
    assert_eq!(answers(&again, ATM), [BankMsg::Reconciled { id: 4 }]);
    assert_eq!(b.balance(0), Some(-60));
    // An overdrawn account is declined online.
    assert_eq!(authorize(&mut h, &mut b, 1, 0, 20), [BankMsg::Authorized { call: 1, approved: false }]);
}

#[test]
fn a_probe_is_answered_at_once_to_whoever_sent_it() {
    let (mut h, mut b) = bank("");
    let e = h.message(&mut b, OTHER_ATM, BankMsg::Probe { call: 3 });
    assert_eq!(answers(&e, OTHER_ATM), [BankMsg::ProbeReply { call: 3 }]);
    assert!(e.timers::<Processed>().is_empty());
}

#[test]
fn a_crash_loses_requests_in_progress_but_not_the_books() {
    let (mut h, mut b) = bank("");
    authorize(&mut h, &mut b, 1, 2, 80);
    h.message(&mut b, ATM, BankMsg::Authorize { call: 2, account: 2, amount: 20 });
    h.message(&mut b, ATM, BankMsg::Reconcile { id: 9, account: 2, amount: 20 });
    b.crash();
    let mut held = Vec::new();
    b.held(&mut held);
    assert!(held.is_empty(), "the reconciliation in progress died with the process");
    let back = h.restart(&mut b);
    assert!(back.is_empty(), "nothing is opened again: {back:?}");
    assert_eq!(b.balance(2), Some(20), "the approved debit is durable");
    assert!(h.timer(&mut b, Processed(1)).is_empty(), "a timer of the dead process answers nothing");
}

// ----- The ATM -----

fn atm_spec(extra: &str) -> AtmSpec {
    let base = concat!(
        "bank = \"bank\"\narrival = { process = \"constant\", rate_per_s = 1 }\n",
        "amount = 100\ntimeout_ms = 2000\nprobe_ms = 1000"
    );
    table(base, extra).try_into().expect("a valid atm table")
}

fn atm(extra: &str) -> (Harness, Atm) {
    let mut a = Atm::new(&atm_spec(extra), BANK, 1);
    let mut h = Harness::new(ATM);
    let e = h.start(&mut a);
    assert_eq!(e.timers::<AtmTimer>(), [(1000 * MS, AtmTimer::Arrival)], "the first customer is due");
    (h, a)
}

/// A customer arrives now; returns what the ATM did.
fn customer(h: &mut Harness, a: &mut Atm) -> Emitted {
    h.timer(a, AtmTimer::Arrival)
}

/// The authorisations sent: (call, account, amount).
fn authorizations(e: &Emitted) -> Vec<(u64, u32, u32)> {
    answers(e, BANK)
        .into_iter()
        .filter_map(|m| match m {
            BankMsg::Authorize { call, account, amount } => Some((call, account, amount)),
            _ => None,
        })
        .collect()
}

/// The reconciliations sent: ids.
fn reconciles(e: &Emitted) -> Vec<MsgId> {
    answers(e, BANK)
        .into_iter()
        .filter_map(|m| match m {
            BankMsg::Reconcile { id, .. } => Some(id),
            _ => None,
        })
        .collect()
}

/// Makes the ATM lose the bank: a customer's authorisation times out.
/// Returns what the timeout emitted.
fn lose_the_bank(h: &mut Harness, a: &mut Atm) -> Emitted {
    let e = customer(h, a);
    assert_eq!(authorizations(&e).len(), 1, "online, the ATM asks the bank");
    h.now += 2000 * MS;
    let out = h.timer(a, AtmTimer::Timeout);
    assert!(!a.online(), "a timeout takes the ATM offline");
    out
}

#[test]
fn online_a_customer_waits_for_the_bank_and_nothing_is_produced() {
    let (mut h, mut a) = atm("");
    let e = customer(&mut h, &mut a);
    assert_eq!(authorizations(&e), [(1, 0, 100)]);
    assert_eq!(e.timers::<AtmTimer>(), [(2000 * MS, AtmTimer::Timeout), (1000 * MS, AtmTimer::Arrival)]);
    assert!(e.facts().iter().all(|f| !matches!(f, crate::engine::Fact::Produced { .. })), "a request is no write");
    let e = h.message(&mut a, BANK, BankMsg::Authorized { call: 1, approved: true });
    assert_eq!(money(&e), [Dispensed { account: 0, amount: 100, offline: false }]);
    assert_eq!(a.queued(), 0);
    customer(&mut h, &mut a);
    let e = h.message(&mut a, BANK, BankMsg::Authorized { call: 2, approved: false });
    assert_eq!(money(&e), [Declined { account: 0, amount: 100, offline: false }], "insufficient funds");
    // The same answer again (or one the ATM gave up on) is late.
    let e = h.message(&mut a, BANK, BankMsg::Authorized { call: 1, approved: true });
    assert_eq!(e.metric("late_answers"), 1.0);
    assert!(money(&e).is_empty(), "a late answer pays nothing out");
}

#[test]
fn amounts_are_whole_notes() {
    let (mut h, mut a) = atm("amount = { dist = \"uniform\", min = 1, max = 250 }");
    for _ in 0..200 {
        for (_, _, amount) in authorizations(&customer(&mut h, &mut a)) {
            assert!(amount % NOTE_DOLLARS == 0 && (20..=240).contains(&amount), "{amount}");
        }
    }
}

#[test]
fn consistency_declines_while_offline_and_probes_until_the_bank_answers() {
    let (mut h, mut a) = atm("policy = \"consistency\"");
    let e = lose_the_bank(&mut h, &mut a);
    assert_eq!(e.metric("declined_offline"), 1.0, "the customer who waited is declined");
    assert_eq!(money(&e), [Declined { account: 0, amount: 100, offline: true }]);
    assert_eq!(e.metric("offline_periods"), 1.0);
    assert_eq!(e.timers::<AtmTimer>(), [(1000 * MS, AtmTimer::Probe)]);
    assert!(h.next_id() == 0, "no withdrawal, nothing produced");
    // Offline, a customer is declined at once, without asking the bank.
    let e = customer(&mut h, &mut a);
    assert!(authorizations(&e).is_empty());
    assert_eq!(e.metric("declined_offline"), 1.0);
    // The probe goes out every probe_ms until an answer comes.
    let p = h.timer(&mut a, AtmTimer::Probe);
    assert!(matches!(answers(&p, BANK)[..], [BankMsg::Probe { .. }]));
    assert_eq!(p.timers::<AtmTimer>(), [(1000 * MS, AtmTimer::Probe)]);
    let back = h.message(&mut a, BANK, BankMsg::ProbeReply { call: 2 });
    assert!(a.online());
    assert_eq!(back.cancelled::<AtmTimer>(), [AtmTimer::Probe]);
    assert_eq!(authorizations(&customer(&mut h, &mut a)).len(), 1, "online again: the bank is asked");
}

#[test]
fn availability_dispenses_offline_within_the_limit_per_account() {
    // $100 a customer, limit $200 on the ATM's one account: two served, the third declined.
    let (mut h, mut a) = atm("policy = \"availability\"");
    let e = lose_the_bank(&mut h, &mut a);
    assert_eq!(e.metric("declined_offline"), 0.0);
    assert_eq!(money(&e), [Dispensed { account: 0, amount: 100, offline: true }]);
    assert_eq!(h.next_id(), 1, "an offline withdrawal is produced");
    assert_eq!(customer(&mut h, &mut a).metric("declined_offline"), 0.0);
    let e = customer(&mut h, &mut a);
    assert_eq!(e.metric("declined_offline"), 1.0, "$300 would pass the limit");
    assert_eq!(money(&e), [Declined { account: 0, amount: 100, offline: true }]);
    assert_eq!((h.next_id(), a.queued()), (2, 2));
    let mut held = Vec::new();
    a.held(&mut held);
    assert_eq!(held, [0, 1], "the queue is held until reconciled");
}

#[test]
fn availability_without_limit_dispenses_everything_offline() {
    let (mut h, mut a) = atm("policy = \"availability-no-limit\"");
    lose_the_bank(&mut h, &mut a);
    for _ in 0..10 {
        assert_eq!(customer(&mut h, &mut a).metric("declined_offline"), 0.0);
    }
    assert_eq!(a.queued(), 11);
}

#[test]
fn after_the_heal_the_queue_is_reconciled_and_the_time_measured() {
    let (mut h, mut a) = atm("policy = \"availability-no-limit\"");
    lose_the_bank(&mut h, &mut a);
    customer(&mut h, &mut a);
    h.now += 10_000 * MS;
    let back = h.message(&mut a, BANK, BankMsg::ProbeReply { call: 2 });
    assert_eq!(reconciles(&back), [0, 1], "every queued withdrawal is sent");
    assert!(back.resent().is_empty(), "sent for the first time");
    assert_eq!(back.timers::<AtmTimer>(), [(2000 * MS, AtmTimer::Resend)]);
    h.now += 30 * MS;
    assert!(h.message(&mut a, BANK, BankMsg::Reconciled { id: 1 }).is_empty());
    h.now += 10 * MS;
    let done = h.message(&mut a, BANK, BankMsg::Reconciled { id: 0 });
    assert_eq!(a.queued(), 0);
    assert_eq!(done.cancelled::<AtmTimer>(), [AtmTimer::Resend]);
    let max = done.0.iter().find_map(|e| match e {
        crate::engine::Effect::Metric(crate::engine::Metric::Max("reconcile_ms", v)) => Some(*v),
        _ => None,
    });
    assert_eq!(max, Some(40.0), "from regaining the bank to the last reconciliation");
}

#[test]
fn unanswered_reconciliations_take_the_atm_offline_and_are_resent_later() {
    let (mut h, mut a) = atm("policy = \"availability\"");
    lose_the_bank(&mut h, &mut a);
    h.message(&mut a, BANK, BankMsg::ProbeReply { call: 2 });
    let e = h.timer(&mut a, AtmTimer::Resend);
    assert!(!a.online(), "no answer in timeout_ms: the bank is out of reach again");
    assert_eq!(e.metric("offline_periods"), 1.0);
    let back = h.message(&mut a, BANK, BankMsg::ProbeReply { call: 3 });
    assert_eq!(reconciles(&back), [0]);
    assert_eq!(back.resent(), [(0, DupCause::ProducerRetry)], "a resend is a retry for the ledger");
}

#[test]
fn a_crash_keeps_the_queue_and_the_offline_totals() {
    let (mut h, mut a) = atm("policy = \"availability\"");
    lose_the_bank(&mut h, &mut a);
    customer(&mut h, &mut a);
    let e = customer(&mut h, &mut a);
    assert!(authorizations(&e).is_empty());
    a.crash();
    let back = h.restart(&mut a);
    assert!(a.online(), "it comes back assuming the bank reachable");
    assert_eq!(reconciles(&back), [0, 1], "the durable queue is sent at once");
    // The offline total survived: $200 already out offline on account 0.
    let e = lose_the_bank(&mut h, &mut a);
    assert_eq!(e.metric("declined_offline"), 1.0, "the limit still counts what was dispensed before the crash");
}

#[test]
fn messages_zero_switches_the_atm_off() {
    let mut a = Atm::new(&atm_spec("messages = 0"), BANK, 1);
    let mut h = Harness::new(ATM);
    let e = h.start(&mut a);
    assert!(e.timers::<AtmTimer>().is_empty(), "no customer comes");
    assert!(e.facts().contains(&crate::engine::Fact::ProducerDone));
}
