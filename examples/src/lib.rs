//! Code shared by the example programs (not a stable API): the example server's
//! configuration, store selection, demo event and serving loop, kept here so that tests can
//! run the very app the `ticketing-server` binary runs.

pub mod server;
