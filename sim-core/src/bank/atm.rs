//! The ATM: customers withdrawing cash, authorised by the bank when it can
//! be reached, and a policy for when it cannot.
//!
//! Customers arrive as a producer's messages do (`arrival`, `messages`;
//! `messages = 0` switches the ATM off). Each one withdraws an amount drawn
//! from `amount` and rounded to $20 notes (at least one note) from an
//! account drawn uniformly from the first `accounts` of the bank's.
//!
//! **Online**, the ATM sends [`BankMsg::Authorize`] and waits up to
//! `timeout_ms` for the answer: approved, it dispenses (an online
//! withdrawal); declined, the customer leaves without cash. An answer that
//! comes after its customer's timeout is ignored (`late_answers`).
//!
//! **Offline**: the first timeout of any request to the bank tells the ATM
//! the link is down. From then on it does not try the bank for customers;
//! it sends a [`BankMsg::Probe`] every `probe_ms` and is online again as
//! soon as any message from the bank arrives. While offline, and for the
//! customer whose request timed out, it follows `policy`:
//!
//! - `consistency`: decline (the customer is refused: `declined_offline`);
//! - `availability`: dispense if the account's offline withdrawals at
//!   **this** ATM, this one included, stay within `offline_limit`
//!   (the stand-in limit of real issuers, per account and per day: the run
//!   is the day, so the total is never reset), else decline;
//! - `availability-no-limit`: dispense.
//!
//! Each offline withdrawal is queued for reconciliation. Once the bank is
//! reachable again the ATM sends every queued one ([`BankMsg::Reconcile`])
//! and resends those not answered within `timeout_ms` (a resend is
//! reported to the ledger as a retry; the bank applies each once); a
//! reconciliation that times out sends the ATM offline again. The queue
//! and the offline totals are durable: a crash keeps them, and a restarted
//! ATM sends the queue at once. Customers waiting on an authorisation at a
//! crash walk away (neither served nor declined), and the ATM comes back
//! assuming the bank reachable.
//!
//! Figures: `offline_periods` (times the ATM went offline),
//! `declined_offline`, `reconcile_ms` (the longest time from regaining the
//! bank with withdrawals queued to the last of them reconciled; a further
//! outage in between counts in it) and `late_answers`.
//!
//! Left out: one customer at a time (the ATM stands for a row of machines
//! sharing a link: customers are served concurrently), the ATM's cash
//! running out, cards, PINs and the card network, and reversals of an
//! authorisation the ATM gave up on.

use super::money::DollarSampler;
use super::AtmSpec;
use crate::engine::{Component, Ctx, Timer};
use crate::message::{Msg, MsgId, NodeId};
use crate::producer::Workload;
use crate::protocol::BankMsg;
use crate::time::{ms_to_ns, Time};
use crate::timers::Deadlines;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The metrics an ATM reports.
pub const ATM_METRICS: [&str; 4] = ["declined_offline", "offline_periods", "reconcile_ms", "late_answers"];

/// The size of a note: every withdrawal is a multiple of it.
pub const NOTE_DOLLARS: u32 = 20;

/// What an ATM does when the bank cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Policy {
    /// Decline every withdrawal (C in CAP).
    Consistency,
    /// Dispense up to `offline_limit` per account (A, with a bound).
    Availability,
    /// Dispense whatever is asked (A, unbounded).
    AvailabilityNoLimit,
}

/// An ATM's timers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AtmTimer {
    /// The next customer arrives.
    Arrival,
    /// The earliest authorisation deadline has come.
    Timeout,
    /// Time to probe the bank (while offline).
    Probe,
    /// The reconciliations sent have had `timeout_ms` to be answered.
    Resend,
}

impl Timer for AtmTimer {
    fn to_word(self) -> u64 {
        self as u64
    }
    fn from_word(word: u64) -> Option<Self> {
        use AtmTimer::*;
        [Arrival, Timeout, Probe, Resend].get(word as usize).copied()
    }
}

/// A withdrawal: which account, how many dollars.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Withdrawal {
    account: u32,
    amount: u32,
}

/// A customer waiting on an authorisation.
#[derive(Debug, Clone, Copy)]
struct Waiting {
    w: Withdrawal,
    deadline: Time,
}

/// An offline withdrawal waiting to be reconciled.
#[derive(Debug, Clone, Copy)]
struct Queued {
    w: Withdrawal,
    /// Sent to the bank at least once.
    sent: bool,
}

/// A running ATM (see the module doc).
pub struct Atm {
    bank: NodeId,
    policy: Policy,
    limit: i64,
    timeout_ns: u64,
    probe_ns: u64,
    accounts: u32,
    amount: DollarSampler,
    // Durable.
    workload: Workload<AtmTimer>,
    queue: BTreeMap<MsgId, Queued>,
    offline_total: BTreeMap<u32, i64>,
    next_call: u64,
    // Volatile.
    online: bool,
    waiting: BTreeMap<u64, Waiting>,
    timeouts: Deadlines,
    probing: bool,
    resend_armed: bool,
    regained_at: Option<Time>,
}

