//! Rule packs: rewrites written as data in `rules/*.rules`, with the checks that need code
//! (conditions) and the rewrites that compute new expressions (appliers) implemented in Rust
//! and referenced by name.
//!
//! A pack is a text file of lines:
//!
//! ```text
//! # a comment
//! rule NAME: SEARCHER => APPLIER [if CONDITION ?var... [; CONDITION ?var...]]
//! rule NAME: @REWRITE
//! rollup QUERY_FN from MV_FN... via REAGG_FN [zero-on-empty]
//! duplicate-insensitive FN...
//! empty-is-default FN...
//! grain NAME = DEFINITION
//! nests FINE in COARSE...
//! ```
//!
//! `SEARCHER` is `?m = MV_PATTERN, ?q = QUERY_PATTERN`: an MV and a part of the query that
//! share variables ([`searcher`]). `APPLIER` is an egg pattern or multi-pattern (`?q = (..)`),
//! or `@name` for a Rust applier. `rule NAME: @REWRITE` names a rewrite written in Rust whole
//! (searcher and applier: [`bucket`]). `grain` and `nests` lines build the time-bucket
//! lattice ([`crate::timeseries::lattice`]). Conditions are listed in [`conditions`].
//!
//! May use: `egraph`, `plan`, `timeseries`, `report`. Used by `catalog` (the rollup table),
//! `forms` and `engine`.

pub mod bucket;
pub mod conditions;
pub mod having;
pub mod rollup;
pub mod searcher;
pub mod subsume;

use std::str::FromStr;
use std::sync::Arc;

use egg::{MultiPattern, Rewrite, Var};

use crate::egraph::lang::{Node, PlanAnalysis};
use crate::timeseries::Lattice;
use bucket::{AlignedRange, CoarserBucket, FieldOfBucket};
use conditions::{AllOf, Check, Guarded};
use having::HavingApplier;
use rollup::{RollupApplier, RollupTable};
use searcher::MvQuerySearcher;
use subsume::SubsumeApplier;

/// The packs shipped with the crate, embedded at build time, in the order they are applied.
pub const BUILTIN_PACKS: &[(&str, &str)] = &[
    ("core", include_str!("../../rules/core.rules")),
    ("aggregate", include_str!("../../rules/aggregate.rules")),
    ("filter", include_str!("../../rules/filter.rules")),
    ("timeseries", include_str!("../../rules/timeseries.rules")),
];

/// Rewrites ready for egg, and the rollup table and time-bucket lattice they use.
pub struct RuleSet {
    pub rewrites: Vec<Rewrite<Node, PlanAnalysis>>,
    pub rollups: Arc<RollupTable>,
    pub lattice: Arc<Lattice>,
}

impl RuleSet {
    /// Loads the built-in packs.
    pub fn builtin() -> Self {
        // The built-in packs are tested; failing here is a build defect, not a user error.
        Self::load(BUILTIN_PACKS).expect("built-in rule packs parse")
    }

    /// Parses packs given as `(pack name, text)`.
    pub fn load(packs: &[(&str, &str)]) -> Result<Self, String> {
        let mut table = RollupTable::default();
        let mut lattice = Lattice::default();
        let mut rules = Vec::new();
        for (pack, text) in packs {
            for (n, line) in text.lines().enumerate() {
                let line = line.trim();
                let at = || format!("{pack}.rules:{}", n + 1);
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                if let Some(rest) = line.strip_prefix("rule ") {
                    rules.push((format!("{pack}/"), rest.to_string(), at()));
                } else if let Some(rest) = line.strip_prefix("rollup ") {
                    table
                        .parse_rollup(rest)
                        .map_err(|e| format!("{}: {e}", at()))?;
                } else if let Some(rest) = line.strip_prefix("grain ") {
                    lattice
                        .parse_grain(rest)
                        .map_err(|e| format!("{}: {e}", at()))?;
                } else if let Some(rest) = line.strip_prefix("nests ") {
                    lattice
                        .parse_nests(rest)
                        .map_err(|e| format!("{}: {e}", at()))?;
                } else if let Some(rest) = line.strip_prefix("duplicate-insensitive ") {
                    table
                        .duplicate_insensitive
                        .extend(rest.split_whitespace().map(str::to_string));
                } else if let Some(rest) = line.strip_prefix("empty-is-default ") {
                    table
                        .empty_is_default
                        .extend(rest.split_whitespace().map(str::to_string));
                } else {
                    return Err(format!("{}: cannot read '{line}'", at()));
                }
            }
        }
        let (table, lattice) = (Arc::new(table), Arc::new(lattice));
        let rewrites = rules
            .into_iter()
            .map(|(prefix, text, at)| {
                parse_rule(&prefix, &text, &table, &lattice).map_err(|e| format!("{at}: {e}"))
            })
            .collect::<Result<_, _>>()?;
        Ok(RuleSet {
            rewrites,
            rollups: table,
            lattice,
        })
    }
}

