//! `GET /api/v1/reports/summary|aging`: the JSON of `arflow report summary
//! --json` and `arflow report aging --json`, from the same functions.

use arflow_domain::analytics::aging::aging;
use arflow_domain::analytics::summary::summary;
use arflow_domain::ledger::{BaseConverter, Ledger};
use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::extract::{ApiError, ApiQuery};
use super::ledger::{parse_date_param, view_and_index};
use super::report_json::{aging_json, summary_json};
use crate::AppState;
use crate::access::Caller;
use crate::problem::AppError;

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// The day the report is as of (default: today in the organization's zone).
    #[param(value_type = Option<String>, format = Date)]
    as_of: Option<String>,
    /// Only customers of this segment.
    segment: Option<String>,
}

/// The collections summary: receivables, overdue, DSO, CEI and aging, in
/// the organization's base currency.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct SummaryReport {
    /// Always "summary".
    report: String,
    #[schema(format = Date)]
    as_of: String,
    /// The base currency every amount is in.
    currency: String,
    segment: Option<String>,
    /// Decimal string.
    total_ar: String,
    current_ar: String,
    overdue_ar: String,
    percent_current: Option<f64>,
    open_invoice_count: u64,
    overdue_invoice_count: u64,
    customers_with_balance: u64,
    customers_overdue: u64,
    credit_sales: String,
    dso_period_days: u32,
    dso: Option<f64>,
    count_back_dso: Option<f64>,
    best_possible_dso: Option<f64>,
    average_days_delinquent: Option<f64>,
    cei_period: ReportPeriod,
    cei_percent: Option<f64>,
    aging: Vec<AgingBucketJson>,
}

#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct ReportPeriod {
    #[schema(format = Date)]
    start: String,
    #[schema(format = Date)]
    end: String,
}

#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct AgingBucketJson {
    label: String,
    min_days: Option<i64>,
    max_days: Option<i64>,
    /// Decimal string.
    amount: String,
    invoice_count: u64,
}

/// The aging report: open balances by days past due, in total and per
/// customer, in the organization's base currency.
#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct AgingReportJson {
    /// Always "aging".
    report: String,
    #[schema(format = Date)]
    as_of: String,
    currency: String,
    segment: Option<String>,
    /// due-date or issue-date.
    basis: String,
    buckets: Vec<AgingBucketJson>,
    total: String,
    current: String,
    overdue: String,
    percent_current: Option<f64>,
    invoice_count: u64,
    overdue_invoice_count: u64,
    customers: Vec<AgingCustomerJson>,
}

#[derive(Debug, Serialize, ToSchema)]
#[allow(dead_code)]
pub struct AgingCustomerJson {
    customer_id: String,
    name: String,
    segment: Option<String>,
    /// One decimal string per bucket.
    buckets: Vec<String>,
    total: String,
    overdue: String,
    invoice_count: u64,
}

fn analytics_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::App(AppError::Invalid {
        detail: format!("the report could not be computed: {e}"),
        errors: Vec::new(),
    })
}

/// The collections summary, as `arflow report summary --json` prints it.
#[utoipa::path(get, path = "/api/v1/reports/summary", tag = "reports", params(ReportQuery),
    responses((status = 200, description = "The summary", body = SummaryReport)))]
pub async fn summary_report(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let as_of = parse_date_param("as_of", q.as_of.as_deref())?;
    let (view, _) = view_and_index(&app, &caller).await?;
    let config = app.config.summary.clone();
    let segment = q.segment.clone();
    let value = tokio::task::spawn_blocking(move || {
        let fx = view.fx();
        let ledger = Ledger::new(&view.facts);
        let conv = BaseConverter {
            base: view.facts.base_currency,
            table: &fx,
        };
        let s = summary(
            &ledger,
            &conv,
            as_of.unwrap_or(view.today),
            segment.as_deref(),
            &config,
        )
        .map_err(analytics_error)?;
        Ok::<_, ApiError>(summary_json(&s))
    })
    .await
    .map_err(|e| ApiError::App(AppError::Internal(format!("the report failed: {e}"))))??;
    Ok(Json(value))
}

/// The aging report, as `arflow report aging --json` prints it.
#[utoipa::path(get, path = "/api/v1/reports/aging", tag = "reports", params(ReportQuery),
    responses((status = 200, description = "The aging report", body = AgingReportJson)))]
pub async fn aging_report(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let as_of = parse_date_param("as_of", q.as_of.as_deref())?;
    let (view, _) = view_and_index(&app, &caller).await?;
    let config = app.config.summary.aging.clone();
    let segment = q.segment.clone();
    let value = tokio::task::spawn_blocking(move || {
        let fx = view.fx();
        let ledger = Ledger::new(&view.facts);
        let conv = BaseConverter {
            base: view.facts.base_currency,
            table: &fx,
        };
        let r = aging(
            &ledger,
            &conv,
            as_of.unwrap_or(view.today),
            segment.as_deref(),
            &config,
        )
        .map_err(analytics_error)?;
        Ok::<_, ApiError>(aging_json(&r))
    })
    .await
    .map_err(|e| ApiError::App(AppError::Internal(format!("the report failed: {e}"))))??;
    Ok(Json(value))
}