impl Atm {
    /// An ATM as `spec` says, using `bank` which holds `bank_accounts`.
    pub fn new(spec: &AtmSpec, bank: NodeId, bank_accounts: u32) -> Self {
        Atm {
            bank,
            policy: spec.policy,
            limit: spec.offline_limit as i64,
            timeout_ns: ms_to_ns(spec.timeout_ms.0).max(1),
            probe_ns: ms_to_ns(spec.probe_ms.0).max(1),
            accounts: spec.accounts.unwrap_or(bank_accounts).max(1),
            amount: spec.amount.sampler(),
            workload: Workload::new(&spec.arrival, &Default::default(), spec.messages, AtmTimer::Arrival),
            queue: BTreeMap::new(),
            offline_total: BTreeMap::new(),
            next_call: 1,
            online: true,
            waiting: BTreeMap::new(),
            timeouts: Deadlines::default(),
            probing: false,
            resend_armed: false,
            regained_at: None,
        }
    }

    /// True while the ATM believes the bank reachable.
    pub fn online(&self) -> bool {
        self.online
    }

    /// Offline withdrawals not yet reconciled.
    pub fn queued(&self) -> usize {
        self.queue.len()
    }

    fn call(&mut self) -> u64 {
        self.next_call += 1;
        self.next_call - 1
    }

    /// A customer arrives: draws the account and the amount.
    fn customer(&mut self, ctx: &mut Ctx<AtmTimer>) {
        let account = (crate::rng::unit(ctx.rng()) * f64::from(self.accounts)) as u32;
        // A long-tailed draw is clamped where the parameters are (notes in u32).
        let dollars = self.amount.draw(ctx.rng()).min(super::money::MAX_DOLLARS);
        let notes = libm::round(dollars / f64::from(NOTE_DOLLARS)).max(1.0) as u32;
        let w = Withdrawal { account: account.min(self.accounts - 1), amount: notes * NOTE_DOLLARS };
        if !self.online {
            self.offline(ctx, w);
            return;
        }
        let call = self.call();
        let deadline = ctx.now().saturating_add(self.timeout_ns);
        self.waiting.insert(call, Waiting { w, deadline });
        self.timeouts.add(ctx, deadline, call, AtmTimer::Timeout);
        ctx.send(self.bank, BankMsg::Authorize { call, account: w.account, amount: w.amount });
    }

    /// The bank cannot be reached for `w`: the policy decides.
    fn offline(&mut self, ctx: &mut Ctx<AtmTimer>, w: Withdrawal) {
        let amount = i64::from(w.amount);
        let total = self.offline_total.get(&w.account).copied().unwrap_or(0);
        let dispense = match self.policy {
            Policy::Consistency => false,
            Policy::Availability => total + amount <= self.limit,
            Policy::AvailabilityNoLimit => true,
        };
        if !dispense {
            ctx.declined(w.account, amount, true);
            ctx.metric_add("declined_offline", 1.0);
            return;
        }
        let id = ctx.produce(u64::from(w.account), true);
        ctx.dispensed(w.account, amount, true);
        self.offline_total.insert(w.account, total + amount);
        self.queue.insert(id, Queued { w, sent: false });
    }

    /// The bank answered authorisation `call`.
    fn answered(&mut self, ctx: &mut Ctx<AtmTimer>, call: u64, approved: bool) {
        let Some(c) = self.waiting.remove(&call) else {
            ctx.metric_add("late_answers", 1.0);
            return;
        };
        if approved {
            ctx.dispensed(c.w.account, i64::from(c.w.amount), false);
        } else {
            ctx.declined(c.w.account, i64::from(c.w.amount), false);
        }
    }

    fn on_timeouts(&mut self, ctx: &mut Ctx<AtmTimer>) {
        let waiting = &self.waiting;
        let live = |call, at| waiting.get(&call).is_some_and(|c| c.deadline == at);
        for call in self.timeouts.expire(ctx, AtmTimer::Timeout, live) {
            let Some(c) = self.waiting.remove(&call) else { continue };
            self.go_offline(ctx);
            self.offline(ctx, c.w);
        }
    }

    fn go_offline(&mut self, ctx: &mut Ctx<AtmTimer>) {
        if !self.online {
            return;
        }
        self.online = false;
        ctx.metric_add("offline_periods", 1.0);
        ctx.mark("atm offline");
        self.arm_probe(ctx);
    }

    /// Arms the next probe. It is work, not a background timer: a drain
    /// (which heals the faults) waits for the ATM to find the bank again
    /// and reconcile.
    fn arm_probe(&mut self, ctx: &mut Ctx<AtmTimer>) {
        self.probing = true;
        ctx.set_timer(self.probe_ns, AtmTimer::Probe);
    }

