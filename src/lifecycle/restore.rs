//! Saving the session's MVs to its store and restoring them after a restart
//! (`crate::lifecycle::persist` writes the catalog, `crate::lifecycle::store` holds the rows):
//! at the start, and again as soon as the tables a kept MV reads are registered.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::Ordering;

use super::{Install, MvSession};
use crate::catalog::definition::{StoredNames, plan_stored_definition};
use crate::catalog::stored_schema;
use crate::error::{MvError, Result};
use crate::lifecycle::dependencies::Dependencies;
use crate::lifecycle::incremental::{self, Shape};
use crate::lifecycle::persist::{SavedCatalog, SavedMv};
use crate::lifecycle::progress::Steps;
use crate::lifecycle::storage::{Rows, Stored};
use crate::lifecycle::store::DataDir;

impl MvSession {
    /// Saves the catalog (MVs with their SQL, files and freshness; table versions) to the data
    /// directory, if there is one the session writes (not one it follows). MVs defined from a plan rather than SQL are not saved. The
    /// MVs not restored yet are saved as they were, unless an MV of the same name replaced them.
    pub(super) async fn save(&self) -> Result<()> {
        let Some(dir) = self.data_dir.as_ref().filter(|d| d.is_locked()) else {
            return Ok(());
        };
        // One save at a time, each of the state as it is then: a later state is never
        // overwritten by an earlier one.
        let _saving = self.saving.lock().await;
        let saved = self.saved_catalog()?;
        dir.save(&saved).await
    }

