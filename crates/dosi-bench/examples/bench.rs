//! Stand-alone driver for trying the load generator before it is wired into
//! `dosi bench`:
//!
//! ```text
//! cargo run --release -p dosi-bench --example bench -- ceiling --listen 127.0.0.1:18080 --seconds 60
//! cargo run --release -p dosi-bench --example bench -- bench --url http://127.0.0.1:18080 raw
//! ```

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Parser, Subcommand};
use dosi_bench::BenchArgs;

#[derive(Parser, Debug)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a benchmark scenario (what `dosi bench` will do).
    Bench(BenchArgs),
    /// Serve the ceiling server, on one thread, for a bounded time.
    Ceiling {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:18080")]
        listen: SocketAddr,
        /// Stop after this many seconds.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Bench(args) => {
            runtime.block_on(dosi_bench::run(args))?;
        }
        Command::Ceiling { listen, seconds } => {
            let served = runtime.block_on(async {
                tokio::time::timeout(
                    Duration::from_secs(seconds),
                    dosi_bench::serve_ceiling(listen),
                )
                .await
            });
            if let Ok(result) = served {
                result?;
            }
        }
    }
    Ok(())
}
