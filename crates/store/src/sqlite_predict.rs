//! SQLite implementation of [`PredictStore`].

use jiff::Timestamp;
use r2d2_sqlite::rusqlite::{TransactionBehavior, params};

use crate::StoreError;
use crate::predict::{ModelInfo, PredictStore, StoredModel, model_trained};
use crate::sqlite::{SqliteStore, map_err};
use crate::sqlite_dunning::{col, insert_event, organization, query, ts, ts_col};

impl PredictStore for SqliteStore {
    fn save_model(
        &self,
        org: i64,
        card_json: &str,
        model_json: &str,
        actor: &str,
        now: Timestamp,
    ) -> Result<i64, StoreError> {
        let mut conn = self.conn()?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(map_err)?;
        organization(&tx, org)?;
        let last: Vec<Option<i64>> = query(
            &tx,
            "SELECT MAX(version) FROM models WHERE org_id = ?1",
            [org],
            |r| col(r, 0),
        )?;
        let version = last.into_iter().flatten().next().unwrap_or(0) + 1;
        tx.execute(
            "INSERT INTO models (org_id, version, created_at, card, model) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![org, version, ts(now), card_json, model_json],
        )
        .map_err(map_err)?;
        insert_event(&tx, org, actor, now, &model_trained(version, card_json))?;
        tx.commit().map_err(map_err)?;
        Ok(version)
    }

    fn latest_model(&self, org: i64) -> Result<Option<StoredModel>, StoreError> {
        let conn = self.conn()?;
        Ok(query(
            &conn,
            "SELECT version, created_at, card, model FROM models WHERE org_id = ?1
             ORDER BY version DESC LIMIT 1",
            [org],
            |r| {
                Ok(StoredModel {
                    version: col(r, 0)?,
                    created_at: ts_col(r, 1)?,
                    card: col(r, 2)?,
                    model: col(r, 3)?,
                })
            },
        )?
        .into_iter()
        .next())
    }

    fn models(&self, org: i64) -> Result<Vec<ModelInfo>, StoreError> {
        let conn = self.conn()?;
        query(
            &conn,
            "SELECT version, created_at, card FROM models WHERE org_id = ?1 ORDER BY version DESC",
            [org],
            |r| {
                Ok(ModelInfo {
                    version: col(r, 0)?,
                    created_at: ts_col(r, 1)?,
                    card: col(r, 2)?,
                })
            },
        )
    }
}
