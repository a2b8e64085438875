//! A bank and its ATMs: consistency or availability during a network
//! partition, with money at risk (CAP, in dollars).
//!
//! - The `bank` kind (`[banks.NAME]`) is the source of truth for
//!   `accounts` accounts, whose opening balances it draws from `balance`
//!   (whole dollars) and reports to the observer in `start`. It answers an
//!   [`BankMsg::Authorize`] after its `processing` time: approved, and the
//!   account debited at once, when the balance covers the amount; declined
//!   (insufficient funds) otherwise. It takes a [`BankMsg::Reconcile`] (a
//!   withdrawal an ATM made offline) after the same processing time and
//!   **always** debits it, even below zero (the cash is gone), then
//!   answers [`BankMsg::Reconciled`]; a reconciliation it has already
//!   applied (a resend) is answered again but not debited twice. It
//!   answers a [`BankMsg::Probe`] at once. Balances and the set of applied
//!   reconciliations are durable (a crash keeps them); requests being
//!   processed at a crash die unanswered.
//! - The `atm` kind (`[atms.NAME]`, module [`atm`]) is a source of
//!   customers, each withdrawing an amount from an account, authorised
//!   through its bank, and with a `policy` for when the bank cannot be
//!   reached.
//!
//! Ledger and observer: a withdrawal the ATM makes **offline** is a
//! produced message (fire-and-forget: the cash is out), keyed by its
//! account; the bank applies it in its own effect domain (`books` by
//! default) when it reconciles it. The ledger therefore judges
//! reconciliation: an offline withdrawal never reconciled is lost, one
//! debited twice is duplicated. Online withdrawals and declines produce
//! nothing (a customer's request that is refused is not a write). Money is
//! the observer's: the bank reports `opened` and `settled`, the ATM
//! `dispensed` and `declined`, and the observer derives availability,
//! overdrafts and exposure from those facts, never from a component's
//! own count.
//!
//! Left out: PINs, cards and the card network (the ATM talks to the bank
//! directly), reversals (an authorisation the bank approved but whose
//! answer reached the ATM too late stays debited: the bank's books then
//! show a withdrawal the customer never got, money the bank owes back;
//! the observer's truth counts only cash dispensed), daily limits other
//! than the offline one, holds and pending transactions, interest and
//! deposits, and the bank's own capacity (every request is served in
//! parallel after its own processing time).

pub mod atm;
mod kind;
pub mod money;
#[cfg(test)]
mod tests;

pub use atm::{Atm, AtmTimer, Policy};
pub use kind::{AtmKind, AtmSpec, BankKind, BankSpec};

use crate::dist::Sampler;
use crate::engine::{Component, Ctx, Timer};
use crate::message::{Msg, MsgId, NodeId};
use crate::protocol::BankMsg;
use money::DollarSampler;
use std::collections::{BTreeMap, BTreeSet};

/// The metrics a bank reports.
pub const BANK_METRICS: [&str; 4] = ["authorizations", "declined_funds", "reconciliations", "reconcile_repeats"];

/// A bank's timer: request `n` (the bank's own serial) has been processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Processed(pub u64);

impl Timer for Processed {
    fn to_word(self) -> u64 {
        self.0
    }
    fn from_word(word: u64) -> Option<Self> {
        Some(Processed(word))
    }
}

/// A request being processed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Job {
    Authorize { from: NodeId, call: u64, account: u32, amount: u32 },
    Reconcile { from: NodeId, id: MsgId, account: u32, amount: u32 },
}

/// A running bank (see the module doc).
#[derive(Debug)]
pub struct Bank {
    accounts: u32,
    opening: DollarSampler,
    processing: Sampler,
    // Durable: the books.
    balances: Vec<i64>,
    reconciled: BTreeSet<MsgId>,
    // Volatile: requests being processed, by serial.
    busy: BTreeMap<u64, Job>,
    next: u64,
}

impl Bank {
    /// A bank as `spec` describes it.
    pub fn new(spec: &BankSpec) -> Self {
        Bank {
            accounts: spec.accounts,
            opening: spec.balance.sampler(),
            processing: spec.processing.sampler(),
            balances: Vec::new(),
            reconciled: BTreeSet::new(),
            busy: BTreeMap::new(),
            next: 0,
        }
    }

    /// How many accounts it holds.
    pub fn accounts(&self) -> u32 {
        self.accounts
    }

