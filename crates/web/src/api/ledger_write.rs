//! Writing the ledger (ADMIN): customers, contacts, invoices, credit notes,
//! payments and allocations. Each request is validated with the importer's
//! row rules (`validate.rs`) and against the ledger view, then written with
//! one `Store::apply`, atomically, attributed to `api:<email>`.

use arflow_domain::analytics::aging::{AgingBasis, AgingConfig};
use arflow_domain::model::{Allocation as DAllocation, AllocationSource, InvoiceStatus, Stored};
use arflow_domain::money::Currency;
use arflow_import::header::{Field, RecordKind};
use arflow_import::rows;
use arflow_store::{Change, ChangeSet};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use jiff::civil::Date;

use super::dto::{
    self, NewAllocation, NewApplication, NewContact, NewCreditNote, NewCustomer, NewInvoice,
    NewPayment,
};
use super::extract::{ApiBody, ApiError, parse_json};
use super::idempotency::{Reply, once};
use super::index::ApiIndex;
use super::ledger::view_and_index;
use super::validate::{Cells, Errors};
use crate::AppState;
use crate::access::Caller;
use crate::cache::{InvoiceRow, InvoiceState, LedgerView};
use crate::problem::ProblemBody;

/// Who the store's event log names for a change made through the API.
pub fn actor(caller: &Caller) -> String {
    format!("api:{}", caller.email)
}

/// Percent-encodes one path segment (for `Location`).
pub fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

async fn apply(app: &AppState, caller: &Caller, changes: ChangeSet) -> Result<(), ApiError> {
    let (org, actor, now) = (caller.org, actor(caller), app.clock.now());
    app.blocking(move |store| {
        store.apply(org, &changes, &actor, now)?;
        Ok(())
    })
    .await?;
    Ok(())
}

// --- customers -----------------------------------------------------------

