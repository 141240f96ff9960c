//! Storage for payment-prediction models: versioned per organization, each
//! with its model card. The store keeps the JSON text the domain writes
//! (`PaymentModel::to_json`, the card serialized) and never interprets it.

use jiff::Timestamp;
use serde::Serialize;

use crate::StoreError;
use crate::events::NewEvent;

/// A stored model with its card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredModel {
    pub version: i64,
    pub created_at: Timestamp,
    pub card: String,
    pub model: String,
}

/// A stored model's card, without the (large) model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelInfo {
    pub version: i64,
    pub created_at: Timestamp,
    pub card: String,
}

pub trait PredictStore: Send + Sync {
    /// Stores a model as the organization's next version (1, 2, ...) and logs
    /// `model.trained` with the card in the event data. Returns the version.
    fn save_model(
        &self,
        org: i64,
        card_json: &str,
        model_json: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<i64, StoreError>;

    /// The highest version, if any model was stored.
    fn latest_model(&self, org: i64) -> Result<Option<StoredModel>, StoreError>;

    /// Every stored model's card, newest first.
    fn models(&self, org: i64) -> Result<Vec<ModelInfo>, StoreError>;
}

/// The `model.trained` event of version `version`.
pub(crate) fn model_trained(version: i64, card_json: &str) -> NewEvent {
    let card: serde_json::Value =
        serde_json::from_str(card_json).unwrap_or(serde_json::Value::String(card_json.into()));
    let invoices = card.get("invoices").and_then(|v| v.as_u64());
    let summary = match invoices {
        Some(n) => format!("payment model version {version} trained on {n} settled invoices"),
        None => format!("payment model version {version} trained"),
    };
    NewEvent {
        kind: "model.trained",
        entity_type: "model",
        entity_key: version.to_string(),
        customer: None,
        summary,
        data: serde_json::json!({ "version": version, "card": card }),
    }
}
