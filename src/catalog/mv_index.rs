//! Which MVs read each table and keep each column, as bitsets over MV slots. Ruling a whole
//! catalog out for a plan then costs a few word operations per table and column the plan reads,
//! rather than a comparison of column-name sets per MV: most plans no MV answers are planned
//! with 100 registered MVs at under 5% added (`benches/tpch_planning.rs`). `fixedbitset` is the
//! bitset petgraph already builds on.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use fixedbitset::FixedBitSet;

use crate::catalog::MaterializedView;

#[derive(Debug, Default)]
pub struct MvIndex {
    /// Each MV's slot; a dropped MV's slot is reused by the next one registered.
    slots: Vec<Option<Arc<MaterializedView>>>,
    free: Vec<usize>,
    slot_of: HashMap<String, usize>,
    /// Base table → the MVs reading it.
    reading: HashMap<String, FixedBitSet>,
    /// Base column (`table.column`) → the MVs keeping it.
    keeping: HashMap<String, FixedBitSet>,
    /// Aggregate MVs over one table → the columns (`table.column`) their keys and filters
    /// mention ([`crate::plan::dimensions`]), and which MVs are such.
    dimensions: HashMap<String, FixedBitSet>,
    dimensioned: FixedBitSet,
    /// Ineligible MVs: never an answer.
    never: FixedBitSet,
    /// UNION MVs, which answer only unions of the same branches, whatever columns they read.
    unions: FixedBitSet,
}

impl MvIndex {
    pub fn insert(&mut self, mv: &Arc<MaterializedView>) {
        self.remove(&mv.name);
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.push(None);
            self.slots.len() - 1
        });
        let set = |map: &mut HashMap<String, FixedBitSet>, key: &str| match map.get_mut(key) {
            Some(bits) => bits.grow_and_insert(slot),
            None => {
                let mut bits = FixedBitSet::new();
                bits.grow_and_insert(slot);
                map.insert(key.to_string(), bits);
            }
        };
        for t in &mv.base_tables {
            set(&mut self.reading, t);
        }
        for c in &mv.base_columns {
            set(&mut self.keeping, c);
        }
        if let (Some(kept), Some(table)) = (&mv.dimensions, mv.base_tables.first()) {
            self.dimensioned.grow_and_insert(slot);
            for c in kept {
                set(&mut self.dimensions, &format!("{table}.{c}"));
            }
        }
        if mv.eligibility.is_err() {
            self.never.grow_and_insert(slot);
        } else if mv.is_union {
            self.unions.grow_and_insert(slot);
        }
        self.slot_of.insert(mv.name.clone(), slot);
        self.slots[slot] = Some(Arc::clone(mv));
    }

    pub fn remove(&mut self, name: &str) {
        let Some(slot) = self.slot_of.remove(name) else {
            return;
        };
        let clear = |map: &mut HashMap<String, FixedBitSet>| {
            map.retain(|_, bits| {
                if slot < bits.len() {
                    bits.set(slot, false);
                }
                !bits.is_clear()
            })
        };
        clear(&mut self.reading);
        clear(&mut self.keeping);
        clear(&mut self.dimensions);
        for bits in [&mut self.never, &mut self.unions, &mut self.dimensioned] {
            if slot < bits.len() {
                bits.set(slot, false);
            }
        }
        self.slots[slot] = None;
        self.free.push(slot);
    }

    /// The MVs that may answer part of a plan reading the tables `read`, whose scans of each
    /// table read the column sets of `scans`: the UNION MVs reading one of `read`, and the MVs
    /// that may answer a region. Every other MV reading one of `read` is ineligible or (unless
    /// `joins_declared`: declared foreign keys let an MV join tables the plan does not read)
    /// reads a table the plan does not read, or a table of whose every scan it lacks a
    /// column: a region reading a table contains one of its scans, and reads every column
    /// that scan reads.
    pub fn may_answer(
        &self,
        read: &BTreeSet<String>,
        scans: &HashMap<String, Vec<BTreeSet<String>>>,
        joins_declared: bool,
    ) -> Vec<(usize, &Arc<MaterializedView>)> {
        let mut alive = FixedBitSet::with_capacity(self.slots.len());
        for t in read {
            if let Some(bits) = self.reading.get(t) {
                alive.union_with(bits);
            }
        }
        alive.difference_with(&self.never);
        let mut unions = alive.clone();
        unions.intersect_with(&self.unions);
        if !joins_declared {
            for (t, bits) in &self.reading {
                if !read.contains(t) {
                    alive.difference_with(bits);
                }
            }
            for (t, scans) in scans {
                let Some(readers) = self.reading.get(t) else {
                    continue;
                };
                let mut keep_one_scan = FixedBitSet::with_capacity(readers.len());
                for columns in scans {
                    keep_one_scan.union_with(&self.keeping_all(readers, columns.iter()));
                }
                let mut lacking = readers.clone();
                lacking.difference_with(&keep_one_scan);
                alive.difference_with(&lacking);
            }
        }
        alive.union_with(&unions);
        alive
            .ones()
            .filter_map(|slot| Some((slot, self.slots.get(slot)?.as_ref()?)))
            .collect()
    }

    /// Those of `readers` keeping every one of `columns` (`table.column`).
    fn keeping_all<'c>(
        &self,
        readers: &FixedBitSet,
        columns: impl Iterator<Item = &'c String>,
    ) -> FixedBitSet {
        let mut keep_all = readers.clone();
        for c in columns {
            match self.keeping.get(c) {
                Some(bits) => keep_all.intersect_with(bits),
                None => keep_all.clear(),
            }
        }
        keep_all
    }

    /// MVs that cannot answer a region reading the tables `tables`, with these `columns`
    /// (`table.column`): those reading one of its tables without keeping every column it
    /// reads of it, and the aggregates over its one table that neither group by nor filter on
    /// a column it groups or filters on (`needed`, by name: [`crate::plan::dimensions`]).
    pub fn cannot_answer_region(
        &self,
        tables: &BTreeSet<String>,
        columns: &BTreeSet<String>,
        needed: &BTreeSet<String>,
    ) -> FixedBitSet {
        let mut cannot = FixedBitSet::with_capacity(self.slots.len());
        for t in tables {
            let Some(readers) = self.reading.get(t) else {
                continue;
            };
            let of_t = columns.iter().filter(|c| {
                c.strip_prefix(t.as_str())
                    .is_some_and(|c| c.starts_with('.'))
            });
            let keep_all = self.keeping_all(readers, of_t);
            let mut lacking = readers.clone();
            lacking.difference_with(&keep_all);
            cannot.union_with(&lacking);
            if tables.len() == 1 && !needed.is_empty() {
                let mut keep_needed = self.dimensioned.clone();
                for c in needed {
                    match self.dimensions.get(&format!("{t}.{c}")) {
                        Some(bits) => keep_needed.intersect_with(bits),
                        None => keep_needed.clear(),
                    }
                }
                let mut lacking = self.dimensioned.clone();
                lacking.intersect_with(readers);
                lacking.difference_with(&keep_needed);
                cannot.union_with(&lacking);
            }
        }
        cannot
    }
}
