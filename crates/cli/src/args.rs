//! Command-line arguments.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub use crate::args_dunning::*;
pub use crate::args_predict::*;
pub use crate::args_users::*;

#[derive(Debug, Parser)]
#[command(name = "arflow", version, about = "Self-hosted accounts-receivable collections", long_about = None)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Where arflow keeps its SQLite database and config file.
    #[arg(long, global = true, env = "ARFLOW_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// Database to use instead of the embedded SQLite file: postgres://user@host/db or sqlite://PATH.
    #[arg(long, global = true, env = "ARFLOW_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Config file (default: DATA_DIR/arflow.toml when it exists).
    #[arg(long, global = true, env = "ARFLOW_CONFIG")]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the data directory, config file and database (safe to run again).
    Init(InitArgs),
    /// Import customers, contacts, invoices, credit notes or payments from CSV.
    Import(ImportArgs),
    /// AR reports: aging, DSO, CEI, summary, customers.
    Report(ReportArgs),
    /// Load a realistic synthetic ledger (or write it as CSV files) and show the summary.
    Demo(DemoArgs),
    /// Exchange rates used to total other currencies in the base currency.
    Fx(FxArgs),
    /// Dunning: plan and run reminders, settings, pause/resume.
    Dunning(DunningArgs),
    /// Dunning policies: validate, store, assign.
    Policy(PolicyArgs),
    /// Pause dunning for a customer or invoice.
    Hold(HoldArgs),
    /// Disputed invoices (dunning pauses while open).
    Dispute(DisputeArgs),
    /// Promises to pay (dunning pauses until the date plus grace).
    Promise(PromiseArgs),
    /// Messages queued, sent, failed or in doubt.
    Outbox(OutboxArgs),
    /// Work for people: calls, broken promises, unreachable customers.
    Task(TaskArgs),
    /// Late fees and statutory interest charged by reminders.
    Charge(ChargeArgs),
    /// Email addresses that bounce.
    Bounce(BounceArgs),
    /// Reminder templates.
    Template(TemplateArgs),
    /// Run the scheduler and deliver messages continuously.
    Worker(WorkerArgs),
    /// Serve the web application and REST API, with the dunning worker running inside.
    Serve(ServeArgs),
    /// Payment prediction: train, score open invoices, evaluate, list models.
    Predict(PredictArgs),
    /// 13-week cash forecast from the predicted pay dates (and its backtest).
    Forecast(ForecastArgs),
    /// Customers and invoices ranked by priority (expected cost of waiting), with reasons.
    Worklist(WorklistArgs),
    /// Exception alerts (each becomes an `alert` task).
    Alerts(AlertsArgs),
    /// Users of the web application, their roles and API tokens.
    User(UserArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Organization name.
    #[arg(long)]
    pub name: Option<String>,
    /// Base currency for totals (ISO 4217).
    #[arg(long)]
    pub base_currency: Option<String>,
    /// The organization's IANA time zone, e.g. Europe/Berlin.
    #[arg(long)]
    pub time_zone: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ImportKind {
    Customers,
    Contacts,
    Invoices,
    CreditNotes,
    Payments,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    pub kind: ImportKind,
    pub file: PathBuf,
    /// TOML column mapping for layouts arflow does not know (see docs/import-mapping.md).
    #[arg(long)]
    pub mapping: Option<PathBuf>,
    /// Import the valid rows and write the rejected ones to FILE.rejects.csv.
    #[arg(long)]
    pub skip_invalid: bool,
    /// How payments without explicit invoices are applied.
    #[arg(long, value_parser = ["oldest-due-first", "oldest-issued-first", "exact-amount-only"])]
    pub allocation_order: Option<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum ReportName {
    Aging,
    Dso,
    Cei,
    Summary,
    Customers,
    /// Month-over-month roll rates between aging buckets.
    RollRates,
    /// Collection rate by segment and invoices that moved from current to overdue.
    Collections,
    /// A short plain-language summary for owners.
    Brief,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    pub report: ReportName,
    /// Compute the report as it stood at the end of this date (YYYY-MM-DD). Default: today.
    #[arg(long)]
    pub as_of: Option<String>,
    /// Only customers in this segment.
    #[arg(long)]
    pub segment: Option<String>,
    /// Start of the period for `collections` (default: 30 days ending --as-of).
    #[arg(long)]
    pub from: Option<String>,
    /// Month-ends covered by `roll-rates` (1 to 120).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(1..=120))]
    pub months: u32,
    #[command(flatten)]
    pub format: FormatArgs,
}

#[derive(Debug, Args, Clone, Copy)]
#[group(multiple = false)]
pub struct FormatArgs {
    /// Machine-readable JSON (schema: docs/reports.md).
    #[arg(long)]
    pub json: bool,
    /// CSV rows.
    #[arg(long)]
    pub csv: bool,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[arg(long, default_value_t = 200)]
    pub customers: usize,
    #[arg(long, default_value_t = 5000)]
    pub invoices: usize,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Treat this date as today (default: today in the organization's time zone).
    #[arg(long)]
    pub today: Option<String>,
    /// Write the ledger as native CSV files into this directory instead of loading it.
    #[arg(long)]
    pub csv: Option<PathBuf>,
    /// With --csv: write only invoices.csv (plus customers.csv), recording full
    /// settlement in its paid_date column instead of separate payment files.
    /// Partial payments and credit notes are left out. Used by the benchmarks.
    #[arg(long, requires = "csv")]
    pub single_file: bool,
}

#[derive(Debug, Args)]
pub struct FxArgs {
    #[command(subcommand)]
    pub command: FxCommand,
}

#[derive(Debug, Subcommand)]
pub enum FxCommand {
    /// Record that 1 FROM = RATE TO from DATE on.
    Set {
        from: String,
        to: String,
        rate: String,
        /// First day the rate applies (YYYY-MM-DD).
        #[arg(long)]
        on: String,
    },
    /// List recorded rates.
    List,
}
