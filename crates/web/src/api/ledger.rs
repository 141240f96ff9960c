//! Reading the ledger: customers, contacts, invoices, credit notes,
//! payments and allocations, from the in-memory ledger view (`cache.rs`) and
//! its API index (`index.rs`); nothing here reads the whole store per request.

use std::sync::Arc;

use arflow_domain::money::Currency;
use axum::Json;
use axum::extract::State;
use jiff::civil::Date;
use serde::Deserialize;
use utoipa::IntoParams;

use super::dto::{self, Allocation, Contact, CreditNote, Customer, Invoice, Payment};
use super::extract::{ApiError, ApiPath, ApiQuery};
use super::index::{ApiIndex, index_of, state_slot};
use super::page::{self, List, Page};
use crate::AppState;
use crate::access::Caller;
use crate::cache::{InvoiceState, LedgerView};
use crate::pages::ledger_view_of;

pub(crate) async fn view_and_index(
    app: &AppState,
    caller: &Caller,
) -> Result<(Arc<LedgerView>, Arc<ApiIndex>), ApiError> {
    let view = ledger_view_of(app, caller.org).await?;
    let index = index_of(&view);
    Ok((view, index))
}

/// The items of an id-sorted slice after `after`.
pub(crate) fn after_id<T>(items: &[T], id: impl Fn(&T) -> i64, after: Option<i64>) -> &[T] {
    match after {
        Some(a) => &items[items.partition_point(|x| id(x) <= a)..],
        None => items,
    }
}

/// Case-insensitive "contains" for filters (`needle` is lower-cased).
pub(crate) fn contains(haystack: &str, needle: &str) -> bool {
    if haystack.is_ascii() && needle.is_ascii() {
        let (h, n) = (haystack.as_bytes(), needle.as_bytes());
        n.is_empty() || h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n))
    } else {
        haystack.to_lowercase().contains(needle)
    }
}

pub(crate) fn parse_date_param(name: &str, raw: Option<&str>) -> Result<Option<Date>, ApiError> {
    raw.map(|r| {
        arflow_import::values::parse_date(r.trim(), &[super::validate::iso()])
            .map_err(|e| ApiError::invalid(name, Some(r), e))
    })
    .transpose()
}

fn parse_currency_param(raw: Option<&str>) -> Result<Option<Currency>, ApiError> {
    raw.map(|r| {
        arflow_import::values::parse_currency(r.trim())
            .map_err(|e| ApiError::invalid("currency", Some(r), e))
    })
    .transpose()
}

fn non_empty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

// --- customers -----------------------------------------------------------

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CustomerQuery {
    /// Text in the key or the name (case-insensitive).
    q: Option<String>,
    /// Only customers of this segment.
    segment: Option<String>,
    /// Page size, 1 to 500 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// List customers (by creation), with their open and overdue balances.
#[utoipa::path(get, path = "/api/v1/customers", tag = "customers", params(CustomerQuery),
    responses((status = 200, description = "A page of customers", body = dto::CustomerPage)))]
pub async fn list_customers(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<CustomerQuery>,
) -> Result<Json<Page<Customer>>, ApiError> {
    let limit = page::limit(q.limit.as_deref())?;
    let after = page::id_cursor(List::Customers, q.cursor.as_deref())?;
    let text = non_empty(&q.q).map(str::to_lowercase);
    let segment = non_empty(&q.segment).map(str::to_string);
    let (view, index) = view_and_index(&app, &caller).await?;
    let items = after_id(&view.customers, |c| c.id, after);
    let matching = items.iter().enumerate().filter(|(_, c)| {
        segment
            .as_deref()
            .is_none_or(|s| c.segment.as_deref() == Some(s))
            && text
                .as_deref()
                .is_none_or(|t| contains(&c.external_id, t) || contains(&c.name, t))
    });
    let offset = view.customers.len() - items.len();
    Ok(Json(page::by_id(
        List::Customers,
        matching,
        |(_, c)| c.id,
        None,
        limit,
        |(i, c)| dto::customer(c, index.customer_stats.get(offset + i)),
    )))
}

