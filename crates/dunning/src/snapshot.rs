//! Everything the planner reads, loaded from the store in one place.

use std::collections::HashMap;

use arflow_domain::dunning::planner::{Plan, PlanInput, plan};
use arflow_domain::dunning::records::{
    Bounce, Charge, Dispute, DunningSettings, Hold, PolicyAssignment, Promise, StepRecord,
};
use arflow_domain::dunning::{DEFAULT_POLICY_TOML, Policy, parse_policy};
use arflow_domain::model::{Contact, Customer, Invoice, Organization, Stored};
use arflow_store::Store;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::DunningError;

/// How far back contact hygiene looks (the weekly cap needs 7 days, the gap
/// may be configured longer).
fn contact_log_horizon(settings: &DunningSettings) -> SignedDuration {
    let days = i64::from(settings.min_gap_days.max(7)) + 1;
    SignedDuration::from_hours(days * 24)
}

/// The organization's dunning state at one instant, owned.
pub struct Snapshot {
    pub org: Organization,
    pub org_tz: TimeZone,
    pub now: Timestamp,
    pub settings: DunningSettings,
    pub policies: HashMap<String, Policy>,
    pub assignments: Vec<PolicyAssignment>,
    pub customers: Vec<Customer>,
    pub contacts: Vec<Contact>,
    pub invoices: Vec<Invoice>,
    /// Per invoice (same index): open amount and dated allocations.
    pub open: Vec<i64>,
    pub allocations: Vec<Vec<(jiff::civil::Date, i64)>>,
    pub holds: Vec<Stored<Hold>>,
    pub disputes: Vec<Stored<Dispute>>,
    pub promises: Vec<Stored<Promise>>,
    pub steps: Vec<StepRecord>,
    pub contact_log: Vec<(String, Timestamp)>,
    pub bounces: Vec<Bounce>,
    pub charges: Vec<Stored<Charge>>,
    /// Position of each customer in `customers`, by external id.
    customer_index: HashMap<String, usize>,
}

/// The organization's policies by name; the shipped default stands in for
/// `default` until one is stored.
pub fn load_policies(store: &dyn Store, org: i64) -> Result<HashMap<String, Policy>, DunningError> {
    let mut policies = HashMap::new();
    for stored in store.policies(org)? {
        let policy = parse_policy(&stored.source, &format!("stored policy '{}'", stored.name))
            .map_err(|errors| DunningError::StoredPolicy {
                name: stored.name.clone(),
                errors: errors.iter().map(ToString::to_string).collect(),
            })?;
        policies.insert(stored.name, policy);
    }
    if !policies.contains_key("default") {
        let policy =
            parse_policy(DEFAULT_POLICY_TOML, "policies/default.toml").map_err(|errors| {
                DunningError::StoredPolicy {
                    name: "default".into(),
                    errors: errors.iter().map(ToString::to_string).collect(),
                }
            })?;
        policies.insert("default".to_string(), policy);
    }
    Ok(policies)
}

impl Snapshot {
    pub fn load(
        store: &dyn Store,
        org: &Organization,
        now: Timestamp,
    ) -> Result<Snapshot, DunningError> {
        let org_tz = TimeZone::get(&org.time_zone).map_err(|e| DunningError::TimeZone {
            zone: org.time_zone.clone(),
            message: e.to_string(),
        })?;
        let id = org.id;
        let settings = store.dunning_settings(id)?;
        let invoices: Vec<Invoice> = store.invoices(id)?.into_iter().map(|s| s.record).collect();
        let index: HashMap<&str, usize> = invoices
            .iter()
            .enumerate()
            .map(|(i, inv)| (inv.number.as_str(), i))
            .collect();
        let mut allocations: Vec<Vec<(jiff::civil::Date, i64)>> = vec![Vec::new(); invoices.len()];
        for a in store.allocations(id)? {
            if let Some(&i) = index.get(a.invoice.as_str()) {
                allocations[i].push((a.applied_on, a.amount));
            }
        }
        let mut open = Vec::with_capacity(invoices.len());
        for (inv, allocs) in invoices.iter().zip(allocations.iter_mut()) {
            allocs.sort_unstable();
            let paid: i64 = allocs.iter().map(|(_, a)| *a).sum();
            open.push(inv.total - paid);
        }
        drop(index);
        let since = now
            .checked_sub(contact_log_horizon(&settings))
            .unwrap_or(now);
        let customers: Vec<Customer> = store.customers(id)?.into_iter().map(|s| s.record).collect();
        let customer_index = customers
            .iter()
            .enumerate()
            .map(|(i, c)| (c.external_id.clone(), i))
            .collect();
        Ok(Snapshot {
            org: org.clone(),
            org_tz,
            now,
            policies: load_policies(store, id)?,
            assignments: store.policy_assignments(id)?,
            customers,
            customer_index,
            contacts: store.contacts(id)?.into_iter().map(|s| s.record).collect(),
            invoices,
            open,
            allocations,
            holds: store.holds(id)?,
            disputes: store.disputes(id)?,
            promises: store.promises(id)?,
            steps: store.step_records(id)?,
            contact_log: store.contact_log(id, since)?,
            bounces: store.bounces(id)?,
            charges: store.charges(id)?,
            settings,
        })
    }

    /// Runs the planner over the snapshot.
    pub fn plan(&self) -> Result<Plan<'_>, DunningError> {
        Ok(plan(&PlanInput {
            now: self.now,
            org_time_zone: &self.org_tz,
            settings: &self.settings,
            policies: &self.policies,
            assignments: &self.assignments,
            customers: &self.customers,
            contacts: &self.contacts,
            invoices: &self.invoices,
            open: &self.open,
            allocations: &self.allocations,
            holds: &self.holds,
            disputes: &self.disputes,
            promises: &self.promises,
            steps_done: &self.steps,
            contact_log: &self.contact_log,
            bounces: &self.bounces,
            charges: &self.charges,
        })?)
    }

    pub fn customer(&self, external_id: &str) -> Option<&Customer> {
        self.customer_index
            .get(external_id)
            .map(|&i| &self.customers[i])
    }
}
