//! Entry points for the criterion benchmarks (`sim-core/benches/`) to
//! crate-private steps that no public API offers on their own. Hidden from
//! the docs and not a stable API: only the benchmarks call them.

use crate::message::{Msg, NodeId};
use crate::net::{Delivery, Network};
use crate::time::Time;
use crate::trace::{DropReason, Trace};

/// One send on the network: `Network::send`, the fate of `msg` sent at
/// `now` from `from` to `to` (partitions, loss, duplication, latency).
pub fn network_send(net: &mut Network, now: Time, from: NodeId, to: NodeId, msg: &Msg, trace: &mut Trace) -> Delivery {
    net.send(now, from, to, msg, trace)
}

/// One arrival: `Network::on_arrival`, whether a copy arriving from `from`
/// lands at `to` (`None`) or is dropped, and why.
pub fn network_on_arrival(net: &mut Network, from: NodeId, to: NodeId, to_alive: bool) -> Option<DropReason> {
    net.on_arrival(from, to, to_alive)
}