/// One customer.
#[utoipa::path(get, path = "/api/v1/customers/{key}", tag = "customers",
    params(("key" = String, Path, description = "The customer's key")),
    responses((status = 200, description = "The customer", body = Customer),
        (status = 404, description = "No such customer in your organization", body = crate::problem::ProblemBody, content_type = "application/problem+json")))]
pub async fn get_customer(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(key): ApiPath,
) -> Result<Json<Customer>, ApiError> {
    let (view, index) = view_and_index(&app, &caller).await?;
    let i = *view
        .customer_index
        .get(&key)
        .ok_or_else(|| ApiError::not_found(format!("customer '{key}' was not found")))?;
    Ok(Json(dto::customer(
        &view.customers[i],
        index.customer_stats.get(i),
    )))
}

// --- contacts ------------------------------------------------------------

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ContactQuery {
    /// Only contacts of this customer (key).
    customer: Option<String>,
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    cursor: Option<String>,
}

/// List contacts (by creation).
#[utoipa::path(get, path = "/api/v1/contacts", tag = "customers", params(ContactQuery),
    responses((status = 200, description = "A page of contacts", body = dto::ContactPage)))]
pub async fn list_contacts(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ContactQuery>,
) -> Result<Json<Page<Contact>>, ApiError> {
    let limit = page::limit(q.limit.as_deref())?;
    let after = page::id_cursor(List::Contacts, q.cursor.as_deref())?;
    let customer = non_empty(&q.customer).map(str::to_string);
    let (view, _) = view_and_index(&app, &caller).await?;
    let items = after_id(&view.contacts, |c| c.id, after)
        .iter()
        .filter(|c| customer.as_deref().is_none_or(|k| c.customer == k));
    Ok(Json(page::by_id(
        List::Contacts,
        items,
        |c| c.id,
        None,
        limit,
        |c| dto::contact(c),
    )))
}

/// One contact.
#[utoipa::path(get, path = "/api/v1/contacts/{key}", tag = "customers",
    params(("key" = String, Path, description = "The contact's key")),
    responses((status = 200, description = "The contact", body = Contact),
        (status = 404, description = "No such contact in your organization", body = crate::problem::ProblemBody, content_type = "application/problem+json")))]
pub async fn get_contact(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(key): ApiPath,
) -> Result<Json<Contact>, ApiError> {
    let (view, index) = view_and_index(&app, &caller).await?;
    let i = *index
        .contact_index
        .get(&key)
        .ok_or_else(|| ApiError::not_found(format!("contact '{key}' was not found")))?;
    Ok(Json(dto::contact(&view.contacts[i])))
}

// --- invoices ------------------------------------------------------------

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InvoiceQuery {
    /// Today's state, one or a comma-separated list of open, overdue, paid,
    /// void, written_off.
    #[param(example = "overdue")]
    status: Option<String>,
    /// Only invoices of this customer (key).
    customer: Option<String>,
    /// Only invoices in this currency (ISO 4217).
    currency: Option<String>,
    /// Only invoices due before this day (exclusive).
    #[param(value_type = Option<String>, format = Date)]
    due_before: Option<String>,
    /// Only invoices due after this day (exclusive).
    #[param(value_type = Option<String>, format = Date)]
    due_after: Option<String>,
    /// Text in the number, the customer's key or name, or the PO number
    /// (case-insensitive).
    q: Option<String>,
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    cursor: Option<String>,
}

fn parse_states(raw: Option<&str>) -> Result<Option<[bool; 5]>, ApiError> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let mut want = [false; 5];
    for part in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let s = InvoiceState::parse(part).ok_or_else(|| {
            ApiError::invalid(
                "status",
                Some(raw),
                format!("unknown status '{part}' (expected open, overdue, paid, void or written_off, comma-separated)"),
            )
        })?;
        want[state_slot(s)] = true;
    }
    Ok(Some(want))
}

