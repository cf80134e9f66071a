//! Freshness: every table an MV reads (a base table or another MV) has a version that changes
//! on every write through the session, and every MV records the versions it was computed
//! from. An MV is stale when one of those has moved on, or when an MV it reads is stale.
//!
//! Writes are kept while some MV may need them: the rows an append added are what an
//! incremental refresh reads (`crate::lifecycle::incremental`).

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use datafusion::arrow::record_batch::RecordBatch;

use super::files::FilesChanged;

/// What a write did to a table.
#[derive(Clone, Debug)]
pub enum Change {
    /// Rows added, nothing else changed: these rows.
    Append(Vec<RecordBatch>),
    /// Anything else (`UPDATE`, `DELETE`, a replaced or dropped table, a recomputed MV), said
    /// in a few words.
    Rewrite(String),
    /// The files a table on files lists changed, by whoever wrote them (`crate::catalog::files`).
    Files(FilesChanged),
}

/// What was appended to a table since a version: rows written through the session, and files
/// another writer added.
#[derive(Clone, Debug, Default)]
pub struct Appended {
    pub rows: Vec<RecordBatch>,
    /// Paths in the table's store, as listed.
    pub files: Vec<String>,
}

#[derive(Clone, Debug)]
struct Write {
    /// The version the write produced.
    version: u64,
    at: SystemTime,
    change: Change,
}

/// The version of every written table and the writes some MV may still need.
#[derive(Clone, Debug, Default)]
pub struct Versions {
    current: HashMap<String, u64>,
    writes: HashMap<String, Vec<Write>>,
}

impl Versions {
    /// `table`'s version: 0 until it is first written through the session.
    pub fn current(&self, table: &str) -> u64 {
        self.current.get(table).copied().unwrap_or(0)
    }

    /// Records a write to `table` and returns its new version.
    pub fn record(&mut self, table: &str, change: Change) -> u64 {
        let version = self.current(table) + 1;
        self.current.insert(table.to_string(), version);
        self.writes
            .entry(table.to_string())
            .or_default()
            .push(Write {
                version,
                at: SystemTime::now(),
                change,
            });
        version
    }

    /// When `table` was first written after `version`, if it was (the start of staleness).
    /// A write the history no longer holds (pruned, or before a restart) counts as made at
    /// `unknown` (the caller's earliest possible time: staleness is never underestimated).
    pub fn first_write_after(
        &self,
        table: &str,
        version: u64,
        unknown: SystemTime,
    ) -> Option<SystemTime> {
        if self.current(table) == version {
            return None;
        }
        let first = self
            .writes
            .get(table)
            .and_then(|w| w.iter().find(|w| w.version == version + 1));
        Some(first.map_or(unknown, |w| w.at))
    }

    /// The rows appended to `table` since `version`, or why they cannot be had: a write since
    /// then that was not an append, or writes no longer held.
    pub fn appended_since(
        &self,
        table: &str,
        version: u64,
    ) -> std::result::Result<Appended, String> {
        let writes: Vec<&Write> = self
            .writes
            .get(table)
            .into_iter()
            .flatten()
            .filter(|w| w.version > version)
            .collect();
        if Some(writes.len() as u64) != self.current(table).checked_sub(version) {
            return Err(format!(
                "the writes to {table} since the last refresh are not known"
            ));
        }
        let mut appended = Appended::default();
        for w in writes {
            match &w.change {
                Change::Append(batches) => appended.rows.extend(batches.iter().cloned()),
                Change::Rewrite(what) => return Err(format!("{table} was {what}")),
                Change::Files(files) if files.only_added() => {
                    appended.files.extend(files.added.iter().cloned())
                }
                Change::Files(files) => return Err(format!("{table}: {files}")),
            }
        }
        Ok(appended)
    }

