//! A broker of a log cluster. Placeholder: the helper writing the broker
//! replaces this file.

use super::layout::Layout;
use crate::broker::{GroupInfo, LogSpec};
use crate::engine::{Component, Ctx, NoTimer};
use crate::message::{Msg, NodeId};
use crate::protocol::cluster::BrokerIx;

/// A running cluster broker.
pub struct ClusterBroker {
    #[allow(dead_code)]
    layout: Layout,
    #[allow(dead_code)]
    me: BrokerIx,
}

impl ClusterBroker {
    /// Broker `me` of the cluster `spec` describes, laid out as `layout`,
    /// coordinating (some of) `groups`.
    pub fn new(_spec: &LogSpec, layout: Layout, me: BrokerIx, _groups: Vec<GroupInfo>) -> Self {
        ClusterBroker { layout, me }
    }
}

impl Component for ClusterBroker {
    type Timer = NoTimer;
    fn start(&mut self, _ctx: &mut Ctx<NoTimer>) {}
    fn on_message(&mut self, _ctx: &mut Ctx<NoTimer>, _from: NodeId, _msg: Msg) {}
    fn on_timer(&mut self, _ctx: &mut Ctx<NoTimer>, _timer: NoTimer) {}
    fn crash(&mut self) {}
}