/// Merges ascending position lists, starting at `from`, below `to`.
struct Merge<'a> {
    lists: Vec<&'a [u32]>,
}

impl<'a> Merge<'a> {
    fn new(lists: impl IntoIterator<Item = &'a [u32]>, from: usize, to: usize) -> Merge<'a> {
        Merge {
            lists: lists
                .into_iter()
                .map(|l| {
                    let a = l.partition_point(|&p| (p as usize) < from);
                    let b = l.partition_point(|&p| (p as usize) < to);
                    &l[a..b.max(a)]
                })
                .filter(|l| !l.is_empty())
                .collect(),
        }
    }
}

impl Iterator for Merge<'_> {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        let (k, _) = self
            .lists
            .iter()
            .enumerate()
            .filter_map(|(k, l)| l.first().map(|p| (k, *p)))
            .min_by_key(|(_, p)| *p)?;
        let p = self.lists[k][0];
        self.lists[k] = &self.lists[k][1..];
        Some(p as usize)
    }
}

/// List invoices sorted by due date, then number, with today's open balance
/// and state.
#[utoipa::path(get, path = "/api/v1/invoices", tag = "invoices", params(InvoiceQuery),
    responses((status = 200, description = "A page of invoices", body = dto::InvoicePage)))]
pub async fn list_invoices(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<InvoiceQuery>,
) -> Result<Json<Page<Invoice>>, ApiError> {
    let limit = page::limit(q.limit.as_deref())?;
    let states = parse_states(q.status.as_deref())?;
    let currency = parse_currency_param(non_empty(&q.currency))?;
    let due_before = parse_date_param("due_before", non_empty(&q.due_before))?;
    let due_after = parse_date_param("due_after", non_empty(&q.due_after))?;
    let after = page::invoice_cursor(q.cursor.as_deref())?;
    let text = non_empty(&q.q).map(str::to_lowercase);
    let (view, index) = view_and_index(&app, &caller).await?;
    let rows = &view.rows;
    let inv = |pos: usize| &view.invoices[rows[pos].index];

    let mut from = match &after {
        Some((due, number)) => rows.partition_point(|r| {
            let i = &view.invoices[r.index];
            (i.due_date, i.number.as_str()) <= (*due, number.as_str())
        }),
        None => 0,
    };
    if let Some(d) = due_after {
        from = from.max(rows.partition_point(|r| view.invoices[r.index].due_date <= d));
    }
    let to = match due_before {
        Some(d) => rows.partition_point(|r| view.invoices[r.index].due_date < d),
        None => rows.len(),
    };
    let empty: &[u32] = &[];
    let positions: Box<dyn Iterator<Item = usize> + '_> = match non_empty(&q.customer) {
        Some(key) => {
            let list = view
                .customer_index
                .get(key)
                .map(|&c| index.by_customer[c].as_slice())
                .unwrap_or(empty);
            Box::new(Merge::new([list], from, to))
        }
        None => match states {
            Some(want) => Box::new(Merge::new(
                (0..5)
                    .filter(|&s| want[s])
                    .map(|s| index.by_state[s].as_slice()),
                from,
                to,
            )),
            None => Box::new(from..to.max(from)),
        },
    };
    let mut data = Vec::with_capacity(limit.min(64));
    let mut last = None;
    let mut more = false;
    for pos in positions {
        let row = &rows[pos];
        let i = inv(pos);
        if states.is_some_and(|w| !w[state_slot(row.state)])
            || currency.is_some_and(|c| i.currency != c)
        {
            continue;
        }
        if let Some(t) = text.as_deref() {
            let name = view
                .customer(&i.customer)
                .map(|c| c.name.as_str())
                .unwrap_or("");
            if !(contains(&i.number, t)
                || contains(&i.customer, t)
                || contains(name, t)
                || i.po_number.as_deref().is_some_and(|p| contains(p, t)))
            {
                continue;
            }
        }
        if data.len() == limit {
            more = true;
            break;
        }
        last = Some(pos);
        data.push(dto::invoice(&view, i, row));
    }
    let next_cursor = match (more, last) {
        (true, Some(pos)) => {
            let i = inv(pos);
            Some(page::encode(
                List::Invoices,
                &page::invoice_key(i.due_date, &i.number),
            ))
        }
        _ => None,
    };
    Ok(Json(Page { data, next_cursor }))
}

