//! Writes the benchmark inputs as files, for measuring the real binary (peak RSS with `/usr/bin/time -v`):
//! `cargo run --release -p tracehose-forwarder --example bench_event -- firehose 6000000 > event.json`
//! `cargo run --release -p tracehose-forwarder --example bench_event -- direct 1000000 > event.json`

#[path = "../benches/support/mod.rs"]
mod support;

use std::io::Write;

fn main() {
    let mut args = std::env::args().skip(1);
    let kind = args.next().unwrap_or_else(|| "firehose".into());
    let size: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(6_000_000);
    let bytes = match kind.as_str() {
        "direct" => {
            let (payload, _) = support::mixed_payload(7, 0, size);
            support::direct_event(&support::gzip(&payload))
        }
        _ => support::firehose_event(size),
    };
    if let Err(err) = std::io::stdout().write_all(&bytes) {
        eprintln!("bench_event: {err}");
        std::process::exit(1);
    }
}
