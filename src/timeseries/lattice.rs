//! The granularity lattice: named grains and which nest in which, read from the `timeseries`
//! rule pack into a petgraph graph.
//!
//! ```text
//! grain NAME = N UNIT[s] [from YYYY-MM-DD]     # fixed width; buckets start at the origin
//! grain NAME = calendar month|quarter|year
//! nests FINE in COARSE...                     # every COARSE bucket is a union of FINE ones
//! ```
//!
//! Nesting between named grains follows the graph's paths (petgraph's `has_path_connecting`);
//! a `date_bin` grain the pack does not name nests by [`Grain::divides`]. The tests check the
//! two agree on every named pair, so the data cannot claim a nesting the arithmetic denies.

use std::collections::HashMap;

use petgraph::algo::has_path_connecting;
use petgraph::graph::{DiGraph, NodeIndex};

use super::grain::{Grain, NANOS_PER_DAY, NANOS_PER_SECOND};

/// Named grains and their nesting edges.
#[derive(Clone, Debug, Default)]
pub struct Lattice {
    graph: DiGraph<Grain, ()>,
    by_name: HashMap<String, NodeIndex>,
    by_grain: HashMap<Grain, NodeIndex>,
}

impl Lattice {
    /// Reads a `grain NAME = ...` line's text after `grain `.
    pub fn parse_grain(&mut self, text: &str) -> Result<(), String> {
        let (name, def) = text
            .split_once('=')
            .ok_or("expected 'grain NAME = DEFINITION'")?;
        let name = name.trim().to_ascii_lowercase();
        let words: Vec<&str> = def.split_whitespace().collect();
        let grain = match words.as_slice() {
            ["calendar", "month"] => Grain::Month,
            ["calendar", "quarter"] => Grain::Quarter,
            ["calendar", "year"] => Grain::Year,
            [n, unit, rest @ ..] => {
                let n: i64 = n.parse().map_err(|_| format!("'{n}' is not a count"))?;
                let origin = match rest {
                    [] => 0,
                    ["from", date] => days_since_epoch(date)? * NANOS_PER_DAY,
                    _ => return Err(format!("cannot read '{}'", rest.join(" "))),
                };
                let width = n.checked_mul(unit_nanos(unit)?).ok_or("width overflows")?;
                Grain::fixed(width, origin).ok_or("the width must be positive")?
            }
            _ => return Err(format!("cannot read grain '{}'", def.trim())),
        };
        if self.by_name.contains_key(&name) {
            return Err(format!("grain {name} defined twice"));
        }
        let node = *self
            .by_grain
            .entry(grain)
            .or_insert_with(|| self.graph.add_node(grain));
        self.by_name.insert(name, node);
        Ok(())
    }

    /// Reads a `nests FINE in COARSE...` line's text after `nests `.
    pub fn parse_nests(&mut self, text: &str) -> Result<(), String> {
        let (fine, coarse) = text
            .split_once(" in ")
            .ok_or("expected 'nests FINE in COARSE...'")?;
        let fine = self.node(fine.trim())?;
        for name in coarse.split_whitespace() {
            let coarse = self.node(name)?;
            self.graph.update_edge(fine, coarse, ());
        }
        Ok(())
    }

    fn node(&self, name: &str) -> Result<NodeIndex, String> {
        self.by_name
            .get(&name.to_ascii_lowercase())
            .copied()
            .ok_or_else(|| format!("unknown grain '{name}'"))
    }

    /// The grain a name (CarbonData's `'fifteen_minute'`, `'week'`) stands for.
    pub fn grain(&self, name: &str) -> Option<Grain> {
        self.node(name).ok().map(|n| self.graph[n])
    }

    /// The names of the grains, sorted (for error messages).
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.by_name.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Whether buckets of `coarse` are exact unions of buckets of `fine`, `fine` strictly
    /// finer: along the lattice's edges for named grains, by arithmetic for others.
    pub fn nests(&self, fine: Grain, coarse: Grain) -> bool {
        if fine == coarse {
            return false;
        }
        match (self.by_grain.get(&fine), self.by_grain.get(&coarse)) {
            (Some(f), Some(c)) => has_path_connecting(&self.graph, *f, *c, None),
            _ => fine.divides(coarse),
        }
    }

    /// Every named grain, for checks over all pairs.
    pub fn grains(&self) -> Vec<Grain> {
        self.graph.node_weights().copied().collect()
    }
}

fn unit_nanos(unit: &str) -> Result<i64, String> {
    Ok(match unit.trim_end_matches('s') {
        "microsecond" => 1_000,
        "millisecond" => 1_000_000,
        "second" => NANOS_PER_SECOND,
        "minute" => 60 * NANOS_PER_SECOND,
        "hour" => 3_600 * NANOS_PER_SECOND,
        "day" => NANOS_PER_DAY,
        other => return Err(format!("unknown unit '{other}'")),
    })
}

/// Days from 1970-01-01 to a `YYYY-MM-DD` date (proleptic Gregorian).
fn days_since_epoch(date: &str) -> Result<i64, String> {
    let bad = || format!("'{date}' is not a YYYY-MM-DD date");
    let mut parts = date.split('-').map(|p| p.parse::<i64>());
    let (Some(Ok(y)), Some(Ok(m)), Some(Ok(d)), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad());
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    // Howard Hinnant's days_from_civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Ok(era * 146_097 + doe - 719_468)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_count_from_the_epoch() {
        assert_eq!(days_since_epoch("1970-01-01"), Ok(0));
        assert_eq!(days_since_epoch("1970-01-04"), Ok(3));
        assert_eq!(days_since_epoch("2024-03-01"), Ok(19_783));
        assert!(days_since_epoch("2024-13-01").is_err());
    }

    #[test]
    fn bad_lines_are_named() {
        let mut l = Lattice::default();
        assert!(
            l.parse_grain("x = 5 fortnights")
                .unwrap_err()
                .contains("unit")
        );
        assert!(
            l.parse_grain("x = 0 days")
                .unwrap_err()
                .contains("positive")
        );
        assert!(
            l.parse_nests("x in y")
                .unwrap_err()
                .contains("unknown grain")
        );
    }
}