/// One invoice, with today's open balance and state.
#[utoipa::path(get, path = "/api/v1/invoices/{number}", tag = "invoices",
    params(("number" = String, Path, description = "The invoice number")),
    responses((status = 200, description = "The invoice", body = Invoice),
        (status = 404, description = "No such invoice in your organization", body = crate::problem::ProblemBody, content_type = "application/problem+json")))]
pub async fn get_invoice(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(number): ApiPath,
) -> Result<Json<Invoice>, ApiError> {
    let (view, index) = view_and_index(&app, &caller).await?;
    let i = *view
        .invoice_index
        .get(&number)
        .ok_or_else(|| ApiError::not_found(format!("invoice '{number}' was not found")))?;
    let row = &view.rows[index.row_of[i] as usize];
    Ok(Json(dto::invoice(&view, &view.invoices[i], row)))
}

// --- credit notes and payments ---------------------------------------------

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CustomerItemQuery {
    /// Only those of this customer (key).
    customer: Option<String>,
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    cursor: Option<String>,
}

/// List credit notes (by creation), with how much of each is applied.
#[utoipa::path(get, path = "/api/v1/credit-notes", tag = "payments", params(CustomerItemQuery),
    responses((status = 200, description = "A page of credit notes", body = dto::CreditNotePage)))]
pub async fn list_credit_notes(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<CustomerItemQuery>,
) -> Result<Json<Page<CreditNote>>, ApiError> {
    let limit = page::limit(q.limit.as_deref())?;
    let after = page::id_cursor(List::CreditNotes, q.cursor.as_deref())?;
    let customer = non_empty(&q.customer).map(str::to_string);
    let (view, index) = view_and_index(&app, &caller).await?;
    let items = after_id(&view.credit_notes, |c| c.id, after)
        .iter()
        .filter(|c| customer.as_deref().is_none_or(|k| c.customer == k));
    Ok(Json(page::by_id(
        List::CreditNotes,
        items,
        |c| c.id,
        None,
        limit,
        |c| dto::credit_note(c, &index),
    )))
}

/// One credit note.
#[utoipa::path(get, path = "/api/v1/credit-notes/{number}", tag = "payments",
    params(("number" = String, Path, description = "The credit note number")),
    responses((status = 200, description = "The credit note", body = CreditNote),
        (status = 404, description = "No such credit note in your organization", body = crate::problem::ProblemBody, content_type = "application/problem+json")))]
pub async fn get_credit_note(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(number): ApiPath,
) -> Result<Json<CreditNote>, ApiError> {
    let (view, index) = view_and_index(&app, &caller).await?;
    let i = *index
        .credit_index
        .get(&number)
        .ok_or_else(|| ApiError::not_found(format!("credit note '{number}' was not found")))?;
    Ok(Json(dto::credit_note(&view.credit_notes[i], &index)))
}

/// List payments (by creation), with how much of each is applied.
#[utoipa::path(get, path = "/api/v1/payments", tag = "payments", params(CustomerItemQuery),
    responses((status = 200, description = "A page of payments", body = dto::PaymentPage)))]
