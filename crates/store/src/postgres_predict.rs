//! PostgreSQL implementation of [`PredictStore`].

use jiff::Timestamp;

use crate::StoreError;
use crate::postgres::{PostgresStore, g, map_err};
use crate::postgres_dunning::{insert_event, query, ts, ts_col};
use crate::predict::{ModelInfo, PredictStore, StoredModel, model_trained};

impl PredictStore for PostgresStore {
    fn save_model(
        &self,
        org: i64,
        card_json: &str,
        model_json: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(map_err)?;
        // Locks the organization's row: concurrent trainings take turns, so
        // each gets the next version rather than a unique-key failure.
        let found: Vec<i64> = query(
            &mut tx,
            "SELECT id FROM organizations WHERE id = $1 FOR UPDATE",
            &[&org],
            |r| g(r, 0),
        )?;
        if found.is_empty() {
            return Err(StoreError::NotFound {
                entity: "organization",
                id: org,
            });
        }
        let last: Vec<Option<i64>> = query(
            &mut tx,
            "SELECT MAX(version) FROM models WHERE org_id = $1",
            &[&org],
            |r| g(r, 0),
        )?;
        let version = last.into_iter().flatten().next().unwrap_or(0) + 1;
        let created_at = ts(now)?;
        tx.execute(
            "INSERT INTO models (org_id, version, created_at, card, model) VALUES ($1, $2, $3, $4, $5)",
            &[&org, &version, &created_at, &card_json, &model_json],
        )
        .map_err(map_err)?;
        insert_event(&mut tx, org, actor, now, model_trained(version, card_json))?;
        tx.commit().map_err(map_err)?;
        Ok(version)
    }

    fn latest_model(&self, org: i64) -> Result<Option<StoredModel>, StoreError> {
        let mut conn = self.conn()?;
        Ok(query(
            &mut *conn,
            "SELECT version, created_at, card, model FROM models WHERE org_id = $1
             ORDER BY version DESC LIMIT 1",
            &[&org],
            |r| {
                Ok(StoredModel {
                    version: g(r, 0)?,
                    created_at: ts_col(r, 1)?,
                    card: g(r, 2)?,
                    model: g(r, 3)?,
                })
            },
        )?
        .into_iter()
        .next())
    }

    fn models(&self, org: i64) -> Result<Vec<ModelInfo>, StoreError> {
        let mut conn = self.conn()?;
        query(
            &mut *conn,
            "SELECT version, created_at, card FROM models WHERE org_id = $1 ORDER BY version DESC",
            &[&org],
            |r| {
                Ok(ModelInfo {
                    version: g(r, 0)?,
                    created_at: ts_col(r, 1)?,
                    card: g(r, 2)?,
                })
            },
        )
    }
}
