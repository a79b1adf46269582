//! `tracehose`: inside Lambda (with no arguments) the Lambda handler, elsewhere the command line.

use std::process::ExitCode;

fn main() -> ExitCode {
    let in_lambda = std::env::var_os("AWS_LAMBDA_RUNTIME_API").is_some();
    if in_lambda && std::env::args_os().len() == 1 {
        tracehose_forwarder::lambda::main()
    } else {
        tracehose_forwarder::cli::main()
    }
}
