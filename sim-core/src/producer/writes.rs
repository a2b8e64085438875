//! The writer's side of read models and caches: a `producer` with a
//! `writes` table is an API whose every produced message is a write it
//! tells its user is done at once, before the record reaches the log (the
//! 201 of a create-link). Naming a `cache`, it sets the key there as it
//! makes a create (`write_through`), puts a deletion marker as it makes a
//! delete (`deletion_markers`), and otherwise deletes the key from the
//! cache (cache-aside invalidation); naming `users` (readers), it tells
//! them of each write, and they read their own links. The tables, caches
//! and readers are in [`crate::views`].

use crate::engine::{Ctx, Timer};
use crate::kind::{Build, Invalid, Node, Topology};
use crate::message::{MsgId, NodeId};
use crate::protocol::kv::{is_delete, DELETE_DRAW};
use crate::protocol::KvMsg;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

/// A producer's `writes` table: its messages are writes of their keys.
/// `writes = true` is the table with every default (plain writes, no
/// cache, no readers told): a source of truth's changes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WritesSpec {
    /// The fraction of writes that are deletes (default 0).
    #[serde(default)]
    pub deletes: f64,
    /// The cache the API sets or invalidates as it makes each write.
    #[serde(default)]
    pub cache: Option<String>,
    /// Set the key in the cache as each create is made (default false:
    /// delete it from the cache).
    #[serde(default)]
    pub write_through: bool,
    /// Put a deletion marker in the cache as each delete is made (default
    /// false: delete the key from the cache).
    #[serde(default)]
    pub deletion_markers: bool,
    /// The readers told of each write as it is made (the 201 reaching
    /// its user), who then read their own links.
    #[serde(default)]
    pub users: Option<String>,
}

impl WritesSpec {
    /// Checks the fraction and the nodes named (paths under the
    /// producer's `writes`).
    pub fn validate(&self, node: &Node, topology: &Topology) -> Result<(), Invalid> {
        if !(0.0..=1.0).contains(&self.deletes) {
            return Err(node.invalid_at(&["writes", "deletes"], "expected a fraction from 0 to 1"));
        }
        match &self.cache {
            Some(c) if !topology.is_in(c, "caches") => {
                let caches = topology.list("caches");
                return Err(node.invalid_at(&["writes", "cache"], format!("no cache named `{c}` (caches: {caches})")));
            }
            None if self.write_through || self.deletion_markers => {
                let field = if self.write_through { "write_through" } else { "deletion_markers" };
                return Err(node.invalid_at(&["writes", field], "there is no `cache` to write to: name one"));
            }
            _ => {}
        }
        if let Some(u) = &self.users {
            if !topology.is_in(u, "readers") {
                let readers = topology.list("readers");
                return Err(
                    node.invalid_at(&["writes", "users"], format!("no readers named `{u}` (readers: {readers})"))
                );
            }
        }
        Ok(())
    }

    /// The hook a producer calls for each message it makes.
    pub fn hook(&self, build: &Build) -> WriteHook {
        let cache = self.cache.as_deref().map(|c| CacheLink {
            node: build.id(c),
            write_through: self.write_through,
            markers: self.deletion_markers,
        });
        let users = self.users.as_deref().map(|u| build.id(u));
        WriteHook { deletes: self.deletes, cache, users, versions: BTreeMap::new() }
    }
}

/// The cache a writer keeps up to date, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CacheLink {
    node: NodeId,
    write_through: bool,
    markers: bool,
}

/// What a writing producer does as it makes each write.
#[derive(Debug, Clone, PartialEq)]
pub struct WriteHook {
    deletes: f64,
    cache: Option<CacheLink>,
    users: Option<NodeId>,
    /// Each key's newest version (durable: the source of truth's own count).
    versions: BTreeMap<u64, u64>,
}

impl WriteHook {
    /// A hook with a fraction `deletes` of deletes, and nobody else to tell.
    pub fn new(deletes: f64) -> Self {
        WriteHook { deletes, cache: None, users: None, versions: BTreeMap::new() }
    }

    /// A hook that keeps cache node `cache` up to date as its flags say and
    /// tells readers node `users`, if any.
    pub fn with_cache(deletes: f64, cache: NodeId, write_through: bool, markers: bool, users: Option<NodeId>) -> Self {
        let cache = Some(CacheLink { node: cache, write_through, markers });
        WriteHook { deletes, cache, users, versions: BTreeMap::new() }
    }

    /// Write `id` of `key` is made: it is stamped with the key's next
    /// version (see [`crate::events`]); the cache is set or invalidated
    /// first (the API does it before it answers), then the 201: the state
    /// observer hears of the write, and the user is told.
    pub fn made<T: Timer>(&mut self, ctx: &mut Ctx<T>, key: u64, id: MsgId) {
        crate::events::stamp_version(ctx, &mut self.versions, key, id);
        let delete = is_delete(ctx.message_draw(id, DELETE_DRAW), self.deletes);
        if let Some(c) = self.cache {
            let put = if delete { c.markers } else { c.write_through };
            if put {
                ctx.send(c.node, KvMsg::Put { key, id });
            } else {
                ctx.send(c.node, KvMsg::Evict { key });
            }
        }
        ctx.wrote(key, id, delete);
        if let Some(u) = self.users {
            ctx.send(u, KvMsg::Made { key, id, delete });
        }
    }
}

/// Reads a producer's `writes`: `true` (plain writes), `false` (none) or a
/// table.
pub(crate) fn writes_form<'de, D: Deserializer<'de>>(d: D) -> Result<Option<WritesSpec>, D::Error> {
    struct Form;
    impl<'de> Visitor<'de> for Form {
        type Value = Option<WritesSpec>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("true, false or a table of writes settings")
        }
        fn visit_bool<E>(self, v: bool) -> Result<Self::Value, E> {
            Ok(v.then(WritesSpec::default))
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            WritesSpec::deserialize(serde::de::value::MapAccessDeserializer::new(map)).map(Some)
        }
    }
    d.deserialize_any(Form)
}
