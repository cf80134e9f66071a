//! `mvrewrite explain`: the original and rewritten plans side by side, and for every MV over
//! the query's tables the verdict in words, with what to change when it was not used.

use std::fmt::Write;

use crate::frontend::rewrite::RewriteResult;
use crate::report::CandidateStatus;

/// The explanation, as printed.
pub fn explain(result: &RewriteResult) -> String {
    let left: Vec<String> = result
        .original
        .display_indent()
        .to_string()
        .lines()
        .map(str::to_string)
        .collect();
    let right: Vec<String> = if result.rewritten {
        result
            .plan
            .display_indent()
            .to_string()
            .lines()
            .map(str::to_string)
            .collect()
    } else {
        vec!["(not rewritten: the original plan runs)".to_string()]
    };
    let width = left
        .iter()
        .chain(std::iter::once(&"original plan".to_string()))
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0);
    let mut out = String::new();
    let _ = writeln!(out, "{:width$} | rewritten plan", "original plan");
    let _ = writeln!(out, "{}-+-{}", "-".repeat(width), "-".repeat(14));
    for i in 0..left.len().max(right.len()) {
        let l = left.get(i).map_or("", String::as_str);
        let r = right.get(i).map_or("", String::as_str);
        let _ = writeln!(out, "{l:width$} | {r}");
    }
    out.push('\n');
    if result.report.candidates.is_empty() {
        let _ = writeln!(out, "no materialized view reads the query's tables");
    }
    if let Some(why) = &result.report.unsupported {
        let _ = writeln!(out, "{}: {why}", result.report.unsupported_heading());
    }
    for c in &result.report.candidates {
        let _ = match &c.status {
            CandidateStatus::Used => writeln!(out, "{}: used", c.mv),
            CandidateStatus::MoreExpensive => writeln!(
                out,
                "{}: could answer, but reading the base tables is estimated cheaper",
                c.mv
            ),
            CandidateStatus::Rejected(r) | CandidateStatus::Ineligible(r) => writeln!(
                out,
                "{}: not used [{}]: {}\n    to use it: {}",
                c.mv,
                r.code,
                r.reason,
                r.code.hint()
            ),
        };
    }
    for p in &result.report.parts {
        let _ = writeln!(out, "in parts: {p}");
    }
    for s in &result.report.saturation {
        let _ = writeln!(
            out,
            "e-graph: {} nodes, {} iterations, stopped: {}",
            s.nodes, s.iterations, s.stop_reason
        );
    }
    out
}
