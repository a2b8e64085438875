//! Unit tests of the search's parts: every drawn fault is one the scenario
//! format accepts, within the space's bounds, and the drawing depends only
//! on the seed.

use super::case::{Strategy, Uniform};
use super::space::{SearchOpts, Space};
use sim_core::scenario::{Config, Scenario};

fn scenario(name: &str) -> Scenario {
    let path = format!("{}/scenarios/{name}.toml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    Scenario::parse(&path, &text).unwrap()
}

fn first_config(s: &Scenario) -> Config {
    s.configs().unwrap().remove(0).1
}

#[test]
fn every_drawn_fault_validates_and_lies_in_the_run_phase() {
    for name in ["delivery-guarantees", "kafka-partition", "rabbitmq-partition", "consumer-lag-autoscaling"] {
        let s = scenario(name);
        let config = first_config(&s);
        let space = Space::from_config(&config, &SearchOpts { max_faults: 3, ..Default::default() });
        assert!(!space.kinds.is_empty(), "{name}: nothing to draw");
        let mut rng = sim_core::rng::stream(7, "test");
        let mut uniform = Uniform;
        for _ in 0..100 {
            let case = uniform.next(&space, &mut rng);
            assert!((1..=3).contains(&case.faults.len()));
            for f in &case.faults {
                let (at, until) = f.window_ms();
                assert!(at >= 0.0 && at < space.run_ms, "{name}: {f:?} starts outside the run phase");
                assert!(until.is_some_and(|u| u > at), "{name}: {f:?} has an empty window");
            }
            let list: Vec<toml::Value> = case.faults.iter().map(|f| toml::Value::try_from(f).unwrap()).collect();
            let mut s = s.clone();
            let set = format!("faults={}", toml::Value::Array(list));
            s.set_overrides(std::slice::from_ref(&set)).unwrap_or_else(|e| panic!("{name}: {set}: {e}"));
        }
    }
}

#[test]
fn the_drawing_depends_only_on_the_seed_and_narrowing_is_obeyed() {
    let config = first_config(&scenario("delivery-guarantees"));
    let opts =
        SearchOpts { max_faults: 2, kinds: vec!["crash".into()], nodes: vec!["consumer-a".into()], run_ms: None };
    let space = Space::from_config(&config, &opts);
    let draw = |seed| {
        let mut rng = sim_core::rng::stream(seed, "lane");
        (0..20).map(|_| Uniform.next(&space, &mut rng)).collect::<Vec<_>>()
    };
    assert_eq!(draw(1), draw(1));
    assert_ne!(draw(1), draw(2));
    for case in draw(3) {
        for f in case.faults {
            assert!(
                matches!(f, sim_core::scenario::FaultSpec::Crash { ref node, .. } if node == "consumer-a"),
                "{f:?}"
            );
        }
    }
}
