//! CAP and the ATM: the bundled `atm-cap.toml` through the CLI (every
//! variant's money figures, and the relations between variants at each
//! seed), named regression tests of each anomaly it shows, on small
//! scenarios whose figures follow from the rules by hand, and property
//! tests over any partition schedule between the ATM and its bank.

use crate::common::{self, num, run_summary, TempDir};
use proptest::prelude::*;
use serde_json::Value;
use sim_core::engine::RunOutput;
use sim_core::observer::accounts::MoneySummary;
use sim_core::scenario::{run_config, Scenario};
use std::fmt::Write as _;

const VARIANTS: [&str; 4] = ["consistency", "availability", "availability-no-limit", "two-atms-same-account"];

/// The offline limit of `atm-cap.toml`'s availability variants.
const LIMIT: f64 = 200.0;

fn atm_cap(seed: &str) -> Value {
    let dir = TempDir::new(&format!("atm-cap-{seed}"));
    let (summary, _) = run_summary("scenarios/atm-cap.toml", seed, &dir.path().join("out"));
    summary["variants"].clone()
}

#[test]
fn every_atm_cap_variant_reports_availability_overdraft_and_exposure() {
    let v = atm_cap("1");
    for name in VARIANTS {
        let x = &v[name];
        let availability = num(x, "availability");
        assert!((0.0..=1.0).contains(&availability), "{name}: availability {availability}");
        for key in ["overdraft.count", "overdraft.amount", "max_exposure", "unsettled", "withdrawals.requested"] {
            num(x, key);
        }
        assert_eq!(num(x, "unsettled"), 0.0, "{name}: every offline withdrawal reaches the books after the heal");
        assert_eq!(num(x, "lost"), 0.0, "{name}: no offline withdrawal is lost on its way to the bank");
        assert_eq!(num(x, "duplicated"), 0.0, "{name}: none is debited twice");
    }
}

/// The relations the scenario teaches, at each of several seeds (the
/// expectations in the file are absolute thresholds; these are the
/// comparisons themselves).
#[test]
fn availability_buys_customers_with_overdrafts_and_the_limit_bounds_them_per_atm() {
    let mut two_atms_exceeded = false;
    for seed in ["1", "2", "3"] {
        let v = atm_cap(seed);
        let (c, a, n, t) =
            (&v["consistency"], &v["availability"], &v["availability-no-limit"], &v["two-atms-same-account"]);
        let at = |what: &str| format!("seed {seed}: {what}");
        assert_eq!(num(c, "overdraft.count"), 0.0, "{}", at("consistency never overdraws"));
        assert_eq!(num(c, "max_exposure"), 0.0, "{}", at("consistency puts no money at risk"));
        assert!(num(a, "availability") > num(c, "availability"), "{}", at("availability serves more"));
        assert!(num(n, "availability") >= num(a, "availability"), "{}", at("no limit serves at least as many"));
        // Common random numbers: the same customers, so the same accounts are touched offline.
        assert_eq!(num(n, "withdrawals.accounts_offline"), num(a, "withdrawals.accounts_offline"));
        let bound = LIMIT * num(a, "withdrawals.accounts_offline");
        assert!(num(a, "overdraft.amount") <= bound, "{}", at("one ATM's overdraft within limit x accounts"));
        assert!(num(n, "overdraft.amount") >= num(a, "overdraft.amount"), "{}", at("no limit overdraws more"));
        assert!(num(n, "max_exposure") >= num(a, "max_exposure"), "{}", at("no limit risks more"));
        let (overdraft, accounts) = (num(t, "overdraft.amount"), num(t, "withdrawals.accounts_offline"));
        assert!(overdraft <= 2.0 * LIMIT * accounts, "{}", at("two ATMs: at most twice the limit per account"));
        two_atms_exceeded |= overdraft > LIMIT * accounts;
    }
    assert!(two_atms_exceeded, "two ATMs, each within its own limit, exceed the single-ATM bound at some seed");
}

// ---------------------------------------------------------------------------
// Named regressions: one account of $100, customers asking $100 each, a
// partition from the start to well after they are gone.
// ---------------------------------------------------------------------------

/// One bank with one $100 account, and `atms` ATMs (`a0`, `a1`...) of
/// `policy` each making 5 withdrawals of $100, one a second, all cut off
/// from the bank for the first 20 s.
fn one_account(policy: &str, atms: usize) -> String {
    let mut t = String::from(
        "name = \"one-account\"\nconcept = \"c\"\n[run]\nduration_ms = 30000\ndrain_ms = 30000\n\
         [banks.bank]\naccounts = 1\nbalance = 100\n",
    );
    let mut names = Vec::new();
    for i in 0..atms {
        let _ = write!(
            t,
            "[atms.a{i}]\nbank = \"bank\"\narrival = {{ process = \"constant\", rate_per_s = 1 }}\n\
             messages = 5\namount = 100\npolicy = \"{policy}\"\n"
        );
        names.push(format!("\"a{i}\""));
    }
    let _ = write!(
        t,
        "[[faults]]\nkind = \"partition\"\nat_ms = 0\nuntil_ms = 20000\ngroups = [[{}], [\"bank\"]]\n",
        names.join(", ")
    );
    t
}

