//! Saving the session's MVs to its data directory and restoring them after a restart
//! (`crate::persist` writes the files).

use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;

use super::{Install, MvSession};
use crate::catalog::stored_schema;
use crate::definition::{StoredNames, plan_stored_definition};
use crate::dependencies::Dependencies;
use crate::error::{MvError, Result};
use crate::incremental::{self, Shape};
use crate::persist::{SavedCatalog, SavedMv};
use crate::storage::Stored;

impl MvSession {
    /// Saves the catalog (MVs with their SQL, files and freshness; table versions) to the data
    /// directory, if there is one. MVs defined from a plan rather than SQL are not saved.
    pub(super) fn save(&self) -> Result<()> {
        let Some(dir) = &self.data_dir else {
            return Ok(());
        };
        let catalog = self.read_catalog()?;
        let stored = self.lock_stored()?;
        let mut order = Dependencies::of(&catalog, None).mvs_in_order();
        order.extend(
            catalog
                .iter()
                .map(|mv| mv.name.clone())
                .filter(|n| !order.contains(n))
                .collect::<Vec<_>>(),
        );
        let mut saved = SavedCatalog {
            versions: catalog.versions().all(),
            mvs: Vec::new(),
        };
        for name in order {
            let (Some(mv), Some(computed), Some(data)) = (
                catalog.get(&name),
                catalog.computed(&name),
                stored.get(&name),
            ) else {
                continue;
            };
            let Some(sql) = &mv.sql else {
                continue;
            };
            saved.mvs.push(SavedMv {
                name: name.clone(),
                sql: sql.clone(),
                columns: data
                    .schema
                    .fields()
                    .iter()
                    .map(|f| f.name().clone())
                    .collect(),
                on_commit: catalog.is_on_commit(&name),
                staleness: catalog.own_staleness(&name).map(|s| s.to_string()),
                computed_from: computed.from.clone(),
                computed_at: computed.at,
                files: data.files.clone(),
            });
        }
        dir.save(&saved)
    }

    /// Restores the MVs saved in the data directory (the base tables they read must be
    /// registered first), with the rows and freshness they had: an MV stale before the
    /// restart is stale after it. Returns their names.
    pub async fn restore(&self) -> Result<Vec<String>> {
        let Some(dir) = &self.data_dir else {
            return Ok(vec![]);
        };
        let _maintenance = self.maintenance.lock().await;
        let saved = self
            .pending
            .lock()
            .map_err(|_| MvError::Internal("restore lock poisoned".into()))?
            .take();
        let Some(saved) = saved else {
            return Ok(vec![]);
        };
        let mut restored = Vec::new();
        for mv in saved.mvs {
            let names = StoredNames::Stored(&mv.columns);
            let definition =
                plan_stored_definition(&self.ctx.state(), &self.plain, &mv.sql, names).await?;
            let schema = stored_schema(definition.schema());
            let fragments = mv
                .files
                .iter()
                .map(|f| {
                    dir.read_fragment(&mv.name, f)?
                        .into_iter()
                        .map(|b| {
                            RecordBatch::try_new(Arc::clone(&schema), b.columns().to_vec())
                                .map_err(MvError::from)
                        })
                        .collect::<Result<Vec<_>>>()
                })
                .collect::<Result<Vec<_>>>()?;
            let regroup = match incremental::shape(&definition) {
                Ok(Shape::Aggregate(r)) => Some(r),
                _ => None,
            };
            self.install(Install {
                name: mv.name.clone(),
                sql: Some(mv.sql),
                definition: definition.clone(),
                stored: Stored {
                    schema,
                    fragments,
                    regroup,
                    files: mv.files,
                    computed_by: definition.clone(),
                },
                computed_from: mv.computed_from,
                computed_at: mv.computed_at,
                change: None,
                save: false,
            })?;
            let staleness = mv
                .staleness
                .map(|s| s.parse())
                .transpose()
                .map_err(MvError::Storage)?;
            let mut catalog = self.write_catalog()?;
            catalog.set_on_commit(&mv.name, mv.on_commit);
            catalog.set_mv_staleness(&mv.name, staleness);
            restored.push(mv.name);
        }
        self.save()?;
        Ok(restored)
    }
}
