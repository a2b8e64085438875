//! Money: accounts with a true balance, and the machines that pay out of
//! them. An ATM that cannot reach its bank may pay out anyway (the
//! availability choice of CAP); the bank learns of it only when the ATM
//! reconciles, after the partition heals. Until then the money is at risk:
//! if the account cannot cover it, the bank has lent it.
//!
//! - An account's **true balance** is its opening balance minus everything
//!   paid out of it, whenever the bank hears of it.
//! - **Exposure** is the money paid out offline and not yet settled in the
//!   bank's books: what the bank stands to lose before it even knows.
//!   `max_exposure` is its highest value.
//! - **Shortfall** is, at a moment, how far below zero the true balances
//!   are, summed over accounts; at the end of a run it is the
//!   **overdraft**: accounts below zero and by how much.
//!
//! Left out: deposits, interest, fees and currencies; amounts are whole
//! dollars.

use crate::metrics::Gauges;
use crate::time::{ns_to_s, Time};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

/// Withdrawal counts (the summary's `withdrawals`).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Withdrawals {
    /// Withdrawals asked for.
    pub requested: u64,
    /// Paid out.
    pub approved: u64,
    /// Refused.
    pub declined: u64,
    /// Refused because the bank could not be reached.
    pub declined_offline: u64,
    /// Paid out without the bank's authorisation.
    pub approved_offline: u64,
    /// Dollars paid out.
    pub amount_dispensed: i64,
    /// Dollars paid out offline.
    pub amount_offline: i64,
    /// Accounts with at least one offline payout.
    pub accounts_offline: u64,
}

/// The overdraft at the end (the summary's `overdraft`).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Overdraft {
    /// Accounts whose true balance is below zero.
    pub count: u64,
    /// Dollars they are below zero, summed.
    pub amount: i64,
}

/// The money figures of a run (top-level keys of a variant's summary).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct MoneySummary {
    /// approved / requested (1 with no request).
    pub availability: f64,
    /// Counts and amounts.
    pub withdrawals: Withdrawals,
    /// Accounts below zero at the end.
    pub overdraft: Overdraft,
    /// The most money paid out offline and not yet settled, at any moment.
    pub max_exposure: i64,
    /// Offline money still not settled at the end: the bank's books
    /// disagree with the truth by this much.
    pub unsettled: i64,
    /// When the last offline payout was settled (simulated s), if any was.
    pub reconciled_at_s: Option<f64>,
}

/// The observer's part for money.
#[derive(Default)]
pub struct Accounts {
    balances: BTreeMap<u32, i64>,
    offline_accounts: BTreeSet<u32>,
    w: Withdrawals,
    exposure: i64,
    max_exposure: i64,
    shortfall: i64,
    last_settled: Option<Time>,
}

impl Accounts {
    /// Account `account` opens with `balance`.
    pub fn opened(&mut self, account: u32, balance: i64) {
        self.move_balance(account, |_| balance);
    }

    /// Sets an account's balance through `f`, keeping the shortfall.
    fn move_balance(&mut self, account: u32, f: impl FnOnce(i64) -> i64) {
        let b = self.balances.entry(account).or_insert(0);
        let before = (-*b).max(0);
        *b = f(*b);
        self.shortfall += (-*b).max(0) - before;
    }

    /// `amount` left a machine from `account`.
    pub fn dispensed(&mut self, account: u32, amount: i64, offline: bool) {
        self.move_balance(account, |b| b - amount);
        self.w.requested += 1;
        self.w.approved += 1;
        self.w.amount_dispensed += amount;
        if offline {
            self.w.approved_offline += 1;
            self.w.amount_offline += amount;
            self.offline_accounts.insert(account);
            self.exposure += amount;
            self.max_exposure = self.max_exposure.max(self.exposure);
        }
    }

    /// A withdrawal was refused.
    pub fn declined(&mut self, offline: bool) {
        self.w.requested += 1;
        self.w.declined += 1;
        self.w.declined_offline += u64::from(offline);
    }

    /// The bank settled `amount` of offline payouts at `now`.
    pub fn settled(&mut self, now: Time, amount: i64) {
        self.exposure -= amount;
        self.last_settled = Some(now);
    }

    /// `exposure` and `shortfall`.
    pub fn gauges(&self, out: &mut Gauges) {
        out.sum("exposure", self.exposure as f64);
        out.sum("shortfall", self.shortfall as f64);
    }

    /// Estimated bytes held.
    pub fn memory_bytes(&self) -> usize {
        (self.balances.len() + self.offline_accounts.len()) * 24
    }

    /// The figures so far.
    pub fn summary(&self) -> MoneySummary {
        let below: Vec<i64> = self.balances.values().filter(|&&b| b < 0).map(|b| -b).collect();
        MoneySummary {
            availability: if self.w.requested > 0 { self.w.approved as f64 / self.w.requested as f64 } else { 1.0 },
            withdrawals: Withdrawals { accounts_offline: self.offline_accounts.len() as u64, ..self.w.clone() },
            overdraft: Overdraft { count: below.len() as u64, amount: below.iter().sum() },
            max_exposure: self.max_exposure,
            unsettled: self.exposure,
            reconciled_at_s: self.last_settled.map(ns_to_s),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offline_payouts_are_exposure_until_settled_and_overdraft_is_what_the_balance_cannot_cover() {
        let mut a = Accounts::default();
        a.opened(1, 100);
        a.opened(2, 500);
        a.dispensed(1, 60, false);
        a.dispensed(1, 80, true);
        a.dispensed(2, 200, true);
        a.declined(true);
        let mut g = Gauges::default();
        a.gauges(&mut g);
        assert_eq!(g.into_vec(), vec![("exposure".to_string(), 280.0), ("shortfall".to_string(), 40.0)]);
        a.settled(5_000_000_000, 80);
        a.settled(6_000_000_000, 200);
        let s = a.summary();
        assert_eq!((s.max_exposure, s.unsettled, s.reconciled_at_s), (280, 0, Some(6.0)));
        assert_eq!(s.overdraft, Overdraft { count: 1, amount: 40 });
        assert_eq!(
            (s.withdrawals.requested, s.withdrawals.approved_offline, s.withdrawals.accounts_offline),
            (4, 2, 2)
        );
        assert_eq!(s.availability, 0.75);
    }
}
