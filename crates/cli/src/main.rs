//! The `arflow` binary: parses the command line, opens the store, runs one
//! command, and turns any error into one clear message (never a backtrace).

mod args;
mod args_dunning;
mod args_predict;
mod args_users;
mod commands;
mod config;
mod context;
mod delivery;
mod output;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    restore_default_sigpipe();
    let cli = args::Cli::parse();
    match commands::run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

/// Rust ignores SIGPIPE, so `arflow report … | head` would fail with a
/// "broken pipe" panic. Restoring the default makes the process end quietly
/// when the reader goes away, like other command-line tools.
fn restore_default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists; setting a
    // signal disposition to its default has no other preconditions.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