pub async fn list_payments(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<CustomerItemQuery>,
) -> Result<Json<Page<Payment>>, ApiError> {
    let limit = page::limit(q.limit.as_deref())?;
    let after = page::id_cursor(List::Payments, q.cursor.as_deref())?;
    let customer = non_empty(&q.customer).map(str::to_string);
    let (view, index) = view_and_index(&app, &caller).await?;
    let items = after_id(&view.payments, |p| p.id, after)
        .iter()
        .filter(|p| customer.as_deref().is_none_or(|k| p.customer == k));
    Ok(Json(page::by_id(
        List::Payments,
        items,
        |p| p.id,
        None,
        limit,
        |p| dto::payment(p, &index),
    )))
}

/// One payment.
#[utoipa::path(get, path = "/api/v1/payments/{key}", tag = "payments",
    params(("key" = String, Path, description = "The payment's key")),
    responses((status = 200, description = "The payment", body = Payment),
        (status = 404, description = "No such payment in your organization", body = crate::problem::ProblemBody, content_type = "application/problem+json")))]
pub async fn get_payment(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(key): ApiPath,
) -> Result<Json<Payment>, ApiError> {
    let (view, index) = view_and_index(&app, &caller).await?;
    let i = *index
        .payment_index
        .get(&key)
        .ok_or_else(|| ApiError::not_found(format!("payment '{key}' was not found")))?;
    Ok(Json(dto::payment(&view.payments[i], &index)))
}

// --- allocations -----------------------------------------------------------

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AllocationQuery {
    /// Only allocations to this invoice (number).
    invoice: Option<String>,
    /// Only allocations of this payment (key).
    payment: Option<String>,
    /// Only allocations of this credit note (number).
    credit_note: Option<String>,
    #[param(value_type = Option<u32>, minimum = 1, maximum = 500)]
    limit: Option<String>,
    cursor: Option<String>,
}

/// List allocations (by creation): parts of payments and credit notes
/// applied to invoices.
#[utoipa::path(get, path = "/api/v1/allocations", tag = "payments", params(AllocationQuery),
    responses((status = 200, description = "A page of allocations", body = dto::AllocationPage)))]
pub async fn list_allocations(
    State(app): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AllocationQuery>,
) -> Result<Json<Page<Allocation>>, ApiError> {
    use arflow_domain::model::AllocationSource;
    let limit = page::limit(q.limit.as_deref())?;
    let after = page::id_cursor(List::Allocations, q.cursor.as_deref())?;
    let invoice = non_empty(&q.invoice).map(str::to_string);
    let payment = non_empty(&q.payment).map(str::to_string);
    let credit = non_empty(&q.credit_note).map(str::to_string);
    let (view, _) = view_and_index(&app, &caller).await?;
    let items = after_id(&view.allocations, |a| a.id, after)
        .iter()
        .filter(|a| {
            invoice.as_deref().is_none_or(|n| a.invoice == n)
                && payment
                    .as_deref()
                    .is_none_or(|k| matches!(&a.source, AllocationSource::Payment(p) if p == k))
                && credit
                    .as_deref()
                    .is_none_or(|k| matches!(&a.source, AllocationSource::CreditNote(c) if c == k))
        });
    Ok(Json(page::by_id(
        List::Allocations,
        items,
        |a| a.id,
        None,
        limit,
        |a| dto::allocation(&view, a),
    )))
}

/// One allocation.
#[utoipa::path(get, path = "/api/v1/allocations/{id}", tag = "payments",
    params(("id" = i64, Path, description = "The allocation's id")),
    responses((status = 200, description = "The allocation", body = Allocation),
        (status = 404, description = "No such allocation in your organization", body = crate::problem::ProblemBody, content_type = "application/problem+json")))]
pub async fn get_allocation(
    State(app): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath,
) -> Result<Json<Allocation>, ApiError> {
    let missing = || ApiError::not_found(format!("allocation '{id}' was not found"));
    let id: i64 = id.parse().map_err(|_| missing())?;
    let (view, _) = view_and_index(&app, &caller).await?;
    let i = view
        .allocations
        .binary_search_by_key(&id, |a| a.id)
        .map_err(|_| missing())?;
    Ok(Json(dto::allocation(&view, &view.allocations[i])))
}
