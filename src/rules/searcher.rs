//! The searcher for rules of the form `?m = MV_PATTERN, ?q = QUERY_PATTERN`: matches the
//! query's classes against the registered MVs' classes only, joining on shared variables.
//! egg's generic multi-pattern search scans every e-class for every match of the first pattern,
//! which is quadratic in the number of candidate MVs; this is linear.

use egg::{Id, Pattern, SearchMatches, Searcher, Subst, Var};

use crate::egraph::lang::{Node, PlanAnalysis, PlanGraph};

pub struct MvQuerySearcher {
    mv: Pattern<Node>,
    query: Pattern<Node>,
    mv_var: Var,
    query_var: Var,
}

impl MvQuerySearcher {
    /// Parses `?m = PATTERN, ?q = PATTERN` (in that order).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (m, q) = split_top_level(text).ok_or("expected '?m = PATTERN, ?q = PATTERN'")?;
        let bind = |s: &str| -> Result<(Var, Pattern<Node>), String> {
            let (var, pattern) = s.split_once('=').ok_or("expected '?var = PATTERN'")?;
            let var: Var = var.trim().parse().map_err(|e| format!("{e}"))?;
            let pattern = pattern
                .trim()
                .parse()
                .map_err(|e| format!("bad pattern: {e}"))?;
            Ok((var, pattern))
        };
        let (mv_var, mv) = bind(m)?;
        let (query_var, query) = bind(q)?;
        if (mv_var.to_string(), query_var.to_string()) != ("?m".into(), "?q".into()) {
            return Err("the searcher binds ?m (the MV) first, then ?q (the query)".into());
        }
        Ok(MvQuerySearcher {
            mv,
            query,
            mv_var,
            query_var,
        })
    }

    fn search_class(
        &self,
        egraph: &PlanGraph,
        eclass: Id,
        limit: usize,
        mv_matches: &[(Id, SearchMatches<'_, Node>)],
    ) -> Option<SearchMatches<'_, Node>> {
        let mut substs = self.join(egraph, eclass, mv_matches);
        substs.truncate(limit);
        (!substs.is_empty()).then_some(SearchMatches {
            eclass,
            substs,
            ast: None,
        })
    }

    /// The MV pattern's matches in each MV root: searched once per search, not once per
    /// query class.
    fn mv_matches(&self, egraph: &PlanGraph) -> Vec<(Id, SearchMatches<'_, Node>)> {
        egraph
            .analysis
            .mv_roots
            .iter()
            .filter_map(|m| Some((*m, self.mv.search_eclass(egraph, *m)?)))
            .collect()
    }

    fn join(
        &self,
        egraph: &PlanGraph,
        query_class: Id,
        mv_matches: &[(Id, SearchMatches<'_, Node>)],
    ) -> Vec<Subst> {
        if mv_matches.is_empty() {
            return vec![];
        }
        let Some(query_matches) = self.query.search_eclass(egraph, query_class) else {
            return vec![];
        };
        let mut out = Vec::new();
        for (mv_class, mv_matches) in mv_matches {
            for qs in &query_matches.substs {
                for ms in &mv_matches.substs {
                    if let Some(s) = merge(egraph, qs, ms, &self.mv.vars()) {
                        let mut s = s;
                        s.insert(self.query_var, egraph.find(query_class));
                        s.insert(self.mv_var, egraph.find(*mv_class));
                        out.push(s);
                    }
                }
            }
        }
        out
    }
}

/// `a` extended with `b`'s bindings of `vars`, if they agree where both bind.
fn merge(egraph: &PlanGraph, a: &Subst, b: &Subst, vars: &[Var]) -> Option<Subst> {
    let mut s = a.clone();
    for v in vars {
        let Some(id) = b.get(*v) else { continue };
        match s.get(*v) {
            Some(existing) if egraph.find(*existing) != egraph.find(*id) => return None,
            Some(_) => {}
            None => {
                s.insert(*v, *id);
            }
        }
    }
    Some(s)
}

/// Splits `A, B` at the comma outside parentheses.
fn split_top_level(text: &str) -> Option<(&str, &str)> {
    let mut depth = 0i32;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => return Some((text[..i].trim(), text[i + 1..].trim())),
            _ => {}
        }
    }
    None
}

impl Searcher<Node, PlanAnalysis> for MvQuerySearcher {
    fn search_eclass_with_limit(
        &self,
        egraph: &PlanGraph,
        eclass: Id,
        limit: usize,
    ) -> Option<SearchMatches<'_, Node>> {
        self.search_class(egraph, eclass, limit, &self.mv_matches(egraph))
    }

    fn search_with_limit(
        &self,
        egraph: &PlanGraph,
        mut limit: usize,
    ) -> Vec<SearchMatches<'_, Node>> {
        let mut classes: Vec<Id> = egraph
            .analysis
            .query
            .iter()
            .map(|i| egraph.find(*i))
            .collect();
        classes.sort();
        classes.dedup();
        let mv_matches = self.mv_matches(egraph);
        let mut out = Vec::new();
        for class in classes {
            if limit == 0 {
                break;
            }
            if let Some(m) = self.search_class(egraph, class, limit, &mv_matches) {
                limit -= m.substs.len();
                out.push(m);
            }
        }
        out
    }

    fn vars(&self) -> Vec<Var> {
        let mut vars = self.mv.vars();
        vars.extend(self.query.vars());
        vars.extend([self.mv_var, self.query_var]);
        vars.sort();
        vars.dedup();
        vars
    }
}
