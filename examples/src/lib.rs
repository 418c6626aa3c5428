//! Code shared by the example programs (not a stable API): the example server's
//! configuration, store selection, demo event and serving loop, and the flash-sale load
//! generator, kept here so that tests can run the very code the `ticketing-server` and
//! `ticketing-flash-sale` binaries run.

pub mod flash_sale;
pub mod server;
