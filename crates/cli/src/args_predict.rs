//! Arguments of the prediction commands: predict, forecast, worklist, alerts.

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct PredictArgs {
    #[command(subcommand)]
    pub command: PredictCommand,
}

#[derive(Debug, Subcommand)]
pub enum PredictCommand {
    /// Train on the organization's settled invoices, store the model and print its card.
    Train {
        #[arg(long)]
        json: bool,
    },
    /// Score the open invoices with the latest model (training one first if none exists).
    Score {
        /// Score the book as it stood at the end of this date (default: today).
        #[arg(long)]
        as_of: Option<String>,
        /// Show at most this many invoices, highest priority first.
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long, conflicts_with = "csv")]
        json: bool,
        #[arg(long)]
        csv: bool,
    },
    /// Time-split evaluation against baselines, on the organization's history
    /// or on a CSV file through an import mapping.
    Evaluate {
        /// Train on invoices issued before this date, test on the rest
        /// (default: the organization's history is split 75 % / 25 %).
        #[arg(long)]
        split_date: Option<String>,
        /// A CSV file to evaluate on instead of the organization's ledger
        /// (imported into a throwaway database).
        #[arg(long)]
        data: Option<PathBuf>,
        /// The import mapping for --data (docs/import-mapping.md).
        #[arg(long, requires = "data")]
        mapping: Option<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// Stored models, newest first.
    Models {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct ForecastArgs {
    #[command(subcommand)]
    pub command: Option<ForecastCommand>,
    /// Forecast from the book as it stood at the end of this date (default: today).
    #[arg(long)]
    pub as_of: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum ForecastCommand {
    /// Replay past weekly as-of dates and compare with what was received
    /// (WAPE per week, against "paid on the due date").
    Backtest {
        /// How many weekly as-of dates to replay, ending 13 weeks before today.
        #[arg(long, default_value_t = 12)]
        weeks: usize,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct WorklistArgs {
    /// Rank the book as it stood at the end of this date (default: today).
    #[arg(long)]
    pub as_of: Option<String>,
    /// At most this many customers.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct AlertsArgs {
    /// List the alerts without opening tasks for them.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long)]
    pub json: bool,
}
