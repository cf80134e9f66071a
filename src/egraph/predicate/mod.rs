//! Filter subsumption: does the query's filter imply the MV's, and what must still be applied
//! to the MV's rows?
//!
//! Both filters are sets of conjunct e-classes. The query's conjuncts become a premise in
//! disjunctive normal form (bounded: [`MAX_BRANCHES`]); in each branch, column equalities form
//! equivalence classes (Goldstein & Larson; petgraph's union-find) and every constraint on a
//! class is intersected into one [`values::ValueSet`]. The MV's filter is implied when every
//! branch implies each of its conjuncts. Where anything cannot be read or compared, nothing is
//! assumed: implication is only ever claimed when it holds.
//!
//! WHERE keeps the rows where the predicate is *true*; "P implies M" means every row for which
//! P is true makes M true, so NULLs count (`x > 5` implies `x IS NOT NULL`; `x = false OR x IS
//! NULL` does not imply `NOT x`).

pub mod atoms;
pub mod values;

use std::collections::HashMap;

use egg::Id;
use petgraph::unionfind::UnionFind;

use crate::egraph::lang::{PlanGraph, display};
use crate::report::NotImplied;
use atoms::{Atom, read};
use values::ValueSet;

/// How many DNF branches a premise may expand to; disjunctions beyond it are left out of the
/// premise, which only makes it weaker (and the check less complete, never wrong).
pub const MAX_BRANCHES: usize = 64;

/// [`compensation`], remembered in the e-graph's analysis.
pub fn cached_compensation(
    egraph: &mut PlanGraph,
    query: &[Id],
    mv: &[Id],
) -> Result<Vec<Id>, NotImplied> {
    let key = (query.to_vec(), mv.to_vec());
    if let Some(known) = egraph.analysis.implications.get(&key) {
        return known.clone();
    }
    let result = compensation(egraph, query, mv);
    egraph.analysis.implications.insert(key, result.clone());
    result
}

/// If the query's conjuncts imply the MV's, the query conjuncts that must still be applied to
/// the MV's rows (those the MV's filter does not already imply), otherwise which MV conjunct
/// is not implied. The residual `R` satisfies `R AND mv ≡ query` on every row.
pub fn compensation(egraph: &PlanGraph, query: &[Id], mv: &[Id]) -> Result<Vec<Id>, NotImplied> {
    let premise = Premise::new(egraph, query);
    for conjunct in mv {
        for atom in read(egraph, *conjunct) {
            if let Some(branch) = premise.branches.iter().find(|b| !b.implies(egraph, &atom)) {
                return Err(NotImplied {
                    query_allows: branch.allows(egraph, &atom, query),
                    mv_keeps: display(egraph, *conjunct),
                });
            }
        }
    }
    let mv_premise = Premise::new(egraph, mv);
    Ok(query
        .iter()
        .copied()
        .filter(|c| !mv_premise.implies_all(egraph, &read(egraph, *c)))
        .collect())
}

/// Whether no row makes every conjunct true (each DNF branch constrains some term to no
/// value). Only claimed when it holds: what cannot be read is left out of the premise.
pub fn contradiction(egraph: &PlanGraph, conjuncts: &[Id]) -> bool {
    Premise::new(egraph, conjuncts)
        .branches
        .iter()
        .all(|b| b.contradiction)
}

/// A conjunction of conjunct classes, as DNF branches.
struct Premise {
    branches: Vec<Branch>,
}

impl Premise {
    fn new(egraph: &PlanGraph, conjuncts: &[Id]) -> Self {
        let atoms: Vec<Atom> = conjuncts.iter().flat_map(|c| read(egraph, *c)).collect();
        let branches = expand(&atoms)
            .into_iter()
            .map(|b| Branch::new(egraph, &b))
            .collect();
        Premise { branches }
    }

    fn implies_all(&self, egraph: &PlanGraph, atoms: &[Atom]) -> bool {
        self.branches
            .iter()
            .all(|b| atoms.iter().all(|a| b.implies(egraph, a)))
    }
}

/// The DNF of a conjunction of atoms: each branch a list of `In` and `Equal` atoms.
fn expand(atoms: &[Atom]) -> Vec<Vec<Atom>> {
    let mut branches: Vec<Vec<Atom>> = vec![vec![]];
    for atom in atoms {
        match atom {
            Atom::Or(alternatives) => {
                let alternatives: Vec<Vec<Atom>> =
                    alternatives.iter().flat_map(|a| expand(a)).collect();
                if branches.len() * alternatives.len() > MAX_BRANCHES {
                    continue;
                }
                branches = branches
                    .iter()
                    .flat_map(|b| {
                        alternatives.iter().map(move |alt| {
                            let mut b = b.clone();
                            b.extend(alt.iter().cloned());
                            b
                        })
                    })
                    .collect();
            }
            other => branches.iter_mut().for_each(|b| b.push(other.clone())),
        }
    }
    branches
}

