//! Payment prediction wired to the store: what the pure predictor
//! (`arflow_domain::predict`) reads, loaded from the ledger and the dunning
//! records, and stored models (train, save, load, retrain on a schedule).
//!
//! The as-of rule holds here too: every fact handed to the predictor carries
//! the date it became known (a dispute its opening day, a reminder the day it
//! was sent, a promise the day it was made and, once known, the day it was
//! kept or broken), and the predictor uses none dated after its as-of date.

use std::collections::HashMap;

use arflow_domain::dunning::records::Scope;
use arflow_domain::fx::FxTable;
use arflow_domain::ledger::{BaseConverter, Ledger, LedgerFacts};
use arflow_domain::model::Organization;
use arflow_domain::predict::{
    DunningHistory, ExtraFacts, InvoiceAttributes, ModelCard, PaymentModel, PredictData,
    Promise as PromiseFact, PromiseOutcome, Reminder, TrainConfig, TrainSpec, train,
};
use arflow_store::{OutboxFilter, Store};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::DunningError;

/// A first model is trained automatically once this many invoices are settled.
pub const MIN_SETTLED_FOR_AUTO_TRAIN: usize = 50;
/// The worker retrains when the latest model is older than this.
pub const RETRAIN_AFTER: SignedDuration = SignedDuration::from_hours(7 * 24);

/// Everything prediction reads about one organization, owned.
pub struct PredictInputs {
    pub facts: LedgerFacts,
    pub fx: FxTable,
    pub extra: ExtraFacts,
    /// Invoice id → invoice number.
    pub invoice_numbers: HashMap<i64, String>,
    /// Customer id → (external id, name).
    pub customers: HashMap<i64, (String, String)>,
}

fn local_date(t: Timestamp, tz: &TimeZone) -> Date {
    tz.to_datetime(t).date()
}

impl PredictInputs {
    /// Loads the ledger and the dunning history known at the end of `today`
    /// (in the organization's zone).
    pub fn load(
        store: &dyn Store,
        org: &Organization,
        today: Date,
    ) -> Result<PredictInputs, DunningError> {
        let tz = TimeZone::get(&org.time_zone).map_err(|e| DunningError::TimeZone {
            zone: org.time_zone.clone(),
            message: e.to_string(),
        })?;
        let id = org.id;
        let facts = store.ledger_facts(id)?;
        let fx = FxTable::new(store.fx_rates(id)?);
        let invoices = store.invoices(id)?;
        let mut by_number: HashMap<String, i64> = HashMap::with_capacity(invoices.len());
        let mut invoice_numbers = HashMap::with_capacity(invoices.len());
        let mut disputed_on: HashMap<i64, Date> = HashMap::new();
        let mut paperless: HashMap<i64, Option<bool>> = HashMap::with_capacity(invoices.len());
        for inv in &invoices {
            by_number.insert(inv.record.number.clone(), inv.id);
            invoice_numbers.insert(inv.id, inv.record.number.clone());
            // A source's "disputed" flag has no date: known from issue on.
            if inv.record.disputed {
                disputed_on.insert(inv.id, inv.record.issue_date);
            }
            paperless.insert(inv.id, inv.record.paperless);
        }
        for d in store.disputes(id)? {
            let on = local_date(d.record.opened_at, &tz);
            if on > today {
                continue;
            }
            if let Some(&inv) = by_number.get(&d.record.invoice) {
                let e = disputed_on.entry(inv).or_insert(on);
                *e = (*e).min(on);
            }
        }
        let attributes: Vec<InvoiceAttributes> = invoices
            .iter()
            .map(|inv| InvoiceAttributes {
                invoice_id: inv.id,
                disputed_on: disputed_on.get(&inv.id).copied(),
                paperless: paperless.get(&inv.id).copied().flatten(),
            })
            .collect();

        // Reminders: messages actually sent, on the day they were sent.
        let mut reminders = Vec::new();
        for m in store.outbox(id, &OutboxFilter::default())? {
            let Some(sent_at) = m.record.sent_at else {
                continue;
            };
            let sent_on = local_date(sent_at, &tz);
            if sent_on > today {
                continue;
            }
            for mi in &m.record.invoices {
                if let Some(&inv) = by_number.get(&mi.number) {
                    reminders.push(Reminder {
                        invoice_id: inv,
                        sent_on,
                    });
                }
            }
        }

        // Promises: made on a day; kept on the day the invoice was settled
        // within the promise (plus grace), broken the day after the last day.
        let ledger = Ledger::new(&facts);
        let position: HashMap<i64, usize> = facts
            .invoices
            .iter()
            .enumerate()
            .map(|(i, f)| (f.id, i))
            .collect();
        let customer_ids: HashMap<&str, i64> = facts
            .customers
            .iter()
            .map(|c| (c.external_id.as_str(), c.id))
            .collect();
        let mut promises = Vec::new();
        for p in store.promises(id)? {
            let p = p.record;
            if p.cancelled_at.is_some() {
                continue;
            }
            let made_on = local_date(p.made_at, &tz);
            if made_on > today {
                continue;
            }
            let targets: Vec<usize> = match &p.scope {
                Scope::Invoice(n) => by_number
                    .get(n)
                    .and_then(|inv| position.get(inv))
                    .copied()
                    .into_iter()
                    .collect(),
                Scope::Customer(c) => match customer_ids.get(c.as_str()) {
                    Some(&cid) => facts
                        .invoices
                        .iter()
                        .enumerate()
                        .filter(|(i, f)| f.customer_id == cid && ledger.open_on(*i, made_on) > 0)
                        .map(|(i, _)| i)
                        .collect(),
                    None => Vec::new(),
                },
            };
            let last = p.last_day();
            for i in targets {
                let settled = ledger.settled_on(i).filter(|&s| s <= today);
                let outcome = match settled {
                    Some(s) if s <= last => Some((s.max(made_on), PromiseOutcome::Kept)),
                    _ if last < today => last
                        .tomorrow()
                        .ok()
                        .map(|d| (d.max(made_on), PromiseOutcome::Broken)),
                    _ => None,
                };
                promises.push(PromiseFact {
                    invoice_id: facts.invoices[i].id,
                    made_on,
                    promised_for: p.promised_on,
                    outcome,
                });
            }
        }
        drop(ledger);
        let customers = facts
            .customers
            .iter()
            .map(|c| (c.id, (c.external_id.clone(), c.name.clone())))
            .collect();
        Ok(PredictInputs {
            facts,
            fx,
            extra: ExtraFacts {
                invoices: attributes,
                dunning: DunningHistory {
                    reminders,
                    promises,
                },
            },
            invoice_numbers,
            customers,
        })
    }