    /// The files changed in `table` since `version`, when every write since then was a change
    /// of its files and is known (what a stale MV's reason names, and the partitions it may
    /// no longer answer for: a write not known could be any).
    pub fn files_changed_since(&self, table: &str, version: u64) -> Option<FilesChanged> {
        let writes: Vec<&Write> = self
            .writes
            .get(table)?
            .iter()
            .filter(|w| w.version > version)
            .collect();
        if Some(writes.len() as u64) != self.current(table).checked_sub(version) {
            return None;
        }
        let mut changed: Option<FilesChanged> = None;
        for w in writes {
            let Change::Files(files) = &w.change else {
                return None;
            };
            changed
                .get_or_insert_with(FilesChanged::default)
                .extend(files);
        }
        changed
    }

    /// Forgets the writes to `table` up to version `oldest_needed` (no MV was computed from an
    /// older one).
    pub fn prune(&mut self, table: &str, oldest_needed: u64) {
        if let Some(w) = self.writes.get_mut(table) {
            w.retain(|w| w.version > oldest_needed);
        }
    }

    /// Every table's version (what persistence saves).
    pub fn all(&self) -> BTreeMap<String, u64> {
        self.current.iter().map(|(t, v)| (t.clone(), *v)).collect()
    }

    /// Restores versions saved by [`Versions::all`]; the writes behind them are not known.
    pub fn restore(&mut self, versions: BTreeMap<String, u64>) {
        self.current.extend(versions);
    }

    /// Per table, the latest writes held that changed only its files, up to its current
    /// version: what the store saves so that an MV computed before them still refreshes from
    /// the files they added after a restart (rows appended through the session are not saved:
    /// an MV that needs them refreshes in full).
    pub fn file_writes(&self) -> BTreeMap<String, Vec<FileWrite>> {
        self.writes
            .iter()
            .filter_map(|(table, writes)| {
                let mut saved: Vec<FileWrite> = writes
                    .iter()
                    .rev()
                    .map_while(|w| match &w.change {
                        Change::Files(files) => Some(FileWrite {
                            version: w.version,
                            at: w.at,
                            files: files.clone(),
                        }),
                        _ => None,
                    })
                    .collect();
                saved.reverse();
                (!saved.is_empty()).then(|| (table.clone(), saved))
            })
            .collect()
    }

    /// Restores writes saved by [`Versions::file_writes`], with the versions they produced
    /// (restored by [`Versions::restore`] first). Writes of a version above the table's are
    /// not taken: they do not belong to this history.
    pub fn restore_file_writes(&mut self, saved: BTreeMap<String, Vec<FileWrite>>) {
        for (table, writes) in saved {
            let current = self.current(&table);
            let held = self.writes.entry(table).or_default();
            held.extend(
                writes
                    .into_iter()
                    .filter(|w| w.version <= current)
                    .map(|w| Write {
                        version: w.version,
                        at: w.at,
                        change: Change::Files(w.files),
                    }),
            );
            held.sort_by_key(|w| w.version);
            held.dedup_by_key(|w| w.version);
        }
    }
}

/// A write that changed only a table's files, as the store keeps it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileWrite {
    /// The version the write produced.
    pub version: u64,
    pub at: SystemTime,
    pub files: FilesChanged,
}

/// How stale an MV may be and still answer a query, per session and per MV (Oracle's query
/// rewrite integrity levels).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Staleness {
    /// Never stale: an MV whose inputs changed does not answer (the default).
    #[default]
    Enforced,
    /// A stale MV answers anyway; the report says it was stale.
    Tolerated,
    /// A stale MV answers while it has been stale for at most this long.
    Bounded(Duration),
}

impl Staleness {
    /// Whether an MV stale since `since` may answer now.
    pub fn allows(self, since: SystemTime) -> bool {
        match self {
            Staleness::Enforced => false,
            Staleness::Tolerated => true,
            Staleness::Bounded(bound) => since.elapsed().unwrap_or_default() <= bound,
        }
    }
}

impl FromStr for Staleness {
    type Err = String;

    /// `enforced`, `stale_tolerated`, or a bound: `60`, `60s`, `60 seconds`.
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        let s = s.trim().trim_matches('\'').trim().to_ascii_lowercase();
        match s.as_str() {
            "enforced" => Ok(Staleness::Enforced),
            "stale_tolerated" | "tolerated" => Ok(Staleness::Tolerated),
            _ => {
                let number = s
                    .strip_suffix("seconds")
                    .or_else(|| s.strip_suffix("second"))
                    .or_else(|| s.strip_suffix('s'))
                    .unwrap_or(&s)
                    .trim();
                number
                    .parse::<u64>()
                    .map(|n| Staleness::Bounded(Duration::from_secs(n)))
                    .map_err(|_| {
                        format!(
                            "staleness '{s}': expected 'enforced', 'stale_tolerated' or a number of seconds"
                        )
                    })
            }
        }
    }
}

