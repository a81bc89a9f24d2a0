//! The `baseline` binary: serves [`loadgen::baseline::router`] and announces its address on
//! stdout the way the platform's services do, so the harness starts both alike.

use std::io::Write;
use std::net::SocketAddr;

use anyhow::Context;
use clap::Parser;

/// A bare axum server answering `GET`/`PUT /hello/{username}` with a fixed body.
#[derive(Debug, Parser)]
#[command(version)]
struct Args {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
}

// The default multi-thread runtime (one worker per core), as the platform's services use.
#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let api = listener.local_addr().context("no local address")?;
    let ready = serde_json::json!({ "message": "Serving.", "api": api.to_string() });
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{ready}").context("cannot write to stdout")?;
    stdout.flush().context("cannot flush stdout")?;
    drop(stdout);
    axum::serve(listener, loadgen::baseline::router())
        .await
        .context("server failed")
}
