//! One connection type over a single server and a cluster, and the scripts it runs.

use std::sync::LazyLock;

use redis::aio::{ConnectionLike, ConnectionManager};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, Pipeline, RedisFuture, Script, Value};

/// A single server (reconnecting multiplexed connection) or a cluster (slot-routing
/// connection): the store's code is the same for both.
#[derive(Clone)]
pub(crate) enum Connection {
    /// One server (or a primary behind a fixed address).
    Single(ConnectionManager),
    /// Redis Cluster: every command goes to the primary of its key's slot.
    Cluster(ClusterConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(connection) => connection.req_packed_command(cmd),
            Connection::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(connection) => {
                connection.req_packed_commands(pipeline, offset, count)
            }
            Connection::Cluster(connection) => {
                connection.req_packed_commands(pipeline, offset, count)
            }
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(connection) => connection.get_db(),
            Connection::Cluster(connection) => connection.get_db(),
        }
    }
}

/// An event script: the shared preludes (`common.lua`, then the waitlist's `waitlist.lua`),
/// then the operation's body.
macro_rules! event_script {
    ($file:literal) => {
        LazyLock::new(|| {
            Script::new(concat!(
                include_str!("../lua/common.lua"),
                "\n",
                include_str!("../lua/waitlist.lua"),
                "\n",
                include_str!(concat!("../lua/", $file))
            ))
        })
    };
}

/// Every script the store runs, each loaded once per server and called by SHA.
pub(crate) struct Scripts {
    pub(crate) create_event: LazyLock<Script>,
    pub(crate) reserve: LazyLock<Script>,
    pub(crate) commit: LazyLock<Script>,
    pub(crate) extend: LazyLock<Script>,
    pub(crate) cancel: LazyLock<Script>,
    pub(crate) refund: LazyLock<Script>,
    pub(crate) transfer: LazyLock<Script>,
    pub(crate) check_in: LazyLock<Script>,
    pub(crate) block: LazyLock<Script>,
    pub(crate) set_pool: LazyLock<Script>,
    pub(crate) availability: LazyLock<Script>,
    pub(crate) changes: LazyLock<Script>,
    pub(crate) read: LazyLock<Script>,
    pub(crate) peek: LazyLock<Script>,
    pub(crate) sweep: LazyLock<Script>,
    pub(crate) waitlist_join: LazyLock<Script>,
    pub(crate) waitlist_entry: LazyLock<Script>,
    pub(crate) waitlist_leave: LazyLock<Script>,
    pub(crate) index: LazyLock<Script>,
    pub(crate) list: LazyLock<Script>,
}

pub(crate) static SCRIPTS: Scripts = Scripts {
    create_event: event_script!("create_event.lua"),
    reserve: event_script!("reserve.lua"),
    commit: event_script!("commit.lua"),
    extend: event_script!("extend.lua"),
    cancel: event_script!("cancel.lua"),
    refund: event_script!("refund.lua"),
    transfer: event_script!("transfer.lua"),
    check_in: event_script!("check_in.lua"),
    block: event_script!("block.lua"),
    set_pool: event_script!("set_pool.lua"),
    availability: event_script!("availability.lua"),
    changes: event_script!("changes.lua"),
    read: event_script!("read.lua"),
    peek: event_script!("peek.lua"),
    sweep: event_script!("sweep.lua"),
    waitlist_join: event_script!("waitlist_join.lua"),
    waitlist_entry: event_script!("waitlist_entry.lua"),
    waitlist_leave: event_script!("waitlist_leave.lua"),
    index: LazyLock::new(|| Script::new(include_str!("../lua/index.lua"))),
    list: LazyLock::new(|| Script::new(include_str!("../lua/list.lua"))),
};

impl Scripts {
    /// Every script, for loading them all at connect.
    pub(crate) fn all(&self) -> [&Script; 20] {
        [
            &self.create_event,
            &self.reserve,
            &self.commit,
            &self.extend,
            &self.cancel,
            &self.refund,
            &self.transfer,
            &self.check_in,
            &self.block,
            &self.set_pool,
            &self.availability,
            &self.changes,
            &self.read,
            &self.peek,
            &self.sweep,
            &self.waitlist_join,
            &self.waitlist_entry,
            &self.waitlist_leave,
            &self.index,
            &self.list,
        ]
    }
}

/// The reserve script's text, for benchmarks that run it with redis-benchmark.
pub fn reserve_script_source() -> String {
    concat!(
        include_str!("../lua/common.lua"),
        "\n",
        include_str!("../lua/waitlist.lua"),
        "\n",
        include_str!("../lua/reserve.lua")
    )
    .to_owned()
}