    pub fn conv(&self) -> BaseConverter<'_> {
        BaseConverter {
            base: self.facts.base_currency,
            table: &self.fx,
        }
    }

    pub fn data(&self) -> Result<PredictData, DunningError> {
        let ledger = Ledger::new(&self.facts);
        Ok(PredictData::new(&ledger, &self.conv(), &self.extra)?)
    }

    pub fn invoice_number(&self, id: i64) -> &str {
        self.invoice_numbers.get(&id).map_or("?", String::as_str)
    }

    pub fn customer_key(&self, id: i64) -> &str {
        self.customers.get(&id).map_or("?", |c| c.0.as_str())
    }

    pub fn customer_name(&self, id: i64) -> &str {
        self.customers.get(&id).map_or("?", |c| c.1.as_str())
    }
}

/// Invoices settled by the end of `as_of`: what training learns from.
pub fn settled_count(data: &PredictData, as_of: Date) -> usize {
    TrainSpec::settled_by(data, as_of).invoices.len()
}

/// Trains on everything settled by the end of `as_of`.
pub fn train_as_of(data: &PredictData, as_of: Date) -> Result<PaymentModel, DunningError> {
    let spec = TrainSpec::settled_by(data, as_of);
    Ok(train(data, &spec, &TrainConfig::default())?)
}

/// Stores a trained model as the organization's next version.
pub fn save_model(
    store: &dyn Store,
    org: i64,
    model: &PaymentModel,
    actor: &str,
    now: Timestamp,
) -> Result<i64, DunningError> {
    let card = serde_json::to_string(&model.card).map_err(|e| {
        DunningError::Predict(arflow_domain::predict::PredictError::Json(e.to_string()))
    })?;
    let json = model.to_json()?;
    Ok(store.save_model(org, &card, &json, actor, now)?)
}

/// A model loaded from the store.
pub struct LoadedModel {
    pub version: i64,
    pub created_at: Timestamp,
    pub model: PaymentModel,
}

/// The organization's latest model, if any.
pub fn latest_model(store: &dyn Store, org: i64) -> Result<Option<LoadedModel>, DunningError> {
    let Some(stored) = store.latest_model(org)? else {
        return Ok(None);
    };
    let model = PaymentModel::from_json(&stored.model)?;
    Ok(Some(LoadedModel {
        version: stored.version,
        created_at: stored.created_at,
        model,
    }))
}

/// Parses a stored card.
pub fn parse_card(json: &str) -> Result<ModelCard, DunningError> {
    serde_json::from_str(json).map_err(|e| {
        DunningError::Predict(arflow_domain::predict::PredictError::Json(e.to_string()))
    })
}

/// What [`retrain_if_due`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retrain {
    Trained { version: i64, invoices: usize },
    UpToDate { version: i64 },
    NotEnoughHistory { settled: usize },
}

/// The worker's schedule: trains and stores a model when the latest one is
/// older than [`RETRAIN_AFTER`], or when there is none and at least
/// [`MIN_SETTLED_FOR_AUTO_TRAIN`] invoices are settled.
pub fn retrain_if_due(
    store: &dyn Store,
    org: &Organization,
    now: Timestamp,
    actor: &str,
) -> Result<Retrain, DunningError> {
    let latest = store.models(org.id)?.into_iter().next();
    if let Some(m) = &latest
        && now.duration_since(m.created_at) <= RETRAIN_AFTER
    {
        return Ok(Retrain::UpToDate { version: m.version });
    }
    let tz = TimeZone::get(&org.time_zone).map_err(|e| DunningError::TimeZone {
        zone: org.time_zone.clone(),
        message: e.to_string(),
    })?;
    let today = local_date(now, &tz);
    let inputs = PredictInputs::load(store, org, today)?;
    let data = inputs.data()?;
    let settled = settled_count(&data, today);
    if settled < MIN_SETTLED_FOR_AUTO_TRAIN {
        return Ok(Retrain::NotEnoughHistory { settled });
    }
    let model = train_as_of(&data, today)?;
    let version = save_model(store, org.id, &model, actor, now)?;
    Ok(Retrain::Trained {
        version,
        invoices: model.card.invoices,
    })
}
