//! `dosi`: the one binary. `dosi serve` runs the platform; `dosi bench` drives
//! a running server with load; `dosi export` writes a range of a running
//! server's attribute history as CSV or NDJSON; `dosi demo` runs the
//! platform with the simulated city; `dosi sim` runs the city's devices
//! against a running server; `dosi scenario` starts a scenario.

mod config;
mod export;
mod gateway;
mod mqtt;
mod mqtt_external;
mod serve;
mod sim;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc malloc: under many threads glibc's arenas
/// fragmented and `malloc_consolidate` took over half the CPU of bulk writes
/// (see docs/benchmarks.md and docs/adr/0004-allocator.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// dosi — the smart city integration platform.
#[derive(Parser, Debug)]
#[command(name = "dosi", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Runs the platform: NGSI-LD API, /health, /metrics.
    Serve(ServeArgs),
    /// Runs the platform with Dosi City, a simulated city, publishing into it.
    #[command(
        after_help = "Demo defaults (instead of serve's): --http 127.0.0.1:1026, --data-dir ./dosi-demo-data, \
--mqtt 127.0.0.1:1883 or, when that port is taken, a free one; --speed 10. The console is at http://<http>/."
    )]
    Demo(sim::DemoArgs),
    /// Runs the simulated city's devices against a running server (MQTT and HTTP).
    Sim(sim::SimArgs),
    /// Starts a scenario (flood, earthquake, crash, …) on a server running `dosi demo`.
    Scenario(sim::ScenarioArgs),
    /// Drives a running server with load and prints throughput and latency.
    Bench(dosi_bench::BenchArgs),
    /// Exports a time range of attribute history from a running server as CSV or NDJSON.
    Export(export::ExportArgs),
    /// Runs a trivial HTTP server: the ceiling benchmarks compare against.
    Ceiling {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:1027")]
        http: std::net::SocketAddr,
    },
}

/// Flags of `dosi serve` (they win over the config file and DOSI_* variables).
#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Address of the HTTP listener [default: 0.0.0.0:1026] (env DOSI_HTTP).
    #[arg(long)]
    pub http: Option<String>,
    /// Data directory of the embedded store [default: ./dosi-data] (env DOSI_DATA_DIR).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Address of the embedded MQTT broker of the IoT gateway; "" for none
    /// [default: 0.0.0.0:1883, skipped with a warning when taken] (env DOSI_MQTT_ADDR).
    #[arg(long)]
    pub mqtt: Option<String>,
    /// Configuration file (TOML, see dosi.example.toml) (env DOSI_CONFIG).
    #[arg(long, env = "DOSI_CONFIG")]
    pub config: Option<PathBuf>,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    // rustls is built with two crypto providers (ring, ours; aws-lc-rs, the
    // MQTT broker's): name the process default so no TLS user has to guess.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve(args) => rt.block_on(serve::run(args)),
        Command::Demo(args) => rt.block_on(sim::demo(args)),
        Command::Sim(args) => rt.block_on(sim::run(args)),
        Command::Scenario(args) => rt.block_on(sim::scenario(args)),
        Command::Bench(args) => rt.block_on(async {
            dosi_bench::run(args).await?;
            Ok(())
        }),
        Command::Export(args) => rt.block_on(export::run(args)),
        Command::Ceiling { http } => rt.block_on(dosi_bench::serve_ceiling(http)),
    }
}