    fn on_probe(&mut self, ctx: &mut Ctx<AtmTimer>) {
        self.probing = false;
        if self.online {
            return;
        }
        let call = self.call();
        ctx.send(self.bank, BankMsg::Probe { call });
        self.arm_probe(ctx);
    }

    /// A message from the bank arrived: the link works.
    fn go_online(&mut self, ctx: &mut Ctx<AtmTimer>) {
        if self.online {
            return;
        }
        self.online = true;
        ctx.mark("atm online");
        if std::mem::take(&mut self.probing) {
            ctx.cancel_timer(AtmTimer::Probe);
        }
        // Reconciliations sent before the outage are sent again now.
        if std::mem::take(&mut self.resend_armed) {
            ctx.cancel_timer(AtmTimer::Resend);
        }
        if !self.queue.is_empty() && self.regained_at.is_none() {
            self.regained_at = Some(ctx.now());
        }
        self.flush(ctx);
    }

    /// Sends every queued offline withdrawal (online only), and arms the
    /// resend check.
    fn flush(&mut self, ctx: &mut Ctx<AtmTimer>) {
        if !self.online || self.queue.is_empty() || self.resend_armed {
            return;
        }
        for (&id, q) in self.queue.iter_mut() {
            if std::mem::replace(&mut q.sent, true) {
                ctx.resent(id, crate::ledger::DupCause::ProducerRetry);
            }
            ctx.send(self.bank, BankMsg::Reconcile { id, account: q.w.account, amount: q.w.amount });
        }
        ctx.set_timer(self.timeout_ns, AtmTimer::Resend);
        self.resend_armed = true;
    }

    /// The reconciliations sent had their time: any left unanswered mean
    /// the bank is out of reach again.
    fn on_resend(&mut self, ctx: &mut Ctx<AtmTimer>) {
        self.resend_armed = false;
        if !self.queue.is_empty() {
            self.go_offline(ctx);
        }
    }

    fn reconciled(&mut self, ctx: &mut Ctx<AtmTimer>, id: MsgId) {
        if self.queue.remove(&id).is_none() || !self.queue.is_empty() {
            return;
        }
        if let Some(at) = self.regained_at.take() {
            ctx.metric_max("reconcile_ms", (ctx.now() - at) as f64 / 1e6);
        }
        if std::mem::take(&mut self.resend_armed) {
            ctx.cancel_timer(AtmTimer::Resend);
        }
    }
}

impl Component for Atm {
    type Timer = AtmTimer;

    fn start(&mut self, ctx: &mut Ctx<AtmTimer>) {
        for name in ATM_METRICS {
            ctx.metric_max(name, 0.0); // listed in the summary even when 0
        }
        self.workload.start(ctx);
        if !self.queue.is_empty() {
            self.regained_at = Some(ctx.now());
        }
        self.flush(ctx);
    }

    fn on_message(&mut self, ctx: &mut Ctx<AtmTimer>, _from: NodeId, msg: Msg) {
        let Msg::Bank(m) = msg else { return };
        self.go_online(ctx);
        match m {
            BankMsg::Authorized { call, approved } => self.answered(ctx, call, approved),
            BankMsg::Reconciled { id } => self.reconciled(ctx, id),
            BankMsg::ProbeReply { .. } => {}
            BankMsg::Authorize { .. } | BankMsg::Reconcile { .. } | BankMsg::Probe { .. } => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<AtmTimer>, timer: AtmTimer) {
        match timer {
            AtmTimer::Arrival => {
                if self.workload.arrive(ctx).is_some() {
                    self.customer(ctx);
                    self.workload.made(ctx);
                }
            }
            AtmTimer::Timeout => self.on_timeouts(ctx),
            AtmTimer::Probe => self.on_probe(ctx),
            AtmTimer::Resend => self.on_resend(ctx),
        }
    }

    fn drain(&mut self, ctx: &mut Ctx<AtmTimer>) {
        self.workload.drain(ctx);
    }

    fn crash(&mut self) {
        // The customers waiting walk away; the queue and the offline totals
        // are on disk. The ATM comes back assuming the bank reachable.
        self.waiting.clear();
        self.timeouts.clear();
        self.workload.crash();
        self.online = true;
        self.probing = false;
        self.resend_armed = false;
        self.regained_at = None;
    }

    fn held(&self, out: &mut Vec<MsgId>) {
        out.extend(self.queue.keys());
    }

    fn is_producer(&self) -> bool {
        true
    }

    fn memory_bytes(&self) -> usize {
        const ENTRY_BYTES: usize = 64;
        (self.queue.len() + self.waiting.len() + self.offline_total.len()) * ENTRY_BYTES
    }
}