/// One conjunction of `In`/`Equal` atoms: equivalence classes of terms and, per class, the
/// values its terms may hold.
struct Branch {
    index: HashMap<Id, usize>,
    classes: UnionFind<usize>,
    sets: HashMap<usize, ValueSet>,
    /// Some class can hold no value: the branch is never true and implies anything.
    contradiction: bool,
}

impl Branch {
    fn new(egraph: &PlanGraph, atoms: &[Atom]) -> Self {
        let mut index = HashMap::new();
        for atom in atoms {
            let terms = match atom {
                Atom::In { term, .. } => vec![*term],
                Atom::Equal(a, b) => vec![*a, *b],
                Atom::Or(_) => vec![],
            };
            for t in terms {
                let n = index.len();
                index.entry(egraph.find(t)).or_insert(n);
            }
        }
        let mut branch = Branch {
            classes: UnionFind::new(index.len()),
            index,
            sets: HashMap::new(),
            contradiction: false,
        };
        for atom in atoms {
            if let Atom::Equal(a, b) = atom {
                let (a, b) = (
                    branch.index[&egraph.find(*a)],
                    branch.index[&egraph.find(*b)],
                );
                branch.classes.union(a, b);
            }
        }
        for atom in atoms {
            match atom {
                Atom::In { term, set } => branch.constrain(egraph, *term, set),
                Atom::Equal(a, b) => {
                    branch.constrain(egraph, *a, &ValueSet::not_null());
                    branch.constrain(egraph, *b, &ValueSet::not_null());
                }
                Atom::Or(_) => {}
            }
        }
        branch
    }

    fn class_of(&self, egraph: &PlanGraph, term: Id) -> Option<usize> {
        self.index
            .get(&egraph.find(term))
            .map(|i| self.classes.find(*i))
    }

    /// Intersects the term's class with `set`; a pair that cannot be compared is left out of
    /// the premise (a weaker premise is still a true one).
    fn constrain(&mut self, egraph: &PlanGraph, term: Id, set: &ValueSet) {
        let Some(class) = self.class_of(egraph, term) else {
            return;
        };
        let next = match self.sets.get(&class) {
            Some(old) => old.intersect(set),
            None => Some(set.clone()),
        };
        if let Some(next) = next {
            self.contradiction |= next.is_empty();
            self.sets.insert(class, next);
        }
    }

    /// What the branch allows for `term`.
    fn values(&self, egraph: &PlanGraph, term: Id) -> ValueSet {
        self.class_of(egraph, term)
            .and_then(|c| self.sets.get(&c).cloned())
            .unwrap_or_else(ValueSet::any)
    }

    fn implies(&self, egraph: &PlanGraph, atom: &Atom) -> bool {
        if self.contradiction {
            return true;
        }
        match atom {
            Atom::In { term, set } => self.values(egraph, *term).is_subset(set) == Some(true),
            Atom::Equal(a, b) => {
                // `a = a` is not true where `a` is NULL: the class must exclude NULL.
                let same_class = self
                    .class_of(egraph, *a)
                    .zip(self.class_of(egraph, *b))
                    .is_some_and(|(x, y)| x == y)
                    && !self.values(egraph, *a).null;
                let (va, vb) = (self.values(egraph, *a), self.values(egraph, *b));
                let same_constant = match (va.single_value(), vb.single_value()) {
                    (Some(x), Some(y)) => values::compare(x, y) == Some(std::cmp::Ordering::Equal),
                    _ => false,
                };
                same_class || same_constant
            }
            Atom::Or(alternatives) => alternatives
                .iter()
                .any(|alt| alt.iter().all(|a| self.implies(egraph, a))),
        }
    }

    /// What this branch allows where `atom` asks for less, for the report.
    fn allows(&self, egraph: &PlanGraph, atom: &Atom, query: &[Id]) -> String {
        if let Atom::In { term, .. } = atom {
            let allowed = self.values(egraph, *term);
            if allowed != ValueSet::any() {
                return allowed.describe(&display(egraph, *term));
            }
        }
        if query.is_empty() {
            return "every row".to_string();
        }
        let filter: Vec<String> = query.iter().map(|c| display(egraph, *c)).collect();
        format!("rows where {}", filter.join(" AND "))
    }
}
