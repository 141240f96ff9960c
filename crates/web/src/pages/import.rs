//! Importing a CSV from the browser, in two steps like a careful person at
//! the command line: a preview that reads, maps and validates the file
//! against what is stored and writes nothing, then a commit that applies
//! the change set in one transaction (all or nothing; with invalid rows only
//! when the admin chose to skip them, like `arflow import --skip-invalid`).
//!
//! Between the two the upload waits on the server in [`PendingImports`],
//! keyed by a random token, owned by the user who uploaded it, for at most
//! 30 minutes. The commit plans the file again against what is stored at
//! that moment, so a change made in between is neither lost nor duplicated.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use arflow_domain::allocation::AllocationOrder;
use arflow_domain::model::Organization;
use arflow_import::header::{Field, resolve, spec};
use arflow_import::{
    ImportError, Layout, Mapping, Plan, PlanOptions, RecordKind, RowError, load_existing,
    parse_mapping,
};
use arflow_store::{Change, Store};
use axum::Form;
use axum::extract::{Multipart, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use jiff::{SignedDuration, Timestamp};
use minijinja::context;
use serde::{Deserialize, Serialize};

use super::dunning::{given, organization, zone};
use crate::AppState;
use crate::access::Caller;
use crate::problem::{AppError, PageError};
use crate::routes::{ADMIN, Route};
use crate::secrets;

pub fn routes() -> Vec<Route> {
    vec![
        Route::page(Method::GET, "/import", ADMIN, import_page),
        Route::page(Method::POST, "/import/preview", ADMIN, preview),
        Route::page(Method::POST, "/import/commit", ADMIN, commit),
    ]
}

// ---------------------------------------------------------------------------
// Uploads waiting for their commit.

/// An uploaded file and how to read it, between preview and commit.
#[derive(Clone)]
pub struct PendingImport {
    pub org: i64,
    pub user_id: i64,
    pub kind: RecordKind,
    /// The pasted TOML mapping ("" for none).
    pub mapping: String,
    pub allocation_order: String,
    pub file_name: String,
    pub bytes: Arc<Vec<u8>>,
    pub created: Timestamp,
}

/// Uploads previewed and not yet committed, by token. Each belongs to one
/// user of one organization and expires after [`PendingImports::TTL`].
#[derive(Default)]
pub struct PendingImports {
    map: Mutex<HashMap<String, PendingImport>>,
}

impl PendingImports {
    /// How long a preview can be committed.
    pub const TTL: SignedDuration = SignedDuration::from_mins(30);
    /// Previews kept per user; an older one is dropped for a new one.
    pub const PER_USER: usize = 3;
    /// Previews kept in all, so uploads cannot fill the memory.
    pub const TOTAL: usize = 64;

    pub fn new() -> PendingImports {
        PendingImports::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, PendingImport>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn purge(map: &mut HashMap<String, PendingImport>, now: Timestamp) {
        map.retain(|_, p| now.duration_since(p.created) < Self::TTL);
    }

    /// Keeps `p` and returns its token.
    pub fn put(&self, p: PendingImport, now: Timestamp) -> Result<String, AppError> {
        let token = secrets::random_token().map_err(|e| AppError::Internal(e.to_string()))?;
        let mut map = self.lock();
        Self::purge(&mut map, now);
        let oldest = |map: &HashMap<String, PendingImport>, mine: bool| {
            map.iter()
                .filter(|(_, q)| !mine || (q.org == p.org && q.user_id == p.user_id))
                .min_by_key(|(_, q)| q.created)
                .map(|(k, _)| k.clone())
        };
        while map
            .values()
            .filter(|q| q.org == p.org && q.user_id == p.user_id)
            .count()
            >= Self::PER_USER
        {
            match oldest(&map, true) {
                Some(k) => map.remove(&k),
                None => break,
            };
        }
        while map.len() >= Self::TOTAL {
            match oldest(&map, false) {
                Some(k) => map.remove(&k),
                None => break,
            };
        }
        map.insert(token.clone(), p);
        Ok(token)
    }

    /// The upload behind `token` if it belongs to this user and has not expired.
    pub fn get(
        &self,
        token: &str,
        org: i64,
        user_id: i64,
        now: Timestamp,
    ) -> Option<PendingImport> {
        let mut map = self.lock();
        Self::purge(&mut map, now);
        map.get(token)
            .filter(|p| p.org == org && p.user_id == user_id)
            .cloned()
    }

    /// Forgets the upload (after its commit).
    pub fn remove(&self, token: &str, org: i64, user_id: i64) {
        let mut map = self.lock();
        if map
            .get(token)
            .is_some_and(|p| p.org == org && p.user_id == user_id)
        {
            map.remove(token);
        }
    }
}

// ---------------------------------------------------------------------------
// Kinds and options.

const KINDS: [(RecordKind, &str); 5] = [
    (RecordKind::Customers, "Customers"),
    (RecordKind::Contacts, "Contacts"),
    (RecordKind::Invoices, "Invoices"),
    (RecordKind::CreditNotes, "Credit notes"),
    (RecordKind::Payments, "Payments"),
];

const ORDERS: [(&str, &str); 3] = [
    ("oldest-due-first", "Oldest due date first"),
    ("oldest-issued-first", "Oldest issue date first"),
    ("exact-amount-only", "Only an exactly matching open amount"),
];

fn kind_label(kind: RecordKind) -> &'static str {
    KINDS
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or("records", |(_, l)| l)
}

/// The field whose value identifies a row's record.
fn key_field(kind: RecordKind) -> Field {
    match kind {
        RecordKind::Customers => Field::CustomerId,
        RecordKind::Contacts => Field::ContactId,
        RecordKind::Invoices => Field::InvoiceNumber,
        RecordKind::CreditNotes => Field::CreditNoteNumber,
        RecordKind::Payments => Field::PaymentId,
    }
}

/// How many errors the preview lists (the rest are counted).
const SHOWN_ERRORS: usize = 1000;
/// How many rows the preview shows.
const SAMPLE_ROWS: usize = 20;

// ---------------------------------------------------------------------------
// GET /import

/// The upload form as typed, and what went wrong with it.
#[derive(Default, Serialize)]
struct UploadForm {
    kind: String,
    mapping: String,
    allocation_order: String,
    error: Option<String>,
    /// Located mistakes in the mapping or the header.
    details: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct ImportQuery {
    ok: Option<String>,
    kind: Option<String>,
    new: Option<String>,
    changed: Option<String>,
    unchanged: Option<String>,
    skipped: Option<String>,
    invalid: Option<String>,
}

/// What the last commit wrote, from the numbers in the redirect (numbers
/// only: a link cannot make the page say anything else).
#[derive(Serialize)]
struct Committed {
    kind: &'static str,
    new: u64,
    changed: u64,
    unchanged: u64,
    skipped: u64,
    invalid: u64,
}

fn committed(q: &ImportQuery) -> Option<Committed> {
    if q.ok.as_deref() != Some("imported") {
        return None;
    }
    let n = |v: &Option<String>| v.as_deref().and_then(|s| s.parse::<u64>().ok());
    let kind = q
        .kind
        .as_deref()
        .and_then(|k| k.parse::<RecordKind>().ok())
        .map_or("records", kind_label);
    Some(Committed {
        kind,
        new: n(&q.new)?,
        changed: n(&q.changed)?,
        unchanged: n(&q.unchanged)?,
        skipped: n(&q.skipped).unwrap_or(0),
        invalid: n(&q.invalid).unwrap_or(0),
    })
}

fn limit_text(bytes: usize) -> String {
    const MB: usize = 1024 * 1024;
    if bytes >= MB {
        format!("{} MB", bytes / MB)
    } else {
        format!("{} KB", bytes.div_ceil(1024))
    }
}

async fn org_name(app: &AppState, caller: &Caller) -> Result<String, AppError> {
    let org = caller.org;
    app.blocking(move |store| Ok(organization(store, org)?.name))
        .await
}

async fn render_form(
    app: &AppState,
    caller: &Caller,
    flash: Option<&str>,
    result: Option<Committed>,
    form: UploadForm,
    status: StatusCode,
) -> Result<Response, PageError> {
    let name = org_name(app, caller).await?;
    let mut r = app.views.render(
        "import.html",
        super::chrome(
            caller,
            &name,
            "import",
            "Import",
            flash,
            context! {
                preview => None::<()>,
                form => form,
                result => result,
                kinds => KINDS.iter().map(|(k, l)| context! { value => k.as_str(), label => l }).collect::<Vec<_>>(),
                orders => ORDERS.iter().map(|(v, l)| context! { value => v, label => l }).collect::<Vec<_>>(),
                limit => limit_text(app.config.max_body_bytes),
            },
        ),
    )?;
    *r.status_mut() = status;
    Ok(r)
}

async fn import_page(
    State(app): State<AppState>,
    caller: Caller,
    Query(q): Query<ImportQuery>,
) -> Result<Response, PageError> {
    let result = committed(&q);
    render_form(
        &app,
        &caller,
        super::flash(q.ok.as_deref()),
        result,
        UploadForm {
            kind: "invoices".to_string(),
            allocation_order: ORDERS[0].0.to_string(),
            ..UploadForm::default()
        },
        StatusCode::OK,
    )
    .await
}

// ---------------------------------------------------------------------------
// Planning an upload.

/// A file-level problem: the mapping, the header or the CSV itself.
struct FileProblem {
    message: String,
    details: Vec<String>,
}

fn file_problem(e: ImportError) -> Result<FileProblem, AppError> {
    Ok(match e {
        ImportError::Store(e) => return Err(e.into()),
        ImportError::Header {
            message,
            expected,
            found,
            ..
        } => FileProblem {
            message: format!("The header row cannot be used: {message}."),
            details: vec![
                format!(
                    "Columns arflow reads for this kind (* required): {}",
                    expected.join(", ")
                ),
                format!(
                    "Columns in the file: {}",
                    if found.is_empty() {
                        "none".to_string()
                    } else {
                        found.join(", ")
                    }
                ),
            ],
        },
        ImportError::Mapping { message, .. } => FileProblem {
            message: "The column mapping is invalid.".to_string(),
            details: vec![message],
        },
        ImportError::Csv { line, message, .. } => FileProblem {
            message: format!("The file is not valid CSV at line {line}."),
            details: vec![message],
        },
        ImportError::InvalidRows { file, total, .. } => FileProblem {
            message: format!("{file}: {total} invalid rows."),
            details: Vec::new(),
        },
        ImportError::Io { source, .. } => FileProblem {
            message: format!("The upload could not be read: {source}."),
            details: Vec::new(),
        },
    })
}

/// Parses the pasted mapping for `kind` (None when nothing was pasted).
fn mapping_for(text: &str, kind: RecordKind) -> Result<Option<Mapping>, ImportError> {
    if text.trim().is_empty() {
        return Ok(None);
    }
    let m = parse_mapping(text, "the mapping")?;
    if let Some(k) = m.kind
        && k != kind
    {
        return Err(ImportError::Mapping {
            file: m.file.clone(),
            message: format!(
                "it is written for {} (kind = \"{}\"), but this is an import of {}",
                k.as_str(),
                k.as_str(),
                kind.as_str()
            ),
        });
    }
    Ok(Some(m))
}

/// Plans the upload against what is stored now. Pure reads.
fn plan_upload(
    store: &dyn Store,
    org: &Organization,
    p: &PendingImport,
    today: jiff::civil::Date,
) -> Result<Result<(Plan, Option<Mapping>), FileProblem>, AppError> {
    let mapping = match mapping_for(&p.mapping, p.kind) {
        Ok(m) => m,
        Err(e) => return Ok(Err(file_problem(e)?)),
    };
    let existing = load_existing(store, org.id, p.kind).map_err(|e| match e {
        ImportError::Store(e) => AppError::from(e),
        other => AppError::Internal(other.to_string()),
    })?;
    let opts = PlanOptions {
        kind: p.kind,
        mapping: mapping.as_ref(),
        allocation_order: AllocationOrder::parse(&p.allocation_order).unwrap_or_default(),
        today,
    };
    match arflow_import::plan::plan(
        p.bytes.as_slice(),
        &p.file_name,
        &existing,
        org,
        &opts,
        &mut |_| {},
    ) {
        Ok(plan) => Ok(Ok((plan, mapping))),
        Err(e) => Ok(Err(file_problem(e)?)),
    }
}

// ---------------------------------------------------------------------------
// The preview.

/// A minimal RFC 4180 reader for the sample rows (the importer reads the
/// whole file itself): records with the physical line they start on.
fn sample_records(bytes: &[u8], max: usize) -> Vec<(u64, Vec<String>)> {
    let mut out = Vec::new();
    let (mut line, mut i) = (1u64, 0usize);
    while i < bytes.len() && out.len() < max {
        let start_line = line;
        let mut fields: Vec<Vec<u8>> = Vec::new();
        let mut field: Vec<u8> = Vec::new();
        let mut quoted = false;
        let mut at_field_start = true;
        while let Some(&b) = bytes.get(i) {
            i += 1;
            if quoted {
                match b {
                    b'"' if bytes.get(i) == Some(&b'"') => {
                        i += 1;
                        field.push(b'"');
                    }
                    b'"' => quoted = false,
                    _ => {
                        if b == b'\n' {
                            line += 1;
                        }
                        field.push(b);
                    }
                }
                continue;
            }
            match b {
                b'"' if at_field_start => {
                    quoted = true;
                    at_field_start = false;
                }
                b',' => {
                    fields.push(std::mem::take(&mut field));
                    at_field_start = true;
                }
                b'\n' => {
                    line += 1;
                    break;
                }
                b'\r' => {
                    if bytes.get(i) == Some(&b'\n') {
                        i += 1;
                    }
                    line += 1;
                    break;
                }
                _ => {
                    at_field_start = false;
                    field.push(b);
                }
            }
        }
        fields.push(field);
        let cells: Vec<String> = fields
            .into_iter()
            .map(|f| String::from_utf8_lossy(&f).into_owned())
            .collect();
        if cells.iter().all(|c| c.trim().is_empty()) {
            continue; // blank lines are not records
        }
        out.push((start_line, cells));
    }
    out
}

#[derive(Serialize)]
struct ColumnRow {
    index: usize,
    header: String,
    field: Option<&'static str>,
    required: bool,
}

#[derive(Serialize)]
struct SampleRow {
    line: u64,
    status: &'static str,
    /// The badge style of the status.
    badge: &'static str,
    status_text: &'static str,
    cells: Vec<String>,
}

#[derive(Serialize)]
struct Counts {
    new: usize,
    changed: usize,
    unchanged: u64,
    skipped: u64,
    invalid: usize,
    errors: usize,
}

#[derive(Serialize)]
struct PreviewView {
    token: String,
    file_name: String,
    size: String,
    kind: &'static str,
    kind_label: &'static str,
    layout: &'static str,
    rows: u64,
    columns: Vec<ColumnRow>,
    /// Fields the kind needs that come from mapping constants, not a column.
    constants: Vec<String>,
    sample_header: Vec<String>,
    sample: Vec<SampleRow>,
    counts: Counts,
    /// Besides the rows' own records: what the import also writes.
    extras: Vec<String>,
    errors: Vec<RowError>,
    errors_hidden: usize,
    mapping_used: bool,
    has_changes: bool,
}

fn layout_text(l: Option<Layout>) -> &'static str {
    match l {
        Some(Layout::QuickBooks) => "QuickBooks Online export",
        Some(Layout::Xero) => "Xero export",
        Some(Layout::Mapping) => "your column mapping",
        _ => "arflow's own column names",
    }
}

/// (new, changed) records of the file's own kind in the change set, and
/// their keys.
fn primary_changes(plan: &Plan, kind: RecordKind) -> (HashSet<String>, HashSet<String>) {
    fn split<T>(v: &[Change<T>], key: impl Fn(&T) -> String) -> (HashSet<String>, HashSet<String>) {
        let (mut new, mut changed) = (HashSet::new(), HashSet::new());
        for c in v {
            match c {
                Change::Insert(r) => new.insert(key(r)),
                Change::Update { after, .. } => changed.insert(key(after)),
            };
        }
        (new, changed)
    }
    let cs = &plan.changes;
    match kind {
        RecordKind::Customers => split(&cs.customers, |c| c.external_id.clone()),
        RecordKind::Contacts => split(&cs.contacts, |c| c.external_id.clone()),
        RecordKind::Invoices => split(&cs.invoices, |c| c.number.clone()),
        RecordKind::CreditNotes => split(&cs.credit_notes, |c| c.number.clone()),
        RecordKind::Payments => split(&cs.payments, |c| c.external_id.clone()),
    }
}

fn preview_view(
    token: String,
    p: &PendingImport,
    plan: &Plan,
    mapping: Option<&Mapping>,
) -> PreviewView {
    let headers: Vec<String> = plan
        .headers
        .iter()
        .map(|h| {
            String::from_utf8_lossy(h)
                .trim_start_matches('\u{feff}')
                .trim()
                .to_string()
        })
        .collect();
    let explicit = mapping.map(|m| m.columns.clone()).unwrap_or_default();
    let fields = spec(p.kind);
    let cols = resolve(p.kind, headers.clone(), &explicit).ok();
    let field_of = |i: usize| -> Option<(Field, bool)> {
        let cols = cols.as_ref()?;
        fields
            .iter()
            .find(|(f, _, _)| cols.get(*f) == Some(i))
            .map(|(f, req, _)| (*f, *req))
    };
    let columns: Vec<ColumnRow> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let f = field_of(i);
            ColumnRow {
                index: i + 1,
                header: h.clone(),
                field: f.map(|(f, _)| f.name()),
                required: f.is_some_and(|(_, r)| r),
            }
        })
        .collect();
    let constants: Vec<String> = mapping
        .map(|m| {
            m.constants
                .iter()
                .map(|(f, v)| format!("{} = \"{v}\"", f.name()))
                .collect()
        })
        .unwrap_or_default();
    let (new, changed) = primary_changes(plan, p.kind);
    let bad: HashSet<u64> = plan.errors.iter().map(|e| e.line).collect();
    let key_col = cols.as_ref().and_then(|c| c.get(key_field(p.kind)));
    // The first record is the header.
    let records = sample_records(&p.bytes, SAMPLE_ROWS + 1);
    let sample: Vec<SampleRow> = records
        .into_iter()
        .skip(1)
        .map(|(line, cells)| {
            let key = key_col
                .and_then(|i| cells.get(i))
                .map(|k| k.trim().to_string());
            let (status, status_text) = if bad.contains(&line) {
                ("invalid", "invalid")
            } else {
                match key {
                    Some(k) if new.contains(&k) => ("new", "new"),
                    Some(k) if changed.contains(&k) => ("changed", "changed"),
                    Some(_) => ("unchanged", "no change"),
                    None => ("valid", "valid"),
                }
            };
            SampleRow {
                line,
                status,
                badge: match status {
                    "new" => "paid",
                    "changed" => "queued",
                    "invalid" => "failed",
                    other => other,
                },
                status_text,
                cells,
            }
        })
        .collect();
    let cs = &plan.changes;
    let mut extras = Vec::new();
    if plan.customers_created > 0 {
        extras.push(format!(
            "{} customer{} created from the rows",
            plan.customers_created,
            if plan.customers_created == 1 { "" } else { "s" }
        ));
    }
    if p.kind != RecordKind::Payments && plan.payments_created > 0 {
        extras.push(format!(
            "{} payment{} recorded",
            plan.payments_created,
            if plan.payments_created == 1 { "" } else { "s" }
        ));
    }
    if plan.allocations_created > 0 || !cs.allocations.is_empty() {
        let n = cs.allocations.len();
        extras.push(format!(
            "{n} allocation{} of money to invoices",
            if n == 1 { "" } else { "s" }
        ));
    }
    let total_errors = plan.errors.len();
    PreviewView {
        token,
        file_name: p.file_name.clone(),
        size: limit_text(p.bytes.len().max(1)),
        kind: p.kind.as_str(),
        kind_label: kind_label(p.kind),
        layout: layout_text(plan.layout),
        rows: plan.rows,
        columns,
        constants,
        sample_header: headers,
        sample,
        counts: Counts {
            new: new.len(),
            changed: changed.len(),
            unchanged: plan.unchanged,
            skipped: plan.skipped,
            invalid: bad.len(),
            errors: total_errors,
        },
        extras,
        errors: plan.errors.iter().take(SHOWN_ERRORS).cloned().collect(),
        errors_hidden: total_errors.saturating_sub(SHOWN_ERRORS),
        mapping_used: mapping.is_some(),
        has_changes: !cs.is_empty(),
    }
}

