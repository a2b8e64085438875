//! The `store` kind and the `errors` fault through the scenario reader:
//! validation, the default effect domain, and the fault's window in the
//! run's fault log (which the report shades). A store alone has no caller
//! until services and users exist: these runs check what a store does on
//! its own; end-to-end runs come with the callers.

use sim_core::scenario::{run_config, Scenario};

fn scenario(extra: &str) -> Result<Scenario, sim_core::scenario::ScenarioError> {
    let text = format!(
        "name = \"s\"\nconcept = \"c\"\nrun = {{ duration_ms = 100 }}\n\
         [stores.db]\nlatency = {{ dist = \"constant\", ms = 2 }}\n{extra}"
    );
    Scenario::parse("s.toml", &text)
}

fn refusal(extra: &str) -> (Option<String>, String) {
    let err = scenario(extra).and_then(|s| s.configs()).expect_err("refused");
    (err.field, err.message)
}

#[test]
fn a_store_writes_in_its_own_name_by_default_or_in_the_domain_it_names() {
    for (extra, domain) in [("", "db"), ("domain = \"orders\"", "orders")] {
        let s = scenario(extra).expect("valid");
        let config = &s.configs().expect("valid")[0].1;
        assert_eq!(config.topology().domains().0, [domain]);
    }
    let s = scenario("writes = false").expect("valid");
    assert!(s.configs().expect("valid")[0].1.topology().domains().0.is_empty(), "a read-only store has no domain");
}

#[test]
fn a_store_refuses_a_bad_latency_and_a_domain_it_would_not_write() {
    let (field, message) = refusal("writes = false\ndomain = \"x\"");
    assert_eq!(field.as_deref(), Some("stores.db.domain"));
    assert!(message.contains("writes = false"), "{message}");
    let text = "name = \"s\"\nconcept = \"c\"\nrun = { duration_ms = 100 }\n[stores.db]\nconcurrency = 2\n";
    let err = Scenario::parse("s.toml", text).and_then(|s| s.configs()).expect_err("latency is required");
    assert!(err.message.contains("latency"), "{}", err.message);
}

#[test]
fn an_errors_fault_needs_a_node_that_answers_calls() {
    let fault = "[[faults]]\nkind = \"errors\"\nat_ms = 10\nuntil_ms = 50\nnode = \"p\"\n";
    let producer = "[producers.p]\ntarget = \"q\"\narrival = { process = \"poisson\", rate_per_s = 10 }\n\
                    [brokers.q]\nkind = \"queue\"\n";
    let (field, message) = refusal(&format!("{producer}{fault}"));
    assert_eq!(field.as_deref(), Some("faults.0.node"));
    assert!(message.contains("`p` is a producer, which answers no calls"), "{message}");
    let (field, message) = refusal(&fault.replace("\"p\"", "\"nobody\""));
    assert_eq!(field.as_deref(), Some("faults.0.node"));
    assert!(message.contains("no node named `nobody`"), "{message}");
    let (field, message) = refusal(&fault.replace("node = \"p\"", "node = \"db\"\nprobability = 1.5"));
    assert_eq!(field.as_deref(), Some("faults.0.probability"));
    assert!(message.contains("probability"), "{message}");
    let (field, _) = refusal(&fault.replace("node = \"p\"", "node = \"db\"\nfactor = 2"));
    assert_eq!(field.as_deref(), Some("faults.0"), "a field the fault does not take");
}

#[test]
fn an_errors_fault_on_a_store_is_logged_with_its_window() {
    let s = scenario("[[faults]]\nkind = \"errors\"\nat_ms = 10\nuntil_ms = 50\nnode = \"db\"\n").expect("valid");
    let config = &s.configs().expect("valid")[0].1;
    let out = run_config(config, 1, 0).completed().expect("the run ends");
    let log: Vec<(u64, &str)> = out.fault_log.iter().map(|(t, label, _)| (*t, label.as_str())).collect();
    assert_eq!(log, [(10_000_000, "errors at db"), (50_000_000, "errors at db")]);
    let s = scenario("[[faults]]\nkind = \"errors\"\nat_ms = 10\nnode = \"db\"\nprobability = 0.25\n").expect("valid");
    let out = run_config(&s.configs().expect("valid")[0].1, 1, 0).completed().expect("the run ends");
    assert_eq!(out.fault_log[0].1, "errors at db p=0.25");
}
