//! The controller's handlers: it polls the broker, starts the next member
//! when the lag stays high, stops the last one started when it stays low,
//! and reports how many run and what they cost.

use super::*;
use crate::engine::Harness;
use crate::replicas::autoscaler::Policy;

const S: u64 = 1_000_000_000;
const ME: NodeId = 9;
const BROKER: NodeId = 1;

fn controller() -> Controller {
    let policy =
        Policy { min: 1, max: 3, up_lag_ns: 5 * S, up_window_ns: 0, down_lag_ns: S, down_window_ns: 0, cooldown_ns: 0 };
    let scaling = Scaling { broker: BROKER, group: 2, poll_ns: 5 * S, autoscaler: Autoscaler::new(policy) };
    Controller::new("w", vec![3, 4, 5], 1, 0.25).with_scaling(scaling)
}

fn lag(oldest_s: u64) -> ControlMsg {
    ControlMsg::Lag { group: 2, records: 100, oldest_ns: oldest_s * S }
}

#[test]
fn it_polls_the_broker_for_its_groups_lag() {
    let (mut h, mut c) = (Harness::new(ME), controller());
    let e = h.start(&mut c);
    assert_eq!(e.timers::<ControllerTimer>(), [(5 * S, ControllerTimer::Poll)]);
    let e = h.timer(&mut c, ControllerTimer::Poll);
    assert_eq!(e.sent(), [(BROKER, Msg::Control(ControlMsg::LagQuery { group: 2 }))]);
    assert_eq!(e.timers::<ControllerTimer>(), [(5 * S, ControllerTimer::Poll)], "and again");
}

#[test]
fn a_high_lag_starts_the_next_member_up_to_the_cap_and_a_low_one_stops_the_last() {
    let (mut h, mut c) = (Harness::new(ME), controller());
    h.start(&mut c);
    assert_eq!(h.message(&mut c, BROKER, lag(9)).sent(), [(4, Msg::Control(ControlMsg::Start))]);
    h.now += S;
    assert_eq!(h.message(&mut c, BROKER, lag(9)).sent(), [(5, Msg::Control(ControlMsg::Start))]);
    h.now += S;
    assert!(h.message(&mut c, BROKER, lag(9)).sent().is_empty(), "3 running: the cap");
    assert_eq!(c.running(), 3);
    h.now += S;
    assert_eq!(h.message(&mut c, BROKER, lag(0)).sent(), [(5, Msg::Control(ControlMsg::Stop))], "last in, first out");
    let other_group = ControlMsg::Lag { group: 7, records: 0, oldest_ns: 99 * S };
    h.now += S;
    assert!(h.message(&mut c, BROKER, other_group).sent().is_empty(), "another group's lag is not its own");
    let mut g = Gauges::default();
    c.gauges(0, &mut g);
    assert_eq!(g.into_vec(), [("consumer_cost_per_hour.w".to_string(), 0.5), ("consumers.w".to_string(), 2.0)]);
}

#[test]
fn a_fixed_group_only_counts_its_members() {
    let (mut h, mut c) = (Harness::new(ME), Controller::new("q", vec![3, 4], 2, 0.1));
    assert!(h.start(&mut c).timers::<ControllerTimer>().is_empty());
    assert!(h.message(&mut c, BROKER, lag(60)).sent().is_empty());
    assert_eq!(c.running(), 2);
}
