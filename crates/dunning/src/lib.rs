//! The dunning service: the thin layer between the pure planner
//! (`arflow_domain::dunning`), the store and the message transports.
//!
//! - [`snapshot`]: loads what the planner reads;
//! - [`run`]: plans, renders the messages and records everything in one
//!   transaction (`arflow dunning run`);
//! - [`deliver`]: claims queued messages and hands them to email or SMS, with
//!   retries, backoff and the in-doubt rule;
//! - [`predict`]: payment prediction on the store's data (models stored
//!   and retrained), [`alerts`]: exception alerts that become tasks;
//! - [`worker`]: runs both (and retraining) on a schedule (`arflow worker`, and later inside
//!   `arflow serve`).

pub mod alerts;
pub mod deliver;
pub mod demo;
pub mod predict;
pub mod render;
pub mod run;
pub mod snapshot;
pub mod worker;

use arflow_domain::dunning::planner::PlanError;
use arflow_domain::predict::PredictError;
use arflow_store::StoreError;

pub use deliver::{Courier, DeliveryOptions, DeliveryReport, deliver_batch};
pub use render::{RenderRequest, Renderer};
pub use run::{RunReport, run};
pub use snapshot::Snapshot;

#[derive(Debug, thiserror::Error)]
pub enum DunningError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    #[error(transparent)]
    Predict(#[from] PredictError),
    #[error("the stored policy '{name}' is invalid:\n  {}", errors.join("\n  "))]
    StoredPolicy { name: String, errors: Vec<String> },
    #[error("time zone '{zone}' is unknown: {message}")]
    TimeZone { zone: String, message: String },
    #[error("could not render template '{template}' ({locale}) for customer {customer}: {message}")]
    Render {
        template: String,
        locale: String,
        customer: String,
        message: String,
    },
}
