//! The session's side of tables on files (`crate::catalog::files`): which registered tables are
//! DataFusion listing tables, listing them before an MV is computed from them, and reading the
//! files another writer added for an incremental refresh.

use std::any::Any;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::SystemTime;

use datafusion::datasource::listing::ListingTable;
use datafusion::logical_expr::LogicalPlan;

use crate::catalog::files::{FileTable, observe};
use crate::error::Result;

use super::MvSession;

impl MvSession {
    /// Follows the tables on files among `tables` and records what other writers changed in
    /// them since they were last listed: called before an MV is computed from them, so that
    /// the versions it records are those of the files it reads.
    pub(super) async fn observe_files(&self, tables: &BTreeSet<String>) -> Result<()> {
        for table in tables {
            // An MV kept in the store is a listing table too, but its files change only by
            // its refreshes, which its readers already see as writes.
            if self.read_catalog()?.contains(table) {
                continue;
            }
            let Ok(provider) = self.ctx.table_provider(table.as_str()).await else {
                continue;
            };
            if let Some(listing) = (provider.as_ref() as &dyn Any).downcast_ref::<ListingTable>() {
                // Followed already over these files: nothing to copy (a session state is big,
                // and this runs for every input of every refresh).
                let catalog = self.read_catalog()?;
                if catalog
                    .file_table(table)
                    .is_some_and(|f| f.reads_as(listing))
                {
                    continue;
                }
                drop(catalog);
                // The state without the rule: the same runtime (object stores) and options,
                // and no reference from the catalog back to the rule that holds it.
                let state = Arc::new(self.plain.clone());
                let followed = FileTable::new(Arc::new(listing.clone()), state);
                self.write_catalog()?.follow_files(table, followed);
            }
        }
        observe(&self.catalog, tables, SystemTime::now(), true);
        Ok(())
    }

    /// The rows of `files`, files another writer added to the table on files `table`, as a plan
    /// that reads them, or why they cannot be read alone.
    pub(super) fn rows_of_files(
        &self,
        table: &str,
        files: &[String],
    ) -> Result<std::result::Result<LogicalPlan, String>> {
        Ok(match self.read_catalog()?.file_table(table) {
            Some(followed) => followed.read(files),
            None => Err(format!("{table} is not a table on files")),
        })
    }
}