fn run_text(text: &str, seed: u64) -> RunOutput {
    let scenario = Scenario::parse("atm.toml", text).unwrap_or_else(|e| panic!("refused: {e}\n{text}"));
    let (_, config) = scenario.configs().unwrap_or_else(|e| panic!("configs: {e}\n{text}")).remove(0);
    run_config(&config, seed, 0).completed().unwrap_or_else(|e| panic!("the run failed: {e}\n{text}"))
}

fn money(out: &RunOutput) -> &MoneySummary {
    out.state.money.as_ref().expect("a run with a bank reports money")
}

#[test]
fn regression_consistency_declines_everything_offline_and_overdraws_nothing() {
    let out = run_text(&one_account("consistency", 1), 1);
    let m = money(&out);
    assert_eq!((m.withdrawals.requested, m.withdrawals.declined_offline), (5, 5));
    assert_eq!((m.overdraft.count, m.overdraft.amount, m.max_exposure), (0, 0, 0));
    assert_eq!(m.availability, 0.0, "nobody was served");
    assert_eq!(out.counts.produced, 0, "nothing was withdrawn offline");
}

#[test]
fn regression_an_offline_limit_lets_one_atm_overdraw_an_account_by_at_most_the_limit() {
    // $100 in the account; offline, two customers get $100 each (the limit
    // is $200), the other three are declined: the account ends at -$100.
    let out = run_text(&one_account("availability", 1), 1);
    let m = money(&out);
    assert_eq!((m.withdrawals.approved_offline, m.withdrawals.declined_offline), (2, 3));
    assert_eq!((m.overdraft.count, m.overdraft.amount), (1, 100));
    assert_eq!(m.max_exposure, 200, "both offline withdrawals were at risk until the heal");
    assert_eq!(m.unsettled, 0, "reconciled after the heal");
    assert_eq!((out.counts.produced, out.counts.processed, out.counts.lost), (2, 2, 0));
}

#[test]
fn regression_without_a_limit_the_overdraft_is_whatever_customers_asked() {
    let out = run_text(&one_account("availability-no-limit", 1), 1);
    let m = money(&out);
    assert_eq!(m.withdrawals.approved_offline, 5);
    assert_eq!((m.overdraft.count, m.overdraft.amount), (1, 400), "$100 - 5 x $100");
    assert_eq!(m.max_exposure, 500);
}

#[test]
fn regression_two_atms_each_within_its_limit_overdraw_one_account_by_more_than_the_limit() {
    // Each ATM dispenses $200 offline (its own limit) and cannot see the
    // other's: $100 - $400 = -$300, beyond the $200 one ATM could do.
    let out = run_text(&one_account("availability", 2), 1);
    let m = money(&out);
    assert_eq!((m.withdrawals.approved_offline, m.withdrawals.accounts_offline), (4, 1));
    assert_eq!((m.overdraft.count, m.overdraft.amount), (1, 300));
    assert!(m.overdraft.amount as f64 > LIMIT * m.withdrawals.accounts_offline as f64);
    assert_eq!(m.unsettled, 0);
}

// ---------------------------------------------------------------------------
// Properties: any partition schedule between the ATM and the bank.
// ---------------------------------------------------------------------------

