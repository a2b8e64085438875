use super::*;
use serde_json::json;

#[test]
fn every_name_reads_back_as_itself() {
    for name in Invariant::NAMES {
        let inv = Invariant::parse(name).unwrap();
        assert_eq!(inv.name(), name);
        assert!(!inv.meaning().is_empty());
    }
    let b = Invariant::parse("bounded-staleness(250)").unwrap();
    assert_eq!(b, Invariant::BoundedStaleness { bound_ms: 250.0 });
    assert_eq!(Invariant::parse(&b.name()).unwrap(), b);
}

#[test]
fn a_typo_gets_a_did_you_mean_and_arguments_are_checked() {
    let e = Invariant::parse("no-los").unwrap_err();
    assert!(e.contains("did you mean `no-loss`"), "{e}");
    assert!(Invariant::parse("no-loss(3)").unwrap_err().contains("takes no argument"));
    assert!(Invariant::parse("bounded-staleness(-1)").is_err());
    assert!(Invariant::parse("bounded-staleness(5").is_err());
}

#[test]
fn figures_above_zero_violate_and_the_detail_names_them() {
    let s = json!({"lost": 3, "duplicated": 0, "lost_by_cause": {"crash": 3}, "acked_lost": 2});
    let j = Invariant::NoLoss.judge(&s);
    assert!(!j.held && j.applies);
    assert!(j.detail.contains("lost = 3") && j.detail.contains("crash 3"), "{}", j.detail);
    assert!(Invariant::NoDuplicates.judge(&s).held);
    assert!(!Invariant::NoAckedWriteLost.judge(&s).held);
    // Absent counts (no log broker reported a regression) are zero.
    assert!(Invariant::MonotonicCommits.judge(&s).held);
}

#[test]
fn an_invariant_about_something_absent_does_not_apply_and_holds() {
    let s = json!({"lost": 0});
    for inv in [Invariant::NoOverdraft, Invariant::SagasSettled, Invariant::BoundedStaleness { bound_ms: 1.0 }] {
        let j = inv.judge(&s);
        assert!(j.held && !j.applies, "{j:?}");
    }
    let stale = json!({"consistency": {"staleness_ms": {"max": 1500.0}, "diverged": 0}, "inconsistent": 0});
    assert!(!Invariant::parse("bounded-staleness").unwrap().judge(&stale).held);
    assert!(Invariant::parse("bounded-staleness(2000)").unwrap().judge(&stale).held);
    assert!(Invariant::Convergence.judge(&stale).held);
}

#[test]
fn judge_all_keeps_the_order_and_flags_bad_names() {
    let s = json!({"lost": 0, "duplicated": 1});
    let js = judge_all(&["no-loss".into(), "no-duplicates".into(), "nope".into()], &s);
    assert_eq!(js.iter().map(|j| j.held).collect::<Vec<_>>(), [true, false, false]);
    assert_eq!(check_names(&["no-loss".into(), "nope".into()]).unwrap_err().0, 1);
}
