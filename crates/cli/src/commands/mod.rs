//! One module per command.

mod demo;
mod fx;
mod import;
mod init;
mod report;

use anyhow::Result;

use crate::args::{Cli, Command};
use crate::context::Context;

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Init(a) => init::run(&cli.global, &a),
        Command::Import(a) => import::run(&Context::open(&cli.global)?, &a),
        Command::Report(a) => report::run(&Context::open(&cli.global)?, &a),
        Command::Demo(a) => demo::run(&Context::open(&cli.global)?, &a),
        Command::Fx(a) => fx::run(&Context::open(&cli.global)?, &a),
    }
}
