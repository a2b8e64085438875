//! The names most code needs from [`crate::protocol`]: message ids, node
//! ids, records and the envelope. Kept so that `sim_core::message::MsgId`
//! and friends keep working.

pub use crate::protocol::{Msg, MsgId, NodeId, Notice, Observed, Protocol, Record};
