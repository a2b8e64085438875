//! The bank protocol, spoken between an ATM and its bank (see
//! [`crate::bank`]): an authorisation and its answer, the reconciliation
//! of a withdrawal the ATM made offline, and the probe an offline ATM
//! sends to learn that the bank is reachable again.
//!
//! An authorisation names the ATM's number for it (`call`), so the ATM
//! matches an answer to the customer waiting on it. A reconciliation names
//! the withdrawal's ledger id: the withdrawal is a produced message, so the
//! ledger sees it in flight while a `Reconcile` is on the wire, and the
//! bank applies each id once however many times it is resent.
//!
//! Amounts are whole dollars. Left out: the card network between the ATM
//! and the issuer (ISO 8583 messages, an acquirer, a switch), PINs, and
//! reversals (an authorisation the ATM gave up on is not cancelled: see
//! the bank module's doc).

use super::{wire, MsgId, Observed, Protocol};
use crate::digest::Digest;

/// A message of the bank protocol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BankMsg {
    /// ATM to bank: may `account` withdraw `amount` dollars? (the ATM's
    /// request number `call`).
    Authorize {
        /// The ATM's number for this request (unique per ATM).
        call: u64,
        /// The account.
        account: u32,
        /// Dollars.
        amount: u32,
    },
    /// Bank to ATM: the answer to request `call`; when approved, the bank
    /// has debited the account.
    Authorized {
        /// The request answered.
        call: u64,
        /// True: approved and debited; false: declined (insufficient funds).
        approved: bool,
    },
    /// ATM to bank: withdrawal `id`, dispensed offline, of `amount` from
    /// `account`: debit it, whatever the balance (the cash is gone).
    Reconcile {
        /// The withdrawal's ledger id.
        id: MsgId,
        /// The account.
        account: u32,
        /// Dollars.
        amount: u32,
    },
    /// Bank to ATM: withdrawal `id` is on the books (also sent for a
    /// reconciliation it had already applied).
    Reconciled {
        /// The withdrawal.
        id: MsgId,
    },
    /// An offline ATM to the bank: are you there?
    Probe {
        /// The ATM's number for this probe.
        call: u64,
    },
    /// Bank to ATM: the answer to probe `call`.
    ProbeReply {
        /// The probe answered.
        call: u64,
    },
}

impl Protocol for BankMsg {
    fn name(&self) -> &'static str {
        match self {
            BankMsg::Authorize { .. } => "authorize",
            BankMsg::Authorized { .. } => "authorized",
            BankMsg::Reconcile { .. } => "reconcile",
            BankMsg::Reconciled { .. } => "reconciled",
            BankMsg::Probe { .. } => "probe",
            BankMsg::ProbeReply { .. } => "probe-reply",
        }
    }

    fn id(&self) -> Option<MsgId> {
        match *self {
            BankMsg::Reconcile { id, .. } | BankMsg::Reconciled { id } => Some(id),
            _ => None,
        }
    }

    fn fold(&self, digest: &mut Digest) {
        match *self {
            BankMsg::Authorize { call, account, amount } => {
                digest.add(130);
                digest.add(call);
                digest.add(u64::from(account));
                digest.add(u64::from(amount));
            }
            BankMsg::Authorized { call, approved } => {
                digest.add(131);
                digest.add(call);
                digest.add(u64::from(approved));
            }
            BankMsg::Reconcile { id, account, amount } => {
                digest.add(132);
                digest.add(id);
                digest.add(u64::from(account));
                digest.add(u64::from(amount));
            }
            BankMsg::Reconciled { id } => {
                digest.add(133);
                digest.add(id);
            }
            BankMsg::Probe { call } => {
                digest.add(134);
                digest.add(call);
            }
            BankMsg::ProbeReply { call } => {
                digest.add(135);
                digest.add(call);
            }
        }
    }

    fn carried(&self, out: &mut Vec<MsgId>) {
        if let BankMsg::Reconcile { id, .. } = *self {
            out.push(id);
        }
    }

    fn observe(&self, _see: &mut impl FnMut(Observed)) {}

    fn wire_bytes(&self) -> u64 {
        match self {
            BankMsg::Authorize { .. } | BankMsg::Reconcile { .. } => wire::CONTROL + wire::ITEM,
            _ => wire::CONTROL,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_fold_apart_and_only_a_reconcile_carries_its_withdrawal() {
        let msgs = [
            BankMsg::Authorize { call: 1, account: 2, amount: 20 },
            BankMsg::Authorize { call: 1, account: 2, amount: 40 },
            BankMsg::Authorized { call: 1, approved: true },
            BankMsg::Authorized { call: 1, approved: false },
            BankMsg::Reconcile { id: 1, account: 2, amount: 20 },
            BankMsg::Reconciled { id: 1 },
            BankMsg::Probe { call: 1 },
            BankMsg::ProbeReply { call: 1 },
        ];
        let digests: std::collections::BTreeSet<String> = msgs
            .iter()
            .map(|m| {
                let mut d = Digest::default();
                m.fold(&mut d);
                d.hex()
            })
            .collect();
        assert_eq!(digests.len(), msgs.len(), "every message folds to its own digest");
        let mut carried = Vec::new();
        msgs.iter().for_each(|m| m.carried(&mut carried));
        assert_eq!(carried, [1], "only a reconciliation carries its withdrawal");
    }
}