async fn render_preview(
    app: &AppState,
    caller: &Caller,
    org_name: &str,
    view: PreviewView,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let mut r = app.views.render(
        "import.html",
        super::chrome(
            caller,
            org_name,
            "import",
            "Import preview",
            None,
            context! {
                preview => view,
                commit_error => error,
            },
        ),
    )?;
    *r.status_mut() = status;
    Ok(r)
}

// ---------------------------------------------------------------------------
// POST /import/preview

async fn read_upload(
    mut multipart: Multipart,
    form: &mut UploadForm,
    limit: usize,
) -> Result<Option<(String, Vec<u8>)>, (String, StatusCode)> {
    let too_large = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            (
                format!(
                    "The upload is larger than the {} limit: split the file, or ask the administrator to raise max_body_bytes.",
                    limit_text(limit)
                ),
                StatusCode::PAYLOAD_TOO_LARGE,
            )
        } else {
            (
                format!("The upload could not be read: {}.", e.body_text()),
                StatusCode::BAD_REQUEST,
            )
        }
    };
    let mut file = None;
    while let Some(field) = multipart.next_field().await.map_err(too_large)? {
        let name = field.name().unwrap_or("").to_string();
        match name.as_str() {
            "file" => {
                let file_name = field
                    .file_name()
                    .map(|n| {
                        // Browsers may send a path; keep the last part.
                        n.rsplit(['/', '\\']).next().unwrap_or(n).to_string()
                    })
                    .filter(|n| !n.is_empty())
                    .unwrap_or_else(|| "upload.csv".to_string());
                let bytes = field.bytes().await.map_err(too_large)?;
                if !bytes.is_empty() {
                    file = Some((file_name, bytes.to_vec()));
                }
            }
            "kind" => form.kind = field.text().await.map_err(too_large)?.trim().to_string(),
            "mapping" => {
                form.mapping = field.text().await.map_err(too_large)?.replace("\r\n", "\n")
            }
            "allocation_order" => {
                form.allocation_order = field.text().await.map_err(too_large)?.trim().to_string()
            }
            _ => {}
        }
    }
    Ok(file)
}

