//! Each MV's status for one plan: what was noted of it in one region is kept unless another
//! region says more (used beats more expensive beats a rejection).

use std::collections::BTreeMap;

use crate::report::{CandidateStatus, ReasonCode};

/// The status of every MV considered so far, by name.
pub(super) type Statuses = BTreeMap<String, CandidateStatus>;

/// How much a status says: a more telling one replaces a less telling one.
pub(super) fn rank(status: &CandidateStatus) -> u8 {
    match status {
        CandidateStatus::Used => 0,
        CandidateStatus::MoreExpensive => 1,
        CandidateStatus::Rejected(r) if r.code != ReasonCode::DifferentTables => 2,
        CandidateStatus::Ineligible(_) => 3,
        CandidateStatus::Rejected(_) => 4,
    }
}

/// Keeps the most useful status when an MV is considered in several regions.
pub(super) fn note(statuses: &mut Statuses, mv: &str, status: CandidateStatus) {
    match statuses.get(mv) {
        Some(old) if rank(old) <= rank(&status) => {}
        _ => {
            statuses.insert(mv.to_string(), status);
        }
    }
}
