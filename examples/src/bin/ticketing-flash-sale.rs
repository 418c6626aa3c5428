//! The flash-sale load generator: virtual buyers compete for an event on a store in this
//! process or on a running ticketing server, then an audit proves nothing was oversold.
//!
//! Run with: `cargo run --release --bin ticketing-flash-sale -- --store memory`
//! (`--help` lists every flag; the logic is `ticketing_examples::flash_sale`).

use std::process::ExitCode;

use clap::Parser;
use ticketing_examples::flash_sale::{FlashSaleArgs, main_with};
use tracing_subscriber::EnvFilter;

// An application's choice (the library takes none): glibc's malloc was a tenth of the
// profile under load, mimalloc's per-thread heaps cost less.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    main_with(FlashSaleArgs::parse()).await
}
