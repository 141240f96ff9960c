//! Command-line arguments of the dunning commands.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};

/// Which invoices a hold or promise covers: exactly one of the two.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct ScopeArgs {
    /// Every invoice of this customer (external id).
    #[arg(long)]
    pub customer: Option<String>,
    /// This invoice (number).
    #[arg(long)]
    pub invoice: Option<String>,
}

#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct AssignScopeArgs {
    #[arg(long)]
    pub invoice: Option<String>,
    #[arg(long)]
    pub customer: Option<String>,
    #[arg(long)]
    pub segment: Option<String>,
}

#[derive(Debug, Args)]
pub struct PolicyArgs {
    #[command(subcommand)]
    pub command: PolicyCommand,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Check policy files and explain every mistake with its location.
    Validate {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Store a policy file under the name it declares (replacing one of that name).
    Set { file: PathBuf },
    /// List stored policies and assignments.
    List,
    /// Print a stored policy as TOML.
    Show { name: String },
    /// Use POLICY for an invoice, a customer or a segment.
    Assign {
        policy: String,
        #[command(flatten)]
        scope: AssignScopeArgs,
    },
    /// Remove an assignment (the next level applies again).
    Unassign {
        #[command(flatten)]
        scope: AssignScopeArgs,
    },
}

#[derive(Debug, Args)]
pub struct HoldArgs {
    #[command(subcommand)]
    pub command: HoldCommand,
}

#[derive(Debug, Subcommand)]
pub enum HoldCommand {
    /// Pause dunning for a customer or an invoice.
    Add {
        #[command(flatten)]
        scope: ScopeArgs,
        #[arg(long)]
        reason: String,
        /// Dunning resumes by itself on this date (YYYY-MM-DD).
        #[arg(long)]
        until: Option<String>,
    },
    /// End a hold now.
    End { id: i64 },
    /// Holds in force (with --all, also ended and expired ones).
    List {
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct DisputeArgs {
    #[command(subcommand)]
    pub command: DisputeCommand,
}

#[derive(Debug, Subcommand)]
pub enum DisputeCommand {
    /// Record that the customer disputes an invoice (dunning on it pauses).
    Open {
        invoice: String,
        #[arg(long)]
        reason: String,
    },
    /// Resolve a dispute (dunning resumes if the invoice is still open).
    Resolve {
        id: i64,
        #[arg(long)]
        resolution: String,
    },
    List {
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct PromiseArgs {
    #[command(subcommand)]
    pub command: PromiseCommand,
}

#[derive(Debug, Subcommand)]
pub enum PromiseCommand {
    /// Record a promise to pay: dunning pauses until DATE plus grace days.
    Add {
        #[command(flatten)]
        scope: ScopeArgs,
        /// The promised payment date (YYYY-MM-DD).
        #[arg(long)]
        date: String,
        /// The promised amount, e.g. "1200.00 EUR" (default: the whole balance).
        #[arg(long)]
        amount: Option<String>,
        /// Days after DATE before the promise counts as broken (default: the organization's setting).
        #[arg(long)]
        grace: Option<u32>,
        #[arg(long)]
        note: Option<String>,
    },
    Cancel {
        id: i64,
    },
    List {
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Args)]
pub struct DunningArgs {
    #[command(subcommand)]
    pub command: DunningCommand,
}

#[derive(Debug, Subcommand)]
pub enum DunningCommand {
    /// Dry run: what would be sent now (or at a date) and why each open invoice is or is not chased.
    Plan {
        /// Plan as of this date (YYYY-MM-DD) at the current time of day, instead of now.
        #[arg(long)]
        date: Option<String>,
        /// Only this customer's invoices.
        #[arg(long)]
        customer: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Plan and queue the messages and tasks that are due (safe to repeat).
    Run {
        #[arg(long)]
        json: bool,
    },
    /// Show or change the organization's dunning settings.
    Settings(SettingsArgs),
    /// Stop planning and sending for the whole organization.
    Pause,
    /// Resume after `pause`.
    Resume,
}

#[derive(Debug, Args)]
pub struct SettingsArgs {
    /// Send window in the customer's local time, e.g. 08:00-21:00.
    #[arg(long)]
    pub send_window: Option<String>,
    /// Days messages may go out, e.g. mon-fri or mon,tue,wed,thu,fri,sat.
    #[arg(long)]
    pub send_days: Option<String>,
    /// Add a holiday (YYYY-MM-DD); repeatable.
    #[arg(long)]
    pub holiday: Vec<String>,
    /// Remove a holiday; repeatable.
    #[arg(long)]
    pub remove_holiday: Vec<String>,
    #[arg(long)]
    pub min_gap_days: Option<u32>,
    #[arg(long)]
    pub weekly_cap: Option<u32>,
    /// Do not chase invoices under this open balance, e.g. "5.00 EUR"; repeatable (one per currency).
    #[arg(long)]
    pub min_balance: Vec<String>,
    /// Statutory interest shown and charged on reminders: eu, uk, de, fr or none.
    #[arg(long)]
    pub interest: Option<InterestArg>,
    #[arg(long)]
    pub promise_grace_days: Option<u32>,
    /// The policy used when no assignment applies.
    #[arg(long)]
    pub default_policy: Option<String>,
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum InterestArg {
    None,
    Eu,
    Uk,
    De,
    Fr,
}

#[derive(Debug, Args)]
pub struct OutboxArgs {
    #[command(subcommand)]
    pub command: OutboxCommand,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StatusArg {
    Queued,
    Claimed,
    Sending,
    Sent,
    InDoubt,
    Failed,
    Cancelled,
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// Messages, newest first.
    List {
        #[arg(long)]
        status: Option<StatusArg>,
        #[arg(long)]
        customer: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// One message in full: headers, text and delivery state.
    Show {
        id: i64,
        #[arg(long)]
        json: bool,
    },
    /// Settle a message in doubt after checking with the provider.
    Confirm {
        id: i64,
        /// The recipient got it: mark it sent.
        #[arg(
            long,
            conflicts_with = "not_delivered",
            required_unless_present = "not_delivered"
        )]
        delivered: bool,
        /// It never arrived: queue it again.
        #[arg(long)]
        not_delivered: bool,
    },
}

#[derive(Debug, Args)]
pub struct TaskArgs {
    #[command(subcommand)]
    pub command: TaskCommand,
}

#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// Open tasks (with --all, also done ones).
    List {
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    Done {
        id: i64,
    },
}

#[derive(Debug, Args)]
pub struct ChargeArgs {
    #[command(subcommand)]
    pub command: ChargeCommand,
}

#[derive(Debug, Subcommand)]
pub enum ChargeCommand {
    List {
        #[arg(long)]
        json: bool,
    },
    /// Waive a fee or interest charge.
    Waive {
        id: i64,
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Args)]
pub struct BounceArgs {
    #[command(subcommand)]
    pub command: BounceCommand,
}

#[derive(Debug, Subcommand)]
pub enum BounceCommand {
    /// Record that email to ADDRESS bounces (email to it stops; a task is opened).
    Add {
        address: String,
        #[arg(long)]
        reason: String,
    },
    /// Email to ADDRESS works again.
    Clear {
        address: String,
    },
    List,
}

#[derive(Debug, Args)]
pub struct TemplateArgs {
    #[command(subcommand)]
    pub command: TemplateCommand,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PreviewChannel {
    Email,
    Sms,
    Task,
}

#[derive(Debug, Subcommand)]
pub enum TemplateCommand {
    /// Render a template for one customer's open invoices.
    Preview {
        name: String,
        #[arg(long)]
        customer: String,
        /// Language (default: the customer's locale).
        #[arg(long)]
        locale: Option<String>,
        #[arg(long, value_enum, default_value_t = PreviewChannel::Email)]
        channel: PreviewChannel,
        /// Print the HTML part instead of the text.
        #[arg(long)]
        html: bool,
    },
    /// Template names and languages available.
    List,
}

#[derive(Debug, Args)]
pub struct WorkerArgs {
    /// Plan once, deliver until nothing is left to claim, then exit.
    #[arg(long)]
    pub once: bool,
    /// Minutes between planning runs.
    #[arg(long, default_value_t = 15)]
    pub plan_every_minutes: u32,
    /// Seconds a claimed message is reserved for this worker.
    #[arg(long, default_value_t = 600)]
    pub lease_seconds: u32,
    /// Seconds to wait when there is nothing to send.
    #[arg(long, default_value_t = 5)]
    pub idle_seconds: u32,
    /// Messages claimed per delivery pass.
    #[arg(long, default_value_t = 100)]
    pub batch: u32,
    /// Skip planning: only deliver what is queued.
    #[arg(long)]
    pub deliver_only: bool,
    /// Do not retrain the payment model (by default it is retrained when
    /// older than 7 days, or first trained once 50 invoices are settled).
    #[arg(long)]
    pub no_retrain: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (default: [web] bind in arflow.toml, else 127.0.0.1).
    #[arg(long, env = "ARFLOW_BIND")]
    pub bind: Option<String>,
    /// Port to listen on (default: [web] port, else 8080; 0: any free port, printed at start).
    #[arg(long, env = "ARFLOW_PORT")]
    pub port: Option<u16>,
    /// When the database has no invoices yet, load the demo ledger and
    /// create the demo login (printed at start).
    #[arg(long)]
    pub demo: bool,
    /// Do not run the dunning worker inside the server (run `arflow worker` beside it).
    #[arg(long)]
    pub no_worker: bool,
}
