use std::process::ExitCode;

use tracehose_extension::{diag, run};

fn main() -> ExitCode {
    // One thread: the extension shares the function's CPU and memory, and its work is I/O-bound.
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(error) => {
            diag!("cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run::run_from_env()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            diag!("stopping: {error}");
            ExitCode::FAILURE
        }
    }
}
