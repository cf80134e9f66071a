//! Query forms added before saturation: equivalent spellings of the query's region that a rule
//! could not reach by rewriting alone (joined to more tables, split around a join, a left join
//! with a NOT NULL filter, join-equal columns swapped, joined aggregates as wider ones, an
//! aggregate over partials, an operand of an MV's integer `+`/`-` column), and the two shapes answered beside the e-graph (a region in
//! parts, a union from a union MV, a distinct INTERSECT swapped).
//!
//! May use: `catalog`, `rules`, `egraph`, `plan`, `timeseries`, `report`. Called by `engine`.

pub mod intersect;
pub mod invertible;
pub mod join_back;
pub mod join_equivalence;
pub mod lossless;
pub mod outer_join;
pub mod parts;
pub mod reaggregate;
pub mod union;
pub mod wider_aggregates;