fn parse_rule(
    prefix: &str,
    text: &str,
    table: &Arc<RollupTable>,
    lattice: &Arc<Lattice>,
) -> Result<Rewrite<Node, PlanAnalysis>, String> {
    let (name, body) = text.split_once(':').ok_or("expected 'rule NAME: ...'")?;
    let name = format!("{prefix}{}", name.trim());
    match body.trim() {
        "@coarser-bucket" => {
            let rewrite = CoarserBucket {
                lattice: Arc::clone(lattice),
            };
            let applier = CoarserBucket {
                lattice: Arc::clone(lattice),
            };
            return Rewrite::new(name, rewrite, applier);
        }
        "@aligned-range" => return Rewrite::new(name, AlignedRange, AlignedRange),
        "@field-of-bucket" => {
            let searcher = FieldOfBucket {
                lattice: Arc::clone(lattice),
            };
            let applier = FieldOfBucket {
                lattice: Arc::clone(lattice),
            };
            return Rewrite::new(name, searcher, applier);
        }
        _ => {}
    }
    let (body, conds) = match body.split_once(" if ") {
        Some((b, c)) => (b, Some(c)),
        None => (body, None),
    };
    let (lhs, rhs) = body
        .split_once("=>")
        .ok_or("expected SEARCHER => APPLIER")?;
    let searcher = MvQuerySearcher::parse(lhs.trim())?;
    let condition = AllOf(
        conds
            .map(|c| {
                c.split(';')
                    .map(Check::parse)
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?
            .unwrap_or_default(),
    );
    let rhs = rhs.trim();
    if let Some(applier) = rhs.strip_prefix('@') {
        match applier {
            "rollup" => {
                let applier = RollupApplier::new(Arc::clone(table));
                Rewrite::new(name, searcher, Guarded { condition, applier })
            }
            "subsume" => {
                let applier = SubsumeApplier::default();
                Rewrite::new(name, searcher, Guarded { condition, applier })
            }
            "having" => {
                let applier = HavingApplier::default();
                Rewrite::new(name, searcher, Guarded { condition, applier })
            }
            other => Err(format!("unknown applier @{other}")),
        }
    } else {
        let applier = MultiPattern::<Node>::from_str(&bind_root(rhs))
            .map_err(|e| format!("bad applier: {e}"))?;
        Rewrite::new(name, searcher, Guarded { condition, applier })
    }
}

/// Pattern variables by name, for the Rust appliers (the names are literals in the code).
pub(crate) fn var(name: &str) -> Var {
    name.parse().expect("valid variable name")
}

/// Lets a single pattern be written without `?root =`.
fn bind_root(pattern: &str) -> String {
    if pattern.contains('=') {
        pattern.to_string()
    } else {
        format!("?root = {pattern}")
    }
}

#[cfg(test)]
mod tests {
    /// The pack's edges claim no nesting the arithmetic denies, and miss none it allows.
    #[test]
    fn the_pack_agrees_with_the_arithmetic() {
        let lattice = RuleSet::builtin().lattice;
        let grains = lattice.grains();
        assert!(grains.len() >= 14, "{grains:?}");
        for &fine in &grains {
            for &coarse in &grains {
                if fine != coarse {
                    assert_eq!(
                        lattice.nests(fine, coarse),
                        fine.divides(coarse),
                        "{fine:?} in {coarse:?}"
                    );
                }
            }
        }
        let g = |n: &str| lattice.grain(n).unwrap();
        assert!(!lattice.nests(g("week"), g("month")));
        assert!(!lattice.nests(g("iso_week"), g("year")));
        assert!(!lattice.nests(g("ten_minute"), g("fifteen_minute")));
        assert!(lattice.nests(g("second"), g("year")));
        assert!(!lattice.nests(g("month"), g("hour")));
    }

    use super::*;

    #[test]
    fn builtin_packs_load() {
        let rules = RuleSet::builtin();
        assert_eq!(rules.rewrites.len(), 18);
        assert_eq!(rules.rollups.rules["count"].via, "sum");
        assert!(rules.rollups.rules["count"].zero_on_empty);
        assert_eq!(rules.rollups.rules["avg"].from, ["sum", "count"]);
    }

    #[test]
    fn bad_packs_name_the_line() {
        let cases = [
            ("rule x ?a => ?a", "expected 'rule NAME: ...'"),
            (
                "rule x: ?m = (mv ?a ?b), ?q = (proj ?c ?m) => ?q = (proj ?c ?m) if no-such-check ?q",
                "unknown condition",
            ),
            (
                "rule x: ?m = (mv ?a ?b), ?q = (proj ?c ?m) => @nope",
                "unknown applier",
            ),
            (
                "rule x: (proj ?a ?b) => (proj ?a ?b)",
                "expected '?m = PATTERN, ?q = PATTERN'",
            ),
            (
                "rule x: ?q = (proj ?a ?b), ?m = (mv ?c ?d) => ?q = (proj ?a ?b)",
                "binds ?m",
            ),
            (
                "rollup sum from sum via no_such_fn",
                "unknown aggregate function",
            ),
            ("rollup avg from sum via divide", "two MV aggregates"),
            ("frobnicate", "cannot read"),
        ];
        for (line, message) in cases {
            let err = RuleSet::load(&[("p", &format!("# header\n{line}"))])
                .err()
                .unwrap_or_else(|| panic!("{line} loaded"));
            assert!(err.starts_with("p.rules:2:"), "{err}");
            assert!(err.contains(message), "{line}: {err}");
        }
    }
}
