//! The cluster's controller (a KRaft controller; one node). Placeholder:
//! the helper writing the controller replaces this file.

use super::layout::Layout;
use crate::broker::LogSpec;
use crate::engine::{Component, Ctx, NoTimer};
use crate::message::{Msg, NodeId};

/// A running controller.
pub struct Controller {
    #[allow(dead_code)]
    layout: Layout,
}

impl Controller {
    /// The controller of the cluster `spec` describes, laid out as `layout`.
    pub fn new(_spec: &LogSpec, layout: Layout) -> Self {
        Controller { layout }
    }
}

impl Component for Controller {
    type Timer = NoTimer;
    fn start(&mut self, _ctx: &mut Ctx<NoTimer>) {}
    fn on_message(&mut self, _ctx: &mut Ctx<NoTimer>, _from: NodeId, _msg: Msg) {}
    fn on_timer(&mut self, _ctx: &mut Ctx<NoTimer>, _timer: NoTimer) {}
    fn crash(&mut self) {}
}
