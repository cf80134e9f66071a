//! Test support shared by the tests, the demo, the benches and the fuzz targets: generated
//! data and result comparison, and re-exports of the internal helpers the tests drive. Not
//! part of the stable API.
//!
//! May use: `frontend`, `lifecycle` (for the re-exports); `datagen` and `compare` use no
//! stage. Used by `cli` (the demo), the tests, the benches and the fuzz targets.

pub mod compare;
pub mod datagen;

pub use crate::frontend::rewrite::split_statements;
pub use crate::frontend::sql::standard_sql;
pub use crate::frontend::unparse::checked_sql;
pub use crate::lifecycle::store::DataDir;