impl fmt::Display for Staleness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Staleness::Enforced => write!(f, "enforced"),
            Staleness::Tolerated => write!(f, "stale_tolerated"),
            Staleness::Bounded(d) => write!(f, "{} seconds", d.as_secs()),
        }
    }
}

/// Why and since when an MV is stale.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stale {
    /// When it became stale (the first change after it was computed).
    pub since: SystemTime,
    /// What changed: `events was written`, `daily is stale`.
    pub cause: String,
}

impl fmt::Display for Stale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ago = self.since.elapsed().unwrap_or_default().as_secs();
        write!(
            f,
            "stale since {} ({ago} s ago): {}",
            timestamp(self.since),
            self.cause
        )
    }
}

/// An instant as an RFC 3339 UTC timestamp with seconds.
pub fn timestamp(at: SystemTime) -> String {
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    datafusion::common::arrow::temporal_conversions::timestamp_s_to_datetime(secs)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| format!("{secs} s after the epoch"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_since_a_version_are_collected_until_a_rewrite() {
        let mut v = Versions::default();
        assert_eq!(v.current("t"), 0);
        v.record("t", Change::Append(vec![]));
        v.record("t", Change::Append(vec![]));
        assert!(v.appended_since("t", 0).is_ok());
        let epoch = SystemTime::UNIX_EPOCH;
        assert!(v.first_write_after("t", 2, epoch).is_none());
        assert!(
            v.first_write_after("t", 1, epoch)
                .is_some_and(|t| t > epoch)
        );
        v.record("t", Change::Rewrite("updated".into()));
        assert_eq!(v.appended_since("t", 1).unwrap_err(), "t was updated");
        v.prune("t", 2);
        assert!(
            v.appended_since("t", 1).is_err(),
            "pruned writes are unknown"
        );
        let none = v.appended_since("t", 3).unwrap();
        assert!(none.rows.is_empty() && none.files.is_empty());
    }

    #[test]
    fn files_changed_are_named_only_when_every_write_since_is_known() {
        let mut v = Versions::default();
        let added = FilesChanged {
            added: vec!["day=1/a.parquet".into()],
            ..FilesChanged::default()
        };
        v.record("t", Change::Files(added.clone()));
        v.record("t", Change::Files(added.clone()));
        assert_eq!(
            v.files_changed_since("t", 0).map(|f| f.added.len()),
            Some(2)
        );
        // Versions restored after a restart: the writes behind them are not known.
        v.restore(BTreeMap::from([("t".to_string(), 5)]));
        v.record("t", Change::Files(added));
        assert_eq!(
            v.files_changed_since("t", 5).map(|f| f.added.len()),
            Some(1)
        );
        assert!(v.files_changed_since("t", 2).is_none());
        v.record("t", Change::Append(vec![]));
        assert!(v.files_changed_since("t", 5).is_none());
    }

    #[test]
    fn staleness_spellings() {
        assert_eq!("enforced".parse(), Ok(Staleness::Enforced));
        assert_eq!("'stale_tolerated'".parse(), Ok(Staleness::Tolerated));
        assert_eq!(
            "60 seconds".parse(),
            Ok(Staleness::Bounded(Duration::from_secs(60)))
        );
        assert_eq!("5s".parse(), Ok(Staleness::Bounded(Duration::from_secs(5))));
        assert!("sometimes".parse::<Staleness>().is_err());
        let long_ago = SystemTime::now() - Duration::from_secs(120);
        assert!(!Staleness::Bounded(Duration::from_secs(60)).allows(long_ago));
        assert!(Staleness::Bounded(Duration::from_secs(600)).allows(long_ago));
        assert!(!Staleness::Enforced.allows(SystemTime::now()));
    }
}
