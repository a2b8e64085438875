//! The `bank` and `atm` kinds: the `[banks.NAME]` and `[atms.NAME]`
//! tables, their defaults, their checks and the construction of a
//! [`Bank`] and an [`Atm`].

use super::atm::{Atm, Policy, ATM_METRICS};
use super::money::Dollars;
use super::{Bank, BANK_METRICS};
use crate::dist::Dist;
use crate::engine::{boxed, DynComponent};
use crate::kind::{Build, Footprint, Invalid, Kind, KindPlot, Node, Topology};
use crate::producer::Arrival;
use crate::units::Millis;
use serde::Deserialize;

/// The most accounts one bank holds (each is a balance in memory and an
/// opening fact).
pub const MAX_ACCOUNTS: u32 = 1_000_000;

/// A bank as written in a scenario file (`[banks.NAME]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BankSpec {
    /// How many accounts it holds, numbered from 0 (default 100).
    #[serde(default = "default_accounts")]
    pub accounts: u32,
    /// Each account's opening balance in dollars: a number or a
    /// distribution, rounded to whole dollars (default 300).
    #[serde(default = "default_balance")]
    pub balance: Dollars,
    /// The time to process one authorisation or reconciliation (default
    /// 5 ms constant).
    #[serde(default = "default_processing")]
    pub processing: Dist,
    /// The effect domain of reconciled offline withdrawals (default
    /// `books`, shared by every bank).
    #[serde(default)]
    pub domain: Option<String>,
}

fn default_accounts() -> u32 {
    100
}

fn default_balance() -> Dollars {
    Dollars::fixed(300.0)
}

fn default_processing() -> Dist {
    Dist::constant_ms(5.0)
}

/// The bank kind (`[banks.NAME]`).
pub struct BankKind;

impl Kind for BankKind {
    type Spec = BankSpec;
    const NAME: &'static str = "bank";
    const SECTION: &'static str = "banks";
    const METRICS: &'static [&'static str] = &BANK_METRICS;

    fn validate(&self, node: &Node, s: &BankSpec, topology: &Topology) -> Result<(), Invalid> {
        if let Some(first) = topology.section("banks").map(Node::name).find(|n| *n != node.name()) {
            let why = format!("one bank per scenario: the state observer numbers accounts from 0 in one space, so a second bank's accounts would be `{first}`'s (model several banks as one with more accounts)");
            return Err(node.invalid_at(&[], why));
        }
        if s.accounts == 0 || s.accounts > MAX_ACCOUNTS {
            return node.fail("accounts", format!("expected from 1 to {MAX_ACCOUNTS} accounts"));
        }
        s.balance.check().map_err(|m| node.invalid("balance", m))?;
        s.processing.check().map_err(|m| node.invalid("processing", m))?;
        node.check_name("domain", s.domain.as_deref())
    }

    fn domain(&self, s: &BankSpec, _topology: &Topology) -> Option<String> {
        Some(s.domain.clone().unwrap_or_else(|| "books".to_string()))
    }

    fn footprint(&self, s: &BankSpec) -> Footprint {
        Footprint { bytes: f64::from(s.accounts) * 8.0, ..Footprint::default() }
    }

    fn build(&self, _node: &Node, s: &BankSpec, _build: &mut Build) -> Box<dyn DynComponent> {
        boxed(Bank::new(s))
    }
}

/// An ATM as written in a scenario file (`[atms.NAME]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AtmSpec {
    /// The bank that authorises its withdrawals.
    pub bank: String,
    /// When customers come (as a producer's `arrival`).
    pub arrival: Arrival,
    /// How many customers come; unlimited when absent (then the run needs
    /// a `run.duration_ms`); 0 switches the ATM off.
    #[serde(default)]
    pub messages: Option<u64>,
    /// What a customer asks for, in dollars, rounded to $20 notes (at
    /// least one): default uniform from $20 to $200.
    #[serde(default = "default_amount")]
    pub amount: Dollars,
    /// Customers use the bank's first `accounts` accounts, uniformly
    /// (default: all of them). A smaller number is a hot set.
    #[serde(default)]
    pub accounts: Option<u32>,
    /// What to do when the bank cannot be reached (default `consistency`).
    #[serde(default = "default_policy")]
    pub policy: Policy,
    /// With `availability`: the most dollars this ATM dispenses offline
    /// per account over the run (default 200).
    #[serde(default = "default_limit")]
    pub offline_limit: u32,
    /// How long to wait for the bank's answer (default 2000 ms).
    #[serde(default = "default_timeout")]
    pub timeout_ms: Millis,
    /// While offline, the time between two probes of the bank (default
    /// 1000 ms).
    #[serde(default = "default_probe")]
    pub probe_ms: Millis,
}

fn default_amount() -> Dollars {
    Dollars::uniform(20.0, 200.0)
}

fn default_policy() -> Policy {
    Policy::Consistency
}

fn default_limit() -> u32 {
    200
}

fn default_timeout() -> Millis {
    Millis(2000.0)
}

fn default_probe() -> Millis {
    Millis(1000.0)
}

/// The ATM kind (`[atms.NAME]`).
pub struct AtmKind;

impl Kind for AtmKind {
    type Spec = AtmSpec;
    const NAME: &'static str = "atm";
    const SECTION: &'static str = "atms";
    const METRICS: &'static [&'static str] = &ATM_METRICS;
    const GAUGES: &'static [&'static str] = &["exposure", "shortfall"];
    const PLOTS: &'static [KindPlot] = &[KindPlot {
        name: "exposure",
        title: "Money at risk over time",
        y_label: "dollars",
        gauges: &["exposure", "shortfall"],
    }];

    fn validate(&self, node: &Node, a: &AtmSpec, topology: &Topology) -> Result<(), Invalid> {
        let Some(bank) = topology.spec::<BankSpec>(&a.bank) else {
            let banks = topology.list("banks");
            let known = if banks.is_empty() { "no bank is defined".to_string() } else { format!("banks: {banks}") };
            return node.fail("bank", format!("no bank named `{}` ({known})", a.bank));
        };
        a.arrival.check().map_err(|m| node.invalid("arrival", m))?;
        a.amount.check().map_err(|m| node.invalid("amount", m))?;
        match a.accounts {
            Some(0) => return node.fail("accounts", "expected at least 1 account"),
            Some(n) if n > bank.accounts => {
                let why = format!("bank `{}` holds {} accounts: expected at most that many", a.bank, bank.accounts);
                return node.fail("accounts", why);
            }
            _ => {}
        }
        if a.timeout_ms.0 <= 0.0 {
            return node.fail("timeout_ms", "expected above 0: the ATM waits a while for the bank");
        }
        if a.probe_ms.0 <= 0.0 {
            return node.fail("probe_ms", "expected above 0");
        }
        Ok(())
    }

    fn messages(&self, a: &AtmSpec) -> Option<Option<u64>> {
        Some(a.messages)
    }

    fn footprint(&self, a: &AtmSpec) -> Footprint {
        Footprint { produces_per_s: a.arrival.mean_rate_per_s(), ..Footprint::default() }
    }

    fn build(&self, _node: &Node, a: &AtmSpec, build: &mut Build) -> Box<dyn DynComponent> {
        let accounts = build.topology().spec::<BankSpec>(&a.bank).map_or(1, |b| b.accounts);
        boxed(Atm::new(a, build.id(&a.bank), accounts))
    }
}
