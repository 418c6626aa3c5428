//! The example server: the ticketing REST API over the in-memory store, PostgreSQL or Redis.
//!
//! Run with: `cargo run --release --bin ticketing-server -- --demo`
//! (`--help` lists every flag and its environment variable).

use std::process::ExitCode;

use clap::Parser;
use ticketing_examples::server::{ServerArgs, banner, build, serve};
use tracing_subscriber::EnvFilter;

// An application's choice (the library takes none): glibc's malloc was a tenth of the
// profile under load, mimalloc's per-thread heaps cost less.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    let args = ServerArgs::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("ticketing-server: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: ServerArgs) -> Result<(), Box<dyn std::error::Error>> {
    let server = build(&args).await?;
    let listener = tokio::net::TcpListener::bind(args.listen).await?;
    let address = listener.local_addr()?;
    println!("{}", banner(address, &server.admin_key, &args));
    let shutdown = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
        tracing::info!("shutting down: finishing requests in progress");
    };
    serve(listener, server.router, shutdown).await?;
    let expired = server.sweeper.stop().await;
    let rooms = server.room_sweeper.stop().await;
    tracing::info!(?expired, ?rooms, "stopped");
    Ok(())
}