    /// The balance of `account` on the books (None before the bank opened,
    /// or for an account it does not hold).
    pub fn balance(&self, account: u32) -> Option<i64> {
        self.balances.get(account as usize).copied()
    }

    /// Opens every account with a balance drawn from `balance` (once).
    fn open(&mut self, ctx: &mut Ctx<Processed>) {
        if !self.balances.is_empty() {
            return;
        }
        for account in 0..self.accounts {
            let balance = libm::round(self.opening.draw(ctx.rng())) as i64;
            self.balances.push(balance);
            ctx.opened(account, balance);
        }
    }

    fn begin(&mut self, ctx: &mut Ctx<Processed>, job: Job) {
        let n = self.next;
        self.next += 1;
        if let Job::Reconcile { id, .. } = job {
            if !self.reconciled.contains(&id) {
                ctx.start_processing(id);
            }
        }
        let slow = ctx.slow_factor();
        let delay = self.processing.sample_scaled_ns(ctx.rng(), slow);
        self.busy.insert(n, job);
        ctx.set_timer(delay, Processed(n));
    }

    fn authorize(&mut self, ctx: &mut Ctx<Processed>, from: NodeId, call: u64, account: u32, amount: u32) {
        ctx.metric_add("authorizations", 1.0);
        let amount = i64::from(amount);
        let approved = match self.balances.get_mut(account as usize) {
            Some(b) if *b >= amount => {
                *b -= amount;
                true
            }
            _ => false,
        };
        if !approved {
            ctx.metric_add("declined_funds", 1.0);
        }
        ctx.send(from, BankMsg::Authorized { call, approved });
    }

    fn reconcile(&mut self, ctx: &mut Ctx<Processed>, from: NodeId, id: MsgId, account: u32, amount: u32) {
        if self.reconciled.insert(id) {
            if let Some(b) = self.balances.get_mut(account as usize) {
                *b -= i64::from(amount);
            }
            ctx.apply_effect(id);
            ctx.settled(account, i64::from(amount));
            ctx.metric_add("reconciliations", 1.0);
        } else {
            ctx.metric_add("reconcile_repeats", 1.0);
        }
        ctx.send(from, BankMsg::Reconciled { id });
    }
}

impl Component for Bank {
    type Timer = Processed;

    fn start(&mut self, ctx: &mut Ctx<Processed>) {
        for name in BANK_METRICS {
            ctx.metric_add(name, 0.0); // listed in the summary even when 0
        }
        self.open(ctx);
    }

    fn restart(&mut self, _ctx: &mut Ctx<Processed>) {
        // The books survived the crash: nothing to open again.
    }

    fn on_message(&mut self, ctx: &mut Ctx<Processed>, from: NodeId, msg: Msg) {
        let Msg::Bank(m) = msg else { return };
        match m {
            BankMsg::Authorize { call, account, amount } => {
                self.begin(ctx, Job::Authorize { from, call, account, amount })
            }
            BankMsg::Reconcile { id, account, amount } => self.begin(ctx, Job::Reconcile { from, id, account, amount }),
            BankMsg::Probe { call } => ctx.send(from, BankMsg::ProbeReply { call }),
            BankMsg::Authorized { .. } | BankMsg::Reconciled { .. } | BankMsg::ProbeReply { .. } => {}
        }
    }

    fn on_timer(&mut self, ctx: &mut Ctx<Processed>, timer: Processed) {
        match self.busy.remove(&timer.0) {
            Some(Job::Authorize { from, call, account, amount }) => self.authorize(ctx, from, call, account, amount),
            Some(Job::Reconcile { from, id, account, amount }) => self.reconcile(ctx, from, id, account, amount),
            None => {}
        }
    }

    fn crash(&mut self) {
        // Requests being processed die unanswered; the books are durable.
        self.busy.clear();
    }

    fn held(&self, out: &mut Vec<MsgId>) {
        let reconciling = self.busy.values().filter_map(|j| match *j {
            Job::Reconcile { id, .. } if !self.reconciled.contains(&id) => Some(id),
            _ => None,
        });
        out.extend(reconciling);
    }

    fn memory_bytes(&self) -> usize {
        const ENTRY_BYTES: usize = 48;
        (self.busy.len() + self.reconciled.len()) * ENTRY_BYTES + self.balances.capacity() * 8
    }
}