/// Create a customer.
#[utoipa::path(post, path = "/api/v1/customers", tag = "customers", request_body = NewCustomer,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe: see the API guide")),
    responses((status = 201, description = "Created", body = dto::Customer,
            headers(("Location" = String, description = "The new customer's URL"))),
        (status = 409, description = "A customer with this key exists", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn create_customer(
    State(app): State<AppState>,
    caller: Caller,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Response {
    once(&app, &caller, &headers, &method, &uri, &body, || async {
        let input: NewCustomer = parse_json(&body)?;
        let (view, _) = view_and_index(&app, &caller).await?;
        let mut errs = Errors::default();
        for (i, t) in input.tags.iter().enumerate() {
            if t.contains(';') {
                errs.add(&format!("/tags/{i}"), Some(t), "a tag cannot contain ';'");
            }
        }
        errs.check()?;
        let tags = (!input.tags.is_empty()).then(|| input.tags.join(";"));
        let terms = input.payment_terms_days.map(|d| d.to_string());
        let mut cells = Cells::new(RecordKind::Customers);
        cells
            .text(Field::CustomerId, "/key", Some(&input.key))
            .text(Field::Name, "/name", input.name.as_deref())
            .text(Field::Currency, "/currency", input.currency.as_deref())
            .text(Field::Segment, "/segment", input.segment.as_deref())
            .text(Field::Tags, "/tags", tags.as_deref())
            .text(Field::Country, "/country", input.country.as_deref())
            .text(Field::TimeZone, "/time_zone", input.time_zone.as_deref())
            .text(Field::Locale, "/locale", input.locale.as_deref())
            .text(
                Field::PaymentTermsDays,
                "/payment_terms_days",
                terms.as_deref(),
            )
            .text(
                Field::CreditLimit,
                "/credit_limit",
                input.credit_limit.as_deref(),
            )
            .text(Field::Collector, "/collector", input.collector.as_deref())
            .flag(Field::Autopay, "/autopay", Some(input.autopay));
        let base = view.org.base_currency;
        let customer = cells.read(view.today, |row| rows::customer(row, base))?;
        if view.customer(&customer.external_id).is_some() {
            return Err(ApiError::conflict(format!(
                "customer '{}' already exists",
                customer.external_id
            )));
        }
        apply(
            &app,
            &caller,
            ChangeSet {
                customers: vec![Change::Insert(customer.clone())],
                ..ChangeSet::default()
            },
        )
        .await?;
        Reply::created(
            format!("/api/v1/customers/{}", segment(&customer.external_id)),
            dto::customer(&customer, None),
        )
    })
    .await
}

/// Create a contact of a customer.
#[utoipa::path(post, path = "/api/v1/contacts", tag = "customers", request_body = NewContact,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe: see the API guide")),
    responses((status = 201, description = "Created", body = dto::Contact,
            headers(("Location" = String, description = "The new contact's URL"))),
        (status = 409, description = "A contact with this key exists", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn create_contact(
    State(app): State<AppState>,
    caller: Caller,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Response {
    once(&app, &caller, &headers, &method, &uri, &body, || async {
        let input: NewContact = parse_json(&body)?;
        let (view, index) = view_and_index(&app, &caller).await?;
        let mut cells = Cells::new(RecordKind::Contacts);
        cells
            .text(Field::CustomerId, "/customer", Some(&input.customer))
            .text(Field::ContactId, "/key", input.key.as_deref())
            .text(Field::Name, "/name", input.name.as_deref())
            .text(Field::Email, "/email", input.email.as_deref())
            .text(Field::Phone, "/phone", input.phone.as_deref())
            .text(Field::Role, "/role", input.role.as_deref())
            .flag(Field::Primary, "/is_primary", Some(input.is_primary))
            .flag(
                Field::EmailOptOut,
                "/email_opt_out",
                Some(input.email_opt_out),
            )
            .flag(Field::SmsConsent, "/sms_consent", Some(input.sms_consent))
            .flag(Field::SmsOptOut, "/sms_opt_out", Some(input.sms_opt_out))
            .flag(Field::CallOptOut, "/call_opt_out", Some(input.call_opt_out));
        let contact = cells.read(view.today, rows::contact)?;
        if view.customer(&contact.customer).is_none() {
            return Err(ApiError::invalid(
                "/customer",
                Some(&contact.customer),
                "unknown customer (create the customer first)",
            ));
        }
        if index.contact_index.contains_key(&contact.external_id) {
            return Err(ApiError::conflict(format!(
                "contact '{}' already exists",
                contact.external_id
            )));
        }
        apply(
            &app,
            &caller,
            ChangeSet {
                contacts: vec![Change::Insert(contact.clone())],
                ..ChangeSet::default()
            },
        )
        .await?;
        Reply::created(
            format!("/api/v1/contacts/{}", segment(&contact.external_id)),
            dto::contact(&contact),
        )
    })
    .await
}

// --- invoices ------------------------------------------------------------

/// The aging bucket of an open invoice today, as the ledger view computes it.
fn bucket(aging: &AgingConfig, issue: Date, due: Date, today: Date) -> Option<String> {
    let from = match aging.basis {
        AgingBasis::DueDate => due,
        AgingBasis::IssueDate => issue,
    };
    let age = today.duration_since(from).as_secs() / 86_400;
    aging
        .buckets()
        .get(aging.bucket_of(age))
        .map(|b| b.0.clone())
}

/// Create an open invoice.
#[utoipa::path(post, path = "/api/v1/invoices", tag = "invoices", request_body = NewInvoice,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe: see the API guide")),
    responses((status = 201, description = "Created", body = dto::Invoice,
            headers(("Location" = String, description = "The new invoice's URL"))),
        (status = 409, description = "An invoice with this number exists", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn create_invoice(
    State(app): State<AppState>,
    caller: Caller,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Response {
    once(&app, &caller, &headers, &method, &uri, &body, || async {
        let input: NewInvoice = parse_json(&body)?;
        let (view, _) = view_and_index(&app, &caller).await?;
        let mut cells = Cells::new(RecordKind::Invoices);
        cells
            .text(Field::InvoiceNumber, "/number", Some(&input.number))
            .text(Field::CustomerId, "/customer", Some(&input.customer))
            .text(Field::IssueDate, "/issue_date", Some(&input.issue_date))
            .text(Field::DueDate, "/due_date", input.due_date.as_deref())
            .text(Field::Currency, "/currency", input.currency.as_deref())
            .text(Field::Total, "/total", Some(&input.total))
            .text(Field::Tax, "/tax", input.tax.as_deref())
            .text(Field::PoNumber, "/po_number", input.po_number.as_deref())
            .text(
                Field::ExternalId,
                "/external_id",
                input.external_id.as_deref(),
            )
            .flag(Field::Disputed, "/disputed", Some(input.disputed))
            .flag(Field::Paperless, "/paperless", input.paperless);
        let info = |key: &str| {
            view.customer(key)
                .map(|c| (c.currency, c.payment_terms_days))
        };
        let base = view.org.base_currency;
        let parsed = cells.read(view.today, |row| rows::invoice(row, &info, false, base))?;
        let invoice = parsed.invoice;
        if view.invoice_index.contains_key(&invoice.number) {
            return Err(ApiError::conflict(format!(
                "invoice '{}' already exists",
                invoice.number
            )));
        }
        apply(
            &app,
            &caller,
            ChangeSet {
                invoices: vec![Change::Insert(invoice.clone())],
                ..ChangeSet::default()
            },
        )
        .await?;
        let today = view.today;
        let open = invoice.total;
        let overdue = open > 0 && invoice.due_date < today;
        let row = InvoiceRow {
            index: 0,
            open,
            settled_on: None,
            state: if open == 0 {
                InvoiceState::Paid
            } else if overdue {
                InvoiceState::Overdue
            } else {
                InvoiceState::Open
            },
            days_overdue: if overdue {
                i64::from((today - invoice.due_date).get_days())
            } else {
                0
            },
            bucket: (open > 0)
                .then(|| {
                    bucket(
                        &app.config.summary.aging,
                        invoice.issue_date,
                        invoice.due_date,
                        today,
                    )
                })
                .flatten(),
            customer: 0,
        };
        Reply::created(
            format!("/api/v1/invoices/{}", segment(&invoice.number)),
            dto::invoice(&view, &invoice, &row),
        )
    })
    .await
}

// --- allocations -----------------------------------------------------------

/// What an allocation draws on, as the checks need it.
struct Drawn<'a> {
    kind: &'static str,
    key: &'a str,
    customer: &'a str,
    currency: Currency,
    on: Date,
    /// Not yet applied.
    available: i64,
}

/// One requested application of money to an invoice.
struct Wanted<'a> {
    /// JSON pointer prefix of the item ("/allocations/0", or "" for a
    /// top-level allocation).
    at: String,
    invoice: &'a str,
    amount: &'a str,
    applied_on: Option<&'a str>,
}

/// Checks requested allocations against the ledger like the importer does
/// (the invoice is the customer's, open, in the same currency; the amounts
/// fit its open balance and what is left of the payment or credit).
fn allocations(
    view: &LedgerView,
    index: &ApiIndex,
    errs: &mut Errors,
    from: &Drawn<'_>,
    wanted: &[Wanted<'_>],
    total_at: &str,
) -> Vec<DAllocation> {
    let mut out: Vec<DAllocation> = Vec::new();
    let source = match from.kind {
        "payment" => AllocationSource::Payment(from.key.to_string()),
        _ => AllocationSource::CreditNote(from.key.to_string()),
    };
    let mut total = 0i64;
    for w in wanted {
        let p = |f: &str| format!("{}/{f}", w.at);
        let Some(&i) = view.invoice_index.get(w.invoice) else {
            errs.add(&p("invoice"), Some(w.invoice), "unknown invoice");
            continue;
        };
        let inv = &view.invoices[i];
        let mut ok = true;
        if inv.customer != from.customer {
            errs.add(
                &p("invoice"),
                Some(w.invoice),
                format!(
                    "invoice {} is customer {}'s; this {} is customer {}'s",
                    inv.number, inv.customer, from.kind, from.customer
                ),
            );
            ok = false;
        }
        if inv.currency != from.currency {
            errs.add(
                &p("invoice"),
                Some(w.invoice),
                format!(
                    "invoice {} is in {} but the {} is in {}: an allocation must be in the invoice's currency",
                    inv.number, inv.currency, from.kind, from.currency
                ),
            );
            ok = false;
        }
        if inv.status != InvoiceStatus::Open {
            errs.add(
                &p("invoice"),
                Some(w.invoice),
                format!(
                    "invoice {} is {}",
                    inv.number,
                    inv.status.as_str().replace('_', " ")
                ),
            );
            ok = false;
        }
        let Some(amount) = errs.positive_amount(&p("amount"), w.amount, inv.currency) else {
            continue;
        };
        let applied_on = match w.applied_on {
            Some(raw) => {
                let Some(d) = errs.date(&p("applied_on"), raw) else {
                    continue;
                };
                if d < from.on {
                    errs.add(
                        &p("applied_on"),
                        Some(raw),
                        format!("is before the {} date {}", from.kind, from.on),
                    );
                    continue;
                }
                if d < inv.issue_date {
                    errs.add(
                        &p("applied_on"),
                        Some(raw),
                        format!(
                            "is before invoice {} was issued on {}",
                            inv.number, inv.issue_date
                        ),
                    );
                    continue;
                }
                d
            }
            // Money received before an invoice existed is applied when the
            // invoice is issued, as the importer does.
            None => from.on.max(inv.issue_date),
        };
        if !ok {
            continue;
        }
        let planned: i64 = out
            .iter()
            .filter(|a| a.invoice == inv.number)
            .map(|a| a.amount)
            .sum();
        let open =
            inv.total - index.invoice_applied.get(&inv.number).copied().unwrap_or(0) - planned;
        if amount > open {
            errs.add(
                &p("amount"),
                Some(w.amount),
                format!(
                    "more than invoice {}'s open balance of {}",
                    inv.number,
                    arflow_domain::money::format_minor(open.max(0), inv.currency)
                ),
            );
            continue;
        }
        total += amount;
        out.push(DAllocation {
            invoice: inv.number.clone(),
            source: source.clone(),
            amount,
            applied_on,
        });
    }
    if total > from.available {
        errs.add(
            total_at,
            None,
            format!(
                "the allocations total {} but only {} of the {} is unapplied",
                arflow_domain::money::format_minor(total, from.currency),
                arflow_domain::money::format_minor(from.available, from.currency),
                from.kind
            ),
        );
    }
    out
}

fn wanted(items: &[NewApplication]) -> Vec<Wanted<'_>> {
    items
        .iter()
        .enumerate()
        .map(|(i, a)| Wanted {
            at: format!("/allocations/{i}"),
            invoice: &a.invoice,
            amount: &a.amount,
            applied_on: a.applied_on.as_deref(),
        })
        .collect()
}

/// Create a credit note, optionally applied to invoices of its customer.
#[utoipa::path(post, path = "/api/v1/credit-notes", tag = "payments", request_body = NewCreditNote,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe: see the API guide")),
    responses((status = 201, description = "Created", body = dto::CreditNote,
            headers(("Location" = String, description = "The new credit note's URL"))),
        (status = 409, description = "A credit note with this number exists", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn create_credit_note(
    State(app): State<AppState>,
    caller: Caller,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Response {
    once(&app, &caller, &headers, &method, &uri, &body, || async {
        let input: NewCreditNote = parse_json(&body)?;
        let (view, index) = view_and_index(&app, &caller).await?;
        let mut cells = Cells::new(RecordKind::CreditNotes);
        cells
            .text(Field::CreditNoteNumber, "/number", Some(&input.number))
            .text(Field::CustomerId, "/customer", Some(&input.customer))
            .text(Field::IssueDate, "/issue_date", Some(&input.issue_date))
            .text(Field::Currency, "/currency", input.currency.as_deref())
            .text(Field::Total, "/total", Some(&input.total))
            .text(Field::Reason, "/reason", input.reason.as_deref())
            .text(
                Field::ExternalId,
                "/external_id",
                input.external_id.as_deref(),
            );
        let currency_of = |key: &str| view.customer(key).map(|c| c.currency);
        let base = view.org.base_currency;
        let (note, _) = cells.read(view.today, |row| rows::credit_note(row, &currency_of, base))?;
        if index.credit_index.contains_key(&note.number) {
            return Err(ApiError::conflict(format!(
                "credit note '{}' already exists",
                note.number
            )));
        }
        let mut errs = Errors::default();
        let drawn = Drawn {
            kind: "credit note",
            key: &note.number,
            customer: &note.customer,
            currency: note.currency,
            on: note.issue_date,
            available: note.total,
        };
        let allocs = allocations(
            &view,
            &index,
            &mut errs,
            &drawn,
            &wanted(&input.allocations),
            "/allocations",
        );
        errs.check()?;
        let applied = allocs.iter().map(|a| a.amount).sum();
        apply(
            &app,
            &caller,
            ChangeSet {
                credit_notes: vec![Change::Insert(note.clone())],
                allocations: allocs,
                ..ChangeSet::default()
            },
        )
        .await?;
        Reply::created(
            format!("/api/v1/credit-notes/{}", segment(&note.number)),
            dto::credit_note_with(&note, applied),
        )
    })
    .await
}

/// A fresh payment key when the request gives none.
fn new_payment_key() -> String {
    use rand::Rng as _;
    let n: u64 = rand::rng().random();
    format!("api-{n:016x}")
}

/// Record a payment, optionally applied to invoices of its customer.
#[utoipa::path(post, path = "/api/v1/payments", tag = "payments", request_body = NewPayment,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe: see the API guide")),
    responses((status = 201, description = "Created", body = dto::Payment,
            headers(("Location" = String, description = "The new payment's URL"))),
        (status = 409, description = "A payment with this key exists", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn create_payment(
    State(app): State<AppState>,
    caller: Caller,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Response {
    once(&app, &caller, &headers, &method, &uri, &body, || async {
        let input: NewPayment = parse_json(&body)?;
        let (view, index) = view_and_index(&app, &caller).await?;
        let mut cells = Cells::new(RecordKind::Payments);
        cells
            .text(Field::PaymentId, "/key", input.key.as_deref())
            .text(Field::CustomerId, "/customer", Some(&input.customer))
            .text(Field::ReceivedOn, "/received_on", Some(&input.received_on))
            .text(Field::Currency, "/currency", input.currency.as_deref())
            .text(Field::Amount, "/amount", Some(&input.amount))
            .text(Field::Method, "/method", input.method.as_deref())
            .text(Field::Reference, "/reference", input.reference.as_deref())
            .text(Field::PayerName, "/payer_name", input.payer_name.as_deref());
        let currency_of = |key: &str| view.customer(key).map(|c| c.currency);
        let base = view.org.base_currency;
        let (mut payment, _) =
            cells.read(view.today, |row| rows::payment(row, &currency_of, base))?;
        if payment.external_id.is_empty() {
            payment.external_id = new_payment_key();
        }
        if index.payment_index.contains_key(&payment.external_id) {
            return Err(ApiError::conflict(format!(
                "payment '{}' already exists",
                payment.external_id
            )));
        }
        let mut errs = Errors::default();
        let drawn = Drawn {
            kind: "payment",
            key: &payment.external_id,
            customer: &payment.customer,
            currency: payment.currency,
            on: payment.received_on,
            available: payment.amount,
        };
        let allocs = allocations(
            &view,
            &index,
            &mut errs,
            &drawn,
            &wanted(&input.allocations),
            "/allocations",
        );
        errs.check()?;
        let applied = allocs.iter().map(|a| a.amount).sum();
        apply(
            &app,
            &caller,
            ChangeSet {
                payments: vec![Change::Insert(payment.clone())],
                allocations: allocs,
                ..ChangeSet::default()
            },
        )
        .await?;
        Reply::created(
            format!("/api/v1/payments/{}", segment(&payment.external_id)),
            dto::payment_with(&payment, applied),
        )
    })
    .await
}

/// Apply part of a stored payment or credit note to an invoice.
#[utoipa::path(post, path = "/api/v1/allocations", tag = "payments", request_body = NewAllocation,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes a retried request safe: see the API guide")),
    responses((status = 201, description = "Created", body = dto::Allocation,
            headers(("Location" = String, description = "The new allocation's URL"))),
        (status = 409, description = "Another change used the balance first", body = ProblemBody, content_type = "application/problem+json")))]
pub async fn create_allocation(
    State(app): State<AppState>,
    caller: Caller,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    ApiBody(body): ApiBody,
) -> Response {
    once(&app, &caller, &headers, &method, &uri, &body, || async {
        let input: NewAllocation = parse_json(&body)?;
        let (view, index) = view_and_index(&app, &caller).await?;
        let mut errs = Errors::default();
        let drawn = match (input.payment.as_deref(), input.credit_note.as_deref()) {
            (Some(key), None) => match index.payment_index.get(key) {
                Some(&i) => {
                    let p = &view.payments[i];
                    Some(Drawn {
                        kind: "payment",
                        key: &p.external_id,
                        customer: &p.customer,
                        currency: p.currency,
                        on: p.received_on,
                        available: p.amount
                            - index
                                .payment_applied
                                .get(&p.external_id)
                                .copied()
                                .unwrap_or(0),
                    })
                }
                None => {
                    errs.add("/payment", Some(key), "unknown payment");
                    None
                }
            },
            (None, Some(number)) => match index.credit_index.get(number) {
                Some(&i) => {
                    let c = &view.credit_notes[i];
                    Some(Drawn {
                        kind: "credit note",
                        key: &c.number,
                        customer: &c.customer,
                        currency: c.currency,
                        on: c.issue_date,
                        available: c.total
                            - index.credit_applied.get(&c.number).copied().unwrap_or(0),
                    })
                }
                None => {
                    errs.add("/credit_note", Some(number), "unknown credit note");
                    None
                }
            },
            _ => {
                errs.add(
                    "/payment",
                    None,
                    "give exactly one of payment and credit_note",
                );
                None
            }
        };
        let allocs = match &drawn {
            Some(d) => allocations(
                &view,
                &index,
                &mut errs,
                d,
                &[Wanted {
                    at: String::new(),
                    invoice: &input.invoice,
                    amount: &input.amount,
                    applied_on: input.applied_on.as_deref(),
                }],
                "/amount",
            ),
            None => Vec::new(),
        };
        errs.check()?;
        let Some(a) = allocs.into_iter().next() else {
            return Err(ApiError::invalid(
                "/amount",
                Some(&input.amount),
                "nothing to allocate",
            ));
        };
        let currency = view.invoices[view.invoice_index[&a.invoice]].currency;
        apply(
            &app,
            &caller,
            ChangeSet {
                allocations: vec![a.clone()],
                ..ChangeSet::default()
            },
        )
        .await?;
        // The store numbers allocations: find the one just written.
        let org = caller.org;
        let wanted = a.clone();
        let id = app
            .blocking(move |store| {
                Ok(store
                    .allocations(org)?
                    .into_iter()
                    .rev()
                    .find(|s: &Stored<DAllocation>| s.record == wanted)
                    .map(|s| s.id))
            })
            .await?
            .unwrap_or(0);
        Reply::created(
            format!("/api/v1/allocations/{id}"),
            dto::allocation_in(id, &a, currency),
        )
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_percent_encoded() {
        assert_eq!(segment("INV-1"), "INV-1");
        assert_eq!(segment("A/B C"), "A%2FB%20C");
    }

    #[test]
    fn buckets_follow_the_aging_config() {
        let aging = AgingConfig::default();
        let today = jiff::civil::date(2026, 12, 3);
        let issue = jiff::civil::date(2026, 10, 1);
        assert_eq!(
            bucket(&aging, issue, jiff::civil::date(2026, 12, 10), today).as_deref(),
            Some("Current")
        );
        assert_eq!(
            bucket(&aging, issue, jiff::civil::date(2026, 11, 23), today).as_deref(),
            Some("1-30")
        );
    }
}
