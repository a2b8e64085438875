//! A broker's side of a controller quorum: which voter it believes is the
//! active controller, which it heartbeats to and sends its ISR proposals
//! to (`layout.controller` in its copy of the layout).
//!
//! It learns the active controller from whichever voter sends it metadata
//! (an answer to a heartbeat, or a push: only the active controller sends
//! either). A voter that is not active answers `NotController` with the
//! leader it knows: the broker turns to that one, or, with no hint, to the
//! next voter, and heartbeats there at once (once per heartbeat interval).
//! A heartbeat left unanswered until the next makes it try the next voter
//! (Kafka's brokers find the new leader through their own fetches of the
//! metadata log, which this model replaces by pushes).
//!
//! With one controller none of this changes anything.

use super::node::{BrokerTimer, ClusterBroker};
use crate::engine::Ctx;
use crate::message::NodeId;
use crate::protocol::cluster::ClusterMsg;

impl ClusterBroker {
    /// Before a heartbeat: a controller voter that did not answer the last
    /// one is given up for the next.
    pub(super) fn pick_controller(&mut self) {
        if self.layout.voters.len() > 1 && !self.controller_answered {
            self.next_controller();
        }
        self.controller_answered = false;
        self.redirected = false;
    }

    fn next_controller(&mut self) {
        let voters = &self.layout.voters;
        let at = voters.iter().position(|&v| v == self.layout.controller).unwrap_or(0);
        self.layout.controller = voters[(at + 1) % voters.len()];
    }

    /// Metadata (or an ISR answer) came from `from`: if it is a voter, it
    /// is the active controller. Returns whether it is one.
    pub(super) fn heard_controller(&mut self, from: NodeId) -> bool {
        if !self.layout.is_voter(from) {
            return false;
        }
        self.layout.controller = from;
        self.controller_answered = true;
        true
    }

    /// A voter said it is not the active controller.
    pub(super) fn on_not_controller(&mut self, ctx: &mut Ctx<BrokerTimer>, from: NodeId, leader: Option<NodeId>) {
        if from != self.layout.controller || self.layout.voters.len() < 2 {
            return;
        }
        match leader.filter(|&l| l != from && self.layout.is_voter(l)) {
            Some(l) => self.layout.controller = l,
            None => self.next_controller(),
        }
        if !self.redirected {
            self.redirected = true;
            self.controller_answered = true;
            let (broker, incarnation, version) = (self.me, self.incarnation, self.version);
            ctx.send(self.layout.controller, ClusterMsg::BrokerHeartbeat { broker, incarnation, version });
        }
    }
}