/// A generated case: the ATM's policy and limit, the load and balances,
/// partition windows, and optional crashes of the ATM or the bank.
#[derive(Debug, Clone)]
struct Case {
    policy: &'static str,
    limit: u32,
    accounts: u32,
    balance_mean: u32,
    rate_per_s: f64,
    messages: u64,
    timeout_ms: u32,
    /// Partition windows (start, length) in ms.
    windows: Vec<(u32, u32)>,
    /// A crash (node, start, length) in ms.
    crash: Option<(&'static str, u32, u32)>,
}

impl Case {
    fn toml(&self) -> String {
        let mut t = format!(
            "name = \"atm-prop\"\nconcept = \"c\"\n[run]\nduration_ms = 20000\ndrain_ms = 60000\n\
             [network]\nlatency = {{ dist = \"uniform\", min_ms = 1, max_ms = 20 }}\n\
             [banks.bank]\naccounts = {}\nbalance = {{ dist = \"exponential\", mean = {} }}\n\
             [atms.atm]\nbank = \"bank\"\narrival = {{ process = \"poisson\", rate_per_s = {} }}\nmessages = {}\n\
             policy = \"{}\"\noffline_limit = {}\ntimeout_ms = {}\nprobe_ms = 300\n",
            self.accounts, self.balance_mean, self.rate_per_s, self.messages, self.policy, self.limit, self.timeout_ms
        );
        for &(at, len) in &self.windows {
            let _ = write!(
                t,
                "[[faults]]\nkind = \"partition\"\nat_ms = {at}\nuntil_ms = {}\ngroups = [[\"atm\"], [\"bank\"]]\n",
                at + len
            );
        }
        if let Some((node, at, len)) = self.crash {
            let _ =
                write!(t, "[[faults]]\nkind = \"crash\"\nnode = \"{node}\"\nat_ms = {at}\nuntil_ms = {}\n", at + len);
        }
        t
    }
}

fn case(policies: &'static [&'static str]) -> impl Strategy<Value = Case> {
    (
        prop::sample::select(policies),
        20u32..400,
        1u32..30,
        0u32..600,
        1.0f64..30.0,
        1u64..400,
        100u32..3000,
        prop::collection::vec((0u32..20_000, 1u32..10_000), 0..4),
        prop::option::of((prop::sample::select(&["atm", "bank"][..]), 0u32..20_000, 1u32..5_000)),
    )
        .prop_map(|(policy, limit, accounts, balance_mean, rate_per_s, messages, timeout_ms, windows, crash)| {
            Case {
                policy,
                limit,
                accounts,
                balance_mean,
                rate_per_s: (rate_per_s * 10.0).round() / 10.0,
                messages,
                timeout_ms,
                windows,
                crash,
            }
        })
}

fn run_case(c: &Case, seed: u64) -> (RunOutput, String) {
    let text = c.toml();
    (run_text(&text, seed), format!("seed {seed}\n{text}"))
}

/// Whatever the schedule, every offline withdrawal reaches the bank's
/// books exactly once after the drain heals the faults.
fn reconciled(out: &RunOutput, why: &str) -> Result<(), TestCaseError> {
    let m = money(out);
    prop_assert_eq!(m.unsettled, 0, "unsettled money\n{}", why);
    prop_assert_eq!(out.counts.lost, 0, "an offline withdrawal lost\n{}", why);
    prop_assert_eq!(out.counts.duplicated, 0, "an offline withdrawal debited twice\n{}", why);
    prop_assert_eq!(out.counts.produced, m.withdrawals.approved_offline, "one message per offline withdrawal\n{}", why);
    Ok(())
}

proptest! {
    #![proptest_config(common::proptest_config(24))]

    #[test]
    fn the_consistency_atm_never_overdraws_any_account(c in case(&["consistency"]), seed in 1u64..1000) {
        let (out, why) = run_case(&c, seed);
        let m = money(&out);
        prop_assert_eq!(m.overdraft.count, 0, "an account overdrawn\n{}", why);
        prop_assert_eq!(m.max_exposure, 0, "money at risk\n{}", why);
        prop_assert_eq!(m.withdrawals.approved_offline, 0, "{}", why);
        reconciled(&out, &why)?;
    }

    #[test]
    fn availability_overdraws_at_most_the_limit_per_account_touched_offline(
        c in case(&["availability"]), seed in 1u64..1000,
    ) {
        let (out, why) = run_case(&c, seed);
        let m = money(&out);
        let bound = i64::from(c.limit) * m.withdrawals.accounts_offline as i64;
        prop_assert!(m.overdraft.amount <= bound, "overdraft {} > {} x {}\n{}", m.overdraft.amount, c.limit, m.withdrawals.accounts_offline, why);
        reconciled(&out, &why)?;
    }

    #[test]
    fn without_a_limit_every_offline_withdrawal_is_served_and_reconciled(
        c in case(&["availability-no-limit"]), seed in 1u64..1000,
    ) {
        let (out, why) = run_case(&c, seed);
        prop_assert_eq!(money(&out).withdrawals.declined_offline, 0, "{}", why);
        reconciled(&out, &why)?;
    }
}

#[test]
fn a_second_bank_is_refused_the_observer_has_one_space_of_accounts() {
    let text = include_str!("../scenarios/atm-cap.toml").replace("[banks.bank]", "[banks.bank]\n[banks.other]");
    let err = Scenario::parse("two-banks.toml", &text).unwrap_err();
    assert_eq!(err.field.as_deref(), Some("banks.bank"), "{err}");
    assert!(err.message.contains("one bank per scenario"), "{err}");
}
