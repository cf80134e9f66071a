//! What happened to each candidate MV, in words a user can act on.

use std::fmt;

/// Why an MV did not answer a query. A closed set: every code has a test that triggers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ReasonCode {
    /// The MV's definition can never answer a query (non-deterministic, LIMIT, window, ...).
    Ineligible,
    /// The MV reads different base tables than the query.
    DifferentTables,
    /// The query needs a column or expression the MV does not keep.
    ColumnMissing,
    /// The query groups by an expression the MV does not keep as a group key.
    GroupByNotKept,
    /// The query uses an aggregate the MV does not keep (or cannot be rolled up from it).
    AggregateMissing,
    /// `avg` needs the MV to keep both `sum(x)` and `count(x)`.
    AvgNeedsSumAndCount,
    /// A DISTINCT aggregate whose argument is not a group key of the MV.
    DistinctNotOnKey,
    /// The MV aggregates but the query reads rows.
    MvAggregatesQueryDoesNot,
    /// The query buckets a timestamp by a grain the MV's bucket of it does not nest in (week to
    /// month, ten to fifteen minutes, month to hour, another time zone's clock).
    BucketNotNested,
    /// A range on a timestamp whose bounds do not start buckets of the MV's (or the query's)
    /// grain, or whose upper bound is inclusive.
    TimeRangeNotAligned,
    /// The query and the MV join their tables differently: other subqueries, outer joins on
    /// other conditions, or an outer join the other side's join cannot be read from.
    JoinNotMatched,
    /// The MV is a UNION whose branches are not the query's (or the query is no UNION).
    UnionNotMatched,
    /// The query's filter does not imply the MV's: the MV lacks rows the query needs.
    FilterNotImplied,
    /// Over an aggregated MV, the filter still to apply reads a column that is not a group key.
    FilterNotOnGroupKeys,
    /// The query has a shape the rewriter does not handle (joins, unions, subqueries, ...).
    UnsupportedQuery,
    /// More MVs could answer than one e-graph takes (`Limits::candidates`); this one was not
    /// among the smallest, so it was not tried.
    CandidateLimit,
    /// A base table was written after the MV was computed.
    Stale,
    /// The MV could answer but another plan reads fewer rows.
    MoreExpensive,
}

impl ReasonCode {
    /// The stable snake_case name used in reports and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::Ineligible => "ineligible",
            ReasonCode::DifferentTables => "different_tables",
            ReasonCode::ColumnMissing => "column_missing",
            ReasonCode::GroupByNotKept => "group_by_not_kept",
            ReasonCode::AggregateMissing => "aggregate_missing",
            ReasonCode::AvgNeedsSumAndCount => "avg_needs_sum_and_count",
            ReasonCode::DistinctNotOnKey => "distinct_not_on_key",
            ReasonCode::MvAggregatesQueryDoesNot => "mv_aggregates_query_does_not",
            ReasonCode::BucketNotNested => "bucket_not_nested",
            ReasonCode::TimeRangeNotAligned => "time_range_not_aligned",
            ReasonCode::JoinNotMatched => "join_not_matched",
            ReasonCode::UnionNotMatched => "union_not_matched",
            ReasonCode::FilterNotImplied => "filter_not_implied",
            ReasonCode::FilterNotOnGroupKeys => "filter_not_on_group_keys",
            ReasonCode::UnsupportedQuery => "unsupported_query",
            ReasonCode::CandidateLimit => "candidate_limit",
            ReasonCode::Stale => "stale",
            ReasonCode::MoreExpensive => "more_expensive",
        }
    }
}

impl ReasonCode {
    /// Every code, for documentation and exhaustive tests.
    pub const ALL: [ReasonCode; 18] = [
        ReasonCode::Ineligible,
        ReasonCode::DifferentTables,
        ReasonCode::ColumnMissing,
        ReasonCode::GroupByNotKept,
        ReasonCode::AggregateMissing,
        ReasonCode::AvgNeedsSumAndCount,
        ReasonCode::DistinctNotOnKey,
        ReasonCode::MvAggregatesQueryDoesNot,
        ReasonCode::BucketNotNested,
        ReasonCode::TimeRangeNotAligned,
        ReasonCode::JoinNotMatched,
        ReasonCode::UnionNotMatched,
        ReasonCode::FilterNotImplied,
        ReasonCode::FilterNotOnGroupKeys,
        ReasonCode::UnsupportedQuery,
        ReasonCode::CandidateLimit,
        ReasonCode::Stale,
        ReasonCode::MoreExpensive,
    ];

