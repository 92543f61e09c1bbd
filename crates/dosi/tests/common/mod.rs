//! Starting a real `dosi serve` process for the crash tests, and reading its metrics.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A running `dosi serve` and its base URL.
#[allow(dead_code)] // not every test binary uses every helper
pub struct Server {
    pub child: Child,
    pub base: String,
}

/// Starts `dosi serve` on an ephemeral port over `dir`, with extra
/// environment `env`, and waits until it listens.
#[allow(dead_code)] // not every test binary uses every helper
pub fn start_with(dir: &std::path::Path, env: &[(&str, &str)]) -> Server {
    start_args(dir, &[], env)
}

/// Like [`start_with`], with extra `dosi serve` flags.
pub fn start_args(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> Server {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dosi"));
    cmd.args(["serve", "--http", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .args(args)
        .env("DOSI_LOG", "warn")
        // No MQTT broker on the default 0.0.0.0:1883 unless a test asks (--mqtt).
        .env("DOSI_MQTT_ADDR", "")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("start dosi");
    let out = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(out).lines();
    let base = loop {
        let line = lines
            .next()
            .expect("dosi exited before listening")
            .expect("read stdout");
        if let Some(url) = line.strip_prefix("dosi listening on ") {
            break url.trim().to_string();
        }
    };
    Server { child, base }
}

/// A test that fails must not leave its server running (it would also hold
/// the test's stderr open).
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The sum of metric `name` over the series whose labels include
/// `transport="<transport>"`, scraped from the server's `/metrics`.
#[allow(dead_code)] // not every test binary uses every helper
pub async fn metric_sum(http: &reqwest::Client, base: &str, name: &str, transport: &str) -> u64 {
    let text = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = format!("{name}{{");
    let label = format!("transport=\"{transport}\"");
    text.lines()
        .filter(|l| l.starts_with(&prefix) && l.contains(&label))
        .filter_map(|l| l.rsplit(' ').next()?.trim().parse::<f64>().ok())
        .sum::<f64>() as u64
}