async fn preview(
    State(app): State<AppState>,
    caller: Caller,
    multipart: Multipart,
) -> Result<Response, PageError> {
    let mut form = UploadForm::default();
    let upload = read_upload(multipart, &mut form, app.config.max_body_bytes).await;
    let fail = |mut form: UploadForm, message: String, details: Vec<String>| {
        form.error = Some(message);
        form.details = details;
        form
    };
    let (file_name, bytes) = match upload {
        Ok(Some(f)) => f,
        Ok(None) => {
            let f = fail(form, "Choose a CSV file to import.".to_string(), Vec::new());
            return render_form(
                &app,
                &caller,
                None,
                None,
                f,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
        Err((message, status)) => {
            let f = fail(form, message, Vec::new());
            return render_form(&app, &caller, None, None, f, status).await;
        }
    };
    let Ok(kind) = form.kind.parse::<RecordKind>() else {
        let message = format!(
            "Choose what the file holds (customers, contacts, invoices, credit notes or payments){}.",
            if form.kind.is_empty() {
                String::new()
            } else {
                format!("; '{}' is not one of them", form.kind)
            }
        );
        let f = fail(form, message, Vec::new());
        return render_form(
            &app,
            &caller,
            None,
            None,
            f,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    };
    if form.allocation_order.is_empty() {
        form.allocation_order = ORDERS[0].0.to_string();
    }
    if AllocationOrder::parse(&form.allocation_order).is_none() {
        let message = format!("'{}' is not an allocation order.", form.allocation_order);
        let f = fail(form, message, Vec::new());
        return render_form(
            &app,
            &caller,
            None,
            None,
            f,
            StatusCode::UNPROCESSABLE_ENTITY,
        )
        .await;
    }
    let now = app.clock.now();
    let pending = PendingImport {
        org: caller.org,
        user_id: caller.user_id,
        kind,
        mapping: form.mapping.clone(),
        allocation_order: form.allocation_order.clone(),
        file_name,
        bytes: Arc::new(bytes),
        created: now,
    };
    let (org_id, p) = (caller.org, pending.clone());
    let (org, planned) = app
        .blocking(move |store| {
            let org = organization(store, org_id)?;
            let today = zone(&org).to_datetime(now).date();
            let planned = plan_upload(store, &org, &p, today)?;
            Ok((org, planned))
        })
        .await?;
    let (plan, mapping) = match planned {
        Ok(x) => x,
        Err(problem) => {
            let f = fail(form, problem.message, problem.details);
            return render_form(
                &app,
                &caller,
                None,
                None,
                f,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await;
        }
    };
    let token = app.imports.put(pending.clone(), now)?;
    let view = preview_view(token, &pending, &plan, mapping.as_ref());
    render_preview(&app, &caller, &org.name, view, None, StatusCode::OK).await
}

// ---------------------------------------------------------------------------
// POST /import/commit

#[derive(Debug, Deserialize)]
pub struct CommitForm {
    token: Option<String>,
    skip_invalid: Option<String>,
}

enum Outcome {
    Problem(FileProblem),
    /// Rows are invalid and skipping them was not chosen.
    Invalid(Box<(Plan, Option<Mapping>)>),
    Done {
        new: usize,
        changed: usize,
        unchanged: u64,
        skipped: u64,
        invalid: usize,
    },
}

async fn commit(
    State(app): State<AppState>,
    caller: Caller,
    Form(f): Form<CommitForm>,
) -> Result<Response, PageError> {
    let now = app.clock.now();
    let token = given(&f.token).unwrap_or_default();
    let skip_invalid = given(&f.skip_invalid).is_some_and(|v| v != "false");
    let Some(pending) = app.imports.get(&token, caller.org, caller.user_id, now) else {
        let form = UploadForm {
            kind: "invoices".to_string(),
            allocation_order: ORDERS[0].0.to_string(),
            error: Some(
                "This preview is no longer available: previews are kept 30 minutes and can be committed once. Upload the file again."
                    .to_string(),
            ),
            ..UploadForm::default()
        };
        return render_form(&app, &caller, None, None, form, StatusCode::GONE).await;
    };
    let (org_id, p) = (caller.org, pending.clone());
    let actor = format!("web:{}", caller.email);
    let (org, outcome) = app
        .blocking(move |store| {
            let org = organization(store, org_id)?;
            let today = zone(&org).to_datetime(now).date();
            let (plan, mapping) = match plan_upload(store, &org, &p, today)? {
                Ok(x) => x,
                Err(problem) => return Ok((org, Outcome::Problem(problem))),
            };
            if !plan.errors.is_empty() && !skip_invalid {
                return Ok((org, Outcome::Invalid(Box::new((plan, mapping)))));
            }
            let (new, changed) = primary_changes(&plan, p.kind);
            if !plan.changes.is_empty() {
                store.apply(org_id, &plan.changes, &actor, now)?;
            }
            let invalid = plan
                .errors
                .iter()
                .map(|e| e.line)
                .collect::<HashSet<_>>()
                .len();
            Ok((
                org,
                Outcome::Done {
                    new: new.len(),
                    changed: changed.len(),
                    unchanged: plan.unchanged,
                    skipped: plan.skipped,
                    invalid,
                },
            ))
        })
        .await?;
    match outcome {
        Outcome::Done {
            new,
            changed,
            unchanged,
            skipped,
            invalid,
        } => {
            app.imports.remove(&token, caller.org, caller.user_id);
            Ok(Redirect::to(&format!(
                "/import?ok=imported&kind={}&new={new}&changed={changed}&unchanged={unchanged}&skipped={skipped}&invalid={invalid}",
                pending.kind.as_str()
            ))
            .into_response())
        }
        Outcome::Invalid(planned) => {
            let (plan, mapping) = *planned;
            let view = preview_view(token, &pending, &plan, mapping.as_ref());
            let n = view.counts.invalid;
            let message = format!(
                "Nothing was imported: {n} row{} {} invalid. Fix the file and upload it again, or tick \"Skip invalid rows\" to import the other rows.",
                if n == 1 { "" } else { "s" },
                if n == 1 { "is" } else { "are" }
            );
            render_preview(
                &app,
                &caller,
                &org.name,
                view,
                Some(message),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
        Outcome::Problem(problem) => {
            let form = UploadForm {
                kind: pending.kind.as_str().to_string(),
                mapping: pending.mapping.clone(),
                allocation_order: pending.allocation_order.clone(),
                error: Some(problem.message),
                details: problem.details,
            };
            render_form(
                &app,
                &caller,
                None,
                None,
                form,
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_follow_csv_quoting_and_lines() {
        let csv = b"a,b\r\n\r\n1,\"x, \"\"y\"\"\"\n2,\"multi\nline\"\n3,z\n";
        let r = sample_records(csv, 10);
        assert_eq!(r[0], (1, vec!["a".to_string(), "b".to_string()]));
        assert_eq!(r[1], (3, vec!["1".to_string(), "x, \"y\"".to_string()]));
        assert_eq!(r[2], (4, vec!["2".to_string(), "multi\nline".to_string()]));
        assert_eq!(r[3], (6, vec!["3".to_string(), "z".to_string()]));
        assert_eq!(sample_records(csv, 2).len(), 2);
    }

    fn pending(org: i64, user: i64, at: Timestamp) -> PendingImport {
        PendingImport {
            org,
            user_id: user,
            kind: RecordKind::Customers,
            mapping: String::new(),
            allocation_order: ORDERS[0].0.to_string(),
            file_name: "c.csv".into(),
            bytes: Arc::new(b"customer_id,name\n".to_vec()),
            created: at,
        }
    }

    #[test]
    fn pending_imports_belong_to_their_user_and_expire() {
        let t0: Timestamp = "2026-12-03T10:00:00Z".parse().unwrap();
        let store = PendingImports::new();
        let token = store.put(pending(1, 7, t0), t0).unwrap();
        assert!(store.get(&token, 1, 7, t0).is_some());
        assert!(store.get(&token, 1, 8, t0).is_none(), "another user");
        assert!(
            store.get(&token, 2, 7, t0).is_none(),
            "another organization"
        );
        let later = t0 + SignedDuration::from_mins(31);
        assert!(store.get(&token, 1, 7, later).is_none(), "expired");
        // At most PER_USER per user: the oldest goes.
        let tokens: Vec<String> = (0..4)
            .map(|i| {
                let at = t0 + SignedDuration::from_secs(i);
                store.put(pending(1, 7, at), at).unwrap()
            })
            .collect();
        let now = t0 + SignedDuration::from_secs(5);
        assert!(store.get(&tokens[0], 1, 7, now).is_none());
        assert!(
            tokens[1..]
                .iter()
                .all(|t| store.get(t, 1, 7, now).is_some())
        );
        store.remove(&tokens[3], 1, 7);
        assert!(store.get(&tokens[3], 1, 7, now).is_none());
    }
}