    /// The catalog as it is to be saved.
    fn saved_catalog(&self) -> Result<SavedCatalog> {
        let catalog = self.read_catalog()?;
        let stored = self.lock_stored()?;
        let mut pending = self.lock_pending()?;
        pending.retain(|mv| !catalog.contains(&mv.name));
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
            file_listings: catalog.file_listings(),
            file_writes: catalog.versions().file_writes(),
            next_generation: self.next_generation.load(Ordering::SeqCst),
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
                generation: data.generation().cloned(),
            });
        }
        // After the live ones, which an MV not restored may read (never the other way).
        saved.mvs.extend(pending.iter().cloned());
        Ok(saved)
    }

    /// Restores the MVs kept in the store (the base tables they read must be
    /// registered first), with the rows and freshness they had: an MV stale before the
    /// restart is stale after it.
    ///
    /// An MV that cannot be restored (a base table it reads is not registered or has changed,
    /// one of its files is missing or unreadable, an MV it reads was not restored) is reported
    /// in [`Restored::failed`] and does not stop the others. It stays in the store:
    /// calling `restore` again, once what it needs is back, restores it.
    pub async fn restore(&self) -> Result<Restored> {
        let Some(dir) = &self.data_dir else {
            return Ok(Restored::default());
        };
        let _maintenance = self.maintenance.lock().await;
        // Each MV leaves the pending list once restored: a restore cut short (its future
        // dropped) loses nothing.
        let saved = self.lock_pending()?.clone();
        let mut outcome = Restored::default();
        let mut steps = Steps::new(self.progress_sink(), saved.len());
        for mv in saved {
            steps.next(&format!("restoring {}", mv.name));
            match self.restore_one(dir, &mv).await {
                Ok(()) => {
                    self.forget_unrestored(&mv.name)?;
                    outcome.restored.push(mv.name);
                }
                Err(e) => {
                    let registered = self.registered_inputs(&mv);
                    self.lock_tried()?.insert(mv.name.clone(), registered);
                    outcome.failed.push((mv.name, e));
                }
            }
        }
        steps.finish();
        self.save().await?;
        Ok(outcome)
    }

    /// Plans one saved MV again, reads its files and installs it with its saved freshness.
    async fn restore_one(&self, dir: &DataDir, mv: &SavedMv) -> Result<()> {
        if self.read_catalog()?.contains(&mv.name) {
            // Never replace a live MV (one created OR REPLACE replaced this one already).
            return Err(MvError::DuplicateMv(mv.name.clone()));
        }
        let names = StoredNames::Stored(&mv.columns);
        let definition =
            plan_stored_definition(&self.ctx.state(), &self.plain, &mv.sql, names).await?;
        let schema = stored_schema(definition.schema());
        let Some(generation) = mv.generation.clone() else {
            return Err(MvError::Storage(format!(
                "{} was stored by an earlier mvrewrite, as fragments: create it again (CREATE OR REPLACE)",
                mv.name
            )));
        };
        dir.check(&mv.name, &generation, &schema).await?;
        let regroup = match incremental::shape(&definition) {
            Ok(Shape::Aggregate(r)) => Some(r),
            _ => None,
        };
        let staleness = mv
            .staleness
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(MvError::Storage)?;
        let inputs = crate::plan::region::base_tables(&definition);
        self.install(Install {
            name: mv.name.clone(),
            sql: Some(mv.sql.clone()),
            definition: definition.clone(),
            stored: Stored {
                schema,
                rows: Rows::Files {
                    location: dir.generation_location(&mv.name, generation.number),
                    generation,
                },
                regroup,
                computed_by: definition,
            },
            computed_from: mv.computed_from.clone(),
            computed_at: mv.computed_at,
            change: None,
            save: false,
        })
        .await?;
        {
            let mut catalog = self.write_catalog()?;
            catalog.set_on_commit(&mv.name, mv.on_commit);
            catalog.set_mv_staleness(&mv.name, staleness);
        }
        // Its tables on files are followed from now on, listed against the listing saved with
        // the versions: files changed while no process ran make it stale.
        self.observe_files(&inputs).await
    }

    /// Restores the kept MVs if a table one of them reads was registered since it was last
    /// tried, however it was (by SQL, on `context()`, through the API): `sql` calls this before
    /// and after each statement, at the cost of a lookup per table a kept MV reads.
    pub(super) async fn restore_if_ready(&self) -> Result<()> {
        let ready = {
            let pending = self.lock_pending()?;
            let tried = self.lock_tried()?;
            pending
                .iter()
                .any(|mv| tried.get(&mv.name) != Some(&self.registered_inputs(mv)))
        };
        if ready {
            self.restore().await?;
        }
        Ok(())
    }

    /// The tables (and MVs) `mv` was computed from that are registered now.
    fn registered_inputs(&self, mv: &SavedMv) -> BTreeSet<String> {
        mv.computed_from
            .keys()
            .filter(|t| self.ctx.table_exist(t.as_str()).unwrap_or(false))
            .cloned()
            .collect()
    }

    fn lock_tried(&self) -> Result<std::sync::MutexGuard<'_, BTreeMap<String, BTreeSet<String>>>> {
        self.restore_tried
            .lock()
            .map_err(|_| MvError::Internal("restore lock poisoned".into()))
    }

    /// Whether `name` is an MV: in the catalog, or saved and not restored yet.
    pub(super) fn mv_exists(&self, name: &str) -> Result<bool> {
        Ok(self.read_catalog()?.contains(name)
            || self.lock_pending()?.iter().any(|mv| mv.name == name))
    }

    /// Forgets a saved MV not restored (restored, replaced or dropped): whether there was one.
    pub(super) fn forget_unrestored(&self, name: &str) -> Result<bool> {
        let (forgot, awaited) = {
            let mut pending = self.lock_pending()?;
            let before = pending.len();
            pending.retain(|mv| mv.name != name);
            let awaited: Vec<BTreeMap<String, u64>> =
                pending.iter().map(|mv| mv.computed_from.clone()).collect();
            (pending.len() < before, awaited)
        };
        // The writes kept for it alone go (the pending list released first: a save takes the
        // catalog, then the pending list).
        self.write_catalog()?.set_awaiting(&awaited);
        Ok(forgot)
    }

    fn lock_pending(&self) -> Result<std::sync::MutexGuard<'_, Vec<SavedMv>>> {
        self.pending
            .lock()
            .map_err(|_| MvError::Internal("restore lock poisoned".into()))
    }
}

/// What [`MvSession::restore`] brought back.
#[derive(Debug, Default)]
pub struct Restored {
    /// The MVs restored, every MV after those it reads.
    pub restored: Vec<String>,
    /// The MVs that could not be, each with why. They stay saved, to be restored by a later
    /// call once what they need is back.
    pub failed: Vec<(String, MvError)>,
}
