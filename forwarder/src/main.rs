//! `tracehose`: inside Lambda (with no arguments) the Lambda handler, elsewhere the command line.

use std::process::ExitCode;

fn main() -> ExitCode {
    tracehose_forwarder::cli::main()
}
