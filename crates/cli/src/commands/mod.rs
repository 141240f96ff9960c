//! One module per command.

mod alerts;
mod brief;
mod demo;
mod dunning;
mod fx;
mod import;
mod init;
mod outbox;
mod pauses;
mod policy;
mod predict;
mod report;
mod serve;
mod template;
mod users;
mod worker;

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
        Command::Dunning(a) => dunning::run(&Context::open(&cli.global)?, &a),
        // Validating files needs no database.
        Command::Policy(crate::args::PolicyArgs {
            command: crate::args::PolicyCommand::Validate { files },
        }) => policy::validate(&files),
        Command::Policy(a) => policy::run(&Context::open(&cli.global)?, &a),
        Command::Hold(a) => pauses::hold(&Context::open(&cli.global)?, &a),
        Command::Dispute(a) => pauses::dispute(&Context::open(&cli.global)?, &a),
        Command::Promise(a) => pauses::promise(&Context::open(&cli.global)?, &a),
        Command::Outbox(a) => outbox::outbox(&Context::open(&cli.global)?, &a),
        Command::Task(a) => outbox::task(&Context::open(&cli.global)?, &a),
        Command::Charge(a) => outbox::charge(&Context::open(&cli.global)?, &a),
        Command::Bounce(a) => outbox::bounce(&Context::open(&cli.global)?, &a),
        Command::Template(a) => template::run(&Context::open(&cli.global)?, &a),
        Command::Worker(a) => worker::run(&Context::open(&cli.global)?, &a),
        Command::Serve(a) => serve::run(Context::open(&cli.global)?, &a),
        // Evaluating a CSV file works in a throwaway store of its own.
        Command::Predict(crate::args::PredictArgs {
            command:
                crate::args::PredictCommand::Evaluate {
                    data: Some(data),
                    mapping,
                    split_date,
                    json,
                },
        }) => predict::evaluate_file(
            &cli.global,
            &data,
            mapping.as_deref(),
            split_date.as_deref(),
            json,
        ),
        Command::Predict(a) => predict::run(&Context::open(&cli.global)?, &a),
        Command::Forecast(a) => predict::forecast(&Context::open(&cli.global)?, &a),
        Command::Worklist(a) => predict::worklist(&Context::open(&cli.global)?, &a),
        Command::Alerts(a) => alerts::run(&Context::open(&cli.global)?, &a),
        Command::User(a) => users::run(&Context::open(&cli.global)?, &a),
    }
}