    /// How much a reason says: a missing column is what every failed check ends in; a key,
    /// filter or bucket that does not fit says which check failed.
    pub fn specificity(self) -> u8 {
        match self {
            ReasonCode::ColumnMissing => 0,
            ReasonCode::GroupByNotKept | ReasonCode::AggregateMissing => 1,
            _ => 2,
        }
    }

    /// What the user can do about it, in a sentence.
    pub fn hint(self) -> &'static str {
        match self {
            ReasonCode::Ineligible => {
                "drop what makes the definition unusable (now(), random(), LIMIT, window functions, outer joins) from the MV"
            }
            ReasonCode::DifferentTables => {
                "define the MV over the query's tables, or declare the keys that make its extra joins lossless (ALTER TABLE .. ADD PRIMARY KEY / FOREIGN KEY)"
            }
            ReasonCode::ColumnMissing => "add the column or expression to the MV's SELECT list",
            ReasonCode::GroupByNotKept => "add it to the MV's GROUP BY (and SELECT list)",
            ReasonCode::AggregateMissing => {
                "add the aggregate to the MV, or one it rolls up from (sum, count, min, max)"
            }
            ReasonCode::AvgNeedsSumAndCount => {
                "store sum(x) and count(x) in the MV, not only avg(x)"
            }
            ReasonCode::DistinctNotOnKey => {
                "add the DISTINCT aggregate's argument to the MV's GROUP BY"
            }
            ReasonCode::MvAggregatesQueryDoesNot => {
                "define a projection MV (no GROUP BY) for queries that read rows"
            }
            ReasonCode::BucketNotNested => {
                "bucket the MV at a grain that nests in the query's (hour for days, day for months; weeks nest in nothing coarser)"
            }
            ReasonCode::TimeRangeNotAligned => {
                "bound the range on bucket starts of the MV's grain: ts >= start AND ts < end"
            }
            ReasonCode::JoinNotMatched => {
                "define the MV with the query's joins: the same inputs (subqueries alike), and the same outer, semi and anti joins on the same ON conditions"
            }
            ReasonCode::UnionNotMatched => {
                "define the MV as the query's UNION: the same branches (in any order), UNION ALL answering both kinds"
            }
            ReasonCode::FilterNotImplied => {
                "widen the MV's WHERE so that it keeps every row the query reads"
            }
            ReasonCode::FilterNotOnGroupKeys => {
                "add the filtered column to the MV's GROUP BY, or the filter to the MV's WHERE"
            }
            ReasonCode::UnsupportedQuery => {
                "the rewriter does not handle this shape yet; see the README's list"
            }
            ReasonCode::CandidateLimit => {
                "drop MVs that the smaller ones make redundant, or raise Limits::candidates"
            }
            ReasonCode::Stale => "refresh the MV (REFRESH MATERIALIZED VIEW name)",
            ReasonCode::MoreExpensive => {
                "nothing to do: reading the base tables is estimated cheaper than this MV"
            }
        }
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A reason code with its sentence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    /// The stable code, for programs.
    pub code: ReasonCode,
    /// The sentence, for people: what the query needs that the MV does not give.
    pub reason: String,
}

impl Rejection {
    /// A rejection with this code and sentence.
    pub fn new(code: ReasonCode, reason: impl Into<String>) -> Self {
        Rejection {
            code,
            reason: reason.into(),
        }
    }
}

/// The outcome for one registered MV.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CandidateStatus {
    /// The rewritten plan reads it.
    Used,
    /// It can answer, but the chosen plan is cheaper.
    MoreExpensive,
    /// It cannot answer this query.
    Rejected(Rejection),
    /// It was registered as not usable for rewriting.
    Ineligible(Rejection),
}

impl CandidateStatus {
    /// The status as the report and the CLI's JSON spell it.
    pub fn as_str(&self) -> &'static str {
        match self {
            CandidateStatus::Used => "used",
            CandidateStatus::MoreExpensive => "more_expensive",
            CandidateStatus::Rejected(_) => "rejected",
            CandidateStatus::Ineligible(_) => "ineligible",
        }
    }
}

/// One MV's line in the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The MV's name.
    pub mv: String,
    /// Whether it was used, and why not.
    pub status: CandidateStatus,
}

/// How saturation went for one rewritable region.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SaturationStats {
    /// Iterations the rules ran.
    pub iterations: usize,
    /// E-nodes at the end.
    pub nodes: usize,
    /// E-classes at the end.
    pub classes: usize,
    /// Why saturation stopped (saturated, or the limit it hit).
    pub stop_reason: String,
}

