//! Declared keys: unique keys (primary or unique) and foreign keys between base tables.
//!
//! They are what makes a join lossless: joining a table through a NOT NULL foreign key to a
//! unique key of another keeps every row exactly once, so an MV that adds such joins still
//! answers a query without them. Keys are declared by the user (`ALTER TABLE .. ADD PRIMARY
//! KEY / UNIQUE / FOREIGN KEY`, or [`Constraints::declare_unique`] and
//! [`Constraints::declare_foreign_key`]) and trusted, as Calcite and StarRocks trust theirs;
//! they are never inferred from data.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// `table (columns) REFERENCES references (referenced)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ForeignKey {
    /// The referencing table.
    pub table: String,
    /// Its key columns.
    pub columns: Vec<String>,
    /// The referenced table.
    pub references: String,
    /// The referenced unique key's columns, in the same order.
    pub referenced: Vec<String>,
}

impl fmt::Display for ForeignKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}({}) REFERENCES {}({})",
            self.table,
            self.columns.join(", "),
            self.references,
            self.referenced.join(", ")
        )
    }
}

/// A key declared with `ALTER TABLE`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeclaredKey {
    /// `PRIMARY KEY` or `UNIQUE`: no two rows share these columns' values.
    Unique {
        /// The table.
        table: String,
        /// The key's columns.
        columns: Vec<String>,
    },
    /// `FOREIGN KEY .. REFERENCES`: every non-null value is in the referenced unique key.
    Foreign(ForeignKey),
}

/// The declared keys of the catalog's tables.
#[derive(Clone, Debug, Default)]
pub struct Constraints {
    unique: BTreeMap<String, Vec<BTreeSet<String>>>,
    foreign: Vec<ForeignKey>,
}

impl Constraints {
    /// Declares `columns` of `table` unique (a primary key is unique too; its NOT NULL is the
    /// table schema's business).
    pub fn declare_unique(&mut self, table: &str, columns: &[&str]) {
        let key: BTreeSet<String> = columns.iter().map(|c| c.to_string()).collect();
        let keys = self.unique.entry(table.to_string()).or_default();
        if !keys.contains(&key) {
            keys.push(key);
        }
    }

    /// Declares a foreign key. Its columns and the referenced ones must pair up.
    pub fn declare_foreign_key(&mut self, key: ForeignKey) -> Result<(), String> {
        if key.columns.is_empty() || key.columns.len() != key.referenced.len() {
            return Err(format!(
                "foreign key {key}: {} columns reference {}",
                key.columns.len(),
                key.referenced.len()
            ));
        }
        if !self.foreign.contains(&key) {
            self.foreign.push(key);
        }
        Ok(())
    }

    /// Forgets every key on or referencing `table`: it was dropped or replaced, and a key
    /// declared on what had its name says nothing of what has it now.
    pub fn forget(&mut self, table: &str) {
        self.unique.remove(table);
        self.foreign
            .retain(|k| k.table != table && k.references != table);
    }

    /// Whether `columns` of `table` contain a declared unique key: then no two rows agree on them.
    pub fn is_unique(&self, table: &str, columns: &[String]) -> bool {
        self.unique
            .get(table)
            .into_iter()
            .flatten()
            .any(|key| key.iter().all(|k| columns.contains(k)))
    }

    /// Whether any foreign key is declared (without one, no MV answers through extra tables).
    pub fn has_foreign_keys(&self) -> bool {
        !self.foreign.is_empty()
    }

    /// The foreign keys from `table` to `references`.
    pub fn foreign_keys(&self, table: &str, references: &str) -> Vec<&ForeignKey> {
        self.foreign
            .iter()
            .filter(|k| k.table == table && k.references == references)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_looked_up_by_table_and_columns() {
        let mut c = Constraints::default();
        c.declare_unique("depts", &["deptno"]);
        assert!(c.is_unique("depts", &["deptno".into(), "name".into()]));
        assert!(!c.is_unique("depts", &["name".into()]));
        assert!(!c.is_unique("emps", &["deptno".into()]));
        let fk = ForeignKey {
            table: "emps".into(),
            columns: vec!["deptno".into()],
            references: "depts".into(),
            referenced: vec!["deptno".into()],
        };
        c.declare_foreign_key(fk.clone()).unwrap();
        assert_eq!(c.foreign_keys("emps", "depts"), vec![&fk]);
        assert!(c.foreign_keys("depts", "emps").is_empty());
        let bad = ForeignKey {
            referenced: vec![],
            ..fk
        };
        assert!(c.declare_foreign_key(bad).is_err());
        c.forget("depts");
        assert!(!c.is_unique("depts", &["deptno".into()]));
        assert!(c.foreign_keys("emps", "depts").is_empty());
    }
}