/// Everything the rewriter decided about one query.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Every MV considered, with its status.
    pub candidates: Vec<Candidate>,
    /// One entry per region that entered an e-graph.
    pub saturation: Vec<SaturationStats>,
    /// Set when the query (or a part of it) could not be considered at all.
    pub unsupported: Option<String>,
    /// What the user should know about the MVs used (a stale MV answering because its
    /// staleness allows it).
    pub notes: Vec<String>,
    /// Regions answered in two parts (src/forms/parts.rs): which MV answers which rows, and where
    /// the others are read from.
    pub parts: Vec<String>,
}

impl Report {
    /// MVs read by the rewritten plan.
    pub fn used_mvs(&self) -> Vec<String> {
        self.candidates
            .iter()
            .filter(|c| c.status == CandidateStatus::Used)
            .map(|c| c.mv.clone())
            .collect()
    }

    /// How [`Self::unsupported`] is introduced: a part of the query may be unsupported while
    /// another part is answered.
    pub fn unsupported_heading(&self) -> &'static str {
        if self.used_mvs().is_empty() {
            "not rewritten"
        } else {
            "a part not rewritten"
        }
    }

    /// Records `mv` as read by the rewritten plan.
    pub fn mark_used(&mut self, mv: &str) {
        match self.candidates.iter_mut().find(|c| c.mv == mv) {
            Some(c) => c.status = CandidateStatus::Used,
            None => self.candidates.push(Candidate {
                mv: mv.to_string(),
                status: CandidateStatus::Used,
            }),
        }
    }

    /// The status of one MV, if it was considered.
    pub fn status_of(&self, mv: &str) -> Option<&CandidateStatus> {
        self.candidates
            .iter()
            .find(|c| c.mv == mv)
            .map(|c| &c.status)
    }
}

impl Report {
    /// The report as the stable JSON documented in docs/cli.md: `candidates` (one per MV that
    /// reads the query's tables, with `status` `used`, `more_expensive`, `rejected`, `stale`
    /// or `ineligible`, and for the last three `reason_code` and `reason`) and `egraph`
    /// (summed over the query's regions).
    pub fn to_json(&self) -> serde_json::Value {
        let candidates: Vec<serde_json::Value> = self
            .candidates
            .iter()
            .map(|c| {
                let (status, rejection) = match &c.status {
                    CandidateStatus::Rejected(r) if r.code == ReasonCode::Stale => {
                        ("stale", Some(r))
                    }
                    CandidateStatus::Rejected(r) | CandidateStatus::Ineligible(r) => {
                        (c.status.as_str(), Some(r))
                    }
                    other => (other.as_str(), None),
                };
                serde_json::json!({
                    "mv": c.mv,
                    "status": status,
                    "reason_code": rejection.map(|r| r.code.as_str()),
                    "reason": rejection.map(|r| r.reason.as_str()),
                })
            })
            .collect();
        let last = self.saturation.last();
        serde_json::json!({
            "used_mvs": self.used_mvs(),
            "candidates": candidates,
            "unsupported": self.unsupported,
            "notes": self.notes,
            "parts": self.parts,
            "egraph": {
                "regions": self.saturation.len(),
                "nodes": self.saturation.iter().map(|s| s.nodes).sum::<usize>(),
                "iterations": self.saturation.iter().map(|s| s.iterations).max().unwrap_or(0),
                "stop_reason": last.map(|s| s.stop_reason.as_str()),
            },
        })
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(u) = &self.unsupported {
            writeln!(f, "{}: {u}", self.unsupported_heading())?;
        }
        for c in &self.candidates {
            match &c.status {
                CandidateStatus::Used => writeln!(f, "{}: used", c.mv)?,
                CandidateStatus::MoreExpensive => {
                    writeln!(f, "{}: matched, but another plan reads fewer rows", c.mv)?
                }
                CandidateStatus::Rejected(r) | CandidateStatus::Ineligible(r) => writeln!(
                    f,
                    "{}: {} [{}] {}",
                    c.mv,
                    c.status.as_str(),
                    r.code,
                    r.reason
                )?,
            }
        }
        for n in &self.notes {
            writeln!(f, "note: {n}")?;
        }
        for p in &self.parts {
            writeln!(f, "in parts: {p}")?;
        }
        for s in &self.saturation {
            writeln!(
                f,
                "e-graph: {} nodes, {} classes, {} iterations, stopped: {}",
                s.nodes, s.classes, s.iterations, s.stop_reason
            )?;
        }
        Ok(())
    }
}

/// Why the query's filter does not imply the MV's.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NotImplied {
    /// What the query allows, as a condition (`price <= 100`, or the query's filter).
    pub query_allows: String,
    /// The MV conjunct it does not imply (`price > 200`).
    pub mv_keeps: String,
}
