//! The standalone `rewrite` entry points on arbitrary SQL: the first line is run as DDL
//! (`Rewriter::execute`: tables, MV definitions, keys, drops), the rest is rewritten as a
//! query. Errors are fine; a panic or a hang is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mvrewrite::Rewriter;

const TABLES: &str = "CREATE TABLE sales (user_id BIGINT, country VARCHAR, sex VARCHAR, quantity INT, price DOUBLE, day DATE); \
    CREATE TABLE events (event_id BIGINT NOT NULL, ts TIMESTAMP NOT NULL, user_id BIGINT NOT NULL, event_type VARCHAR NOT NULL, value DOUBLE)";

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (ddl, query) = text.split_once('\n').unwrap_or((&text, ""));
    let mut rewriter = Rewriter::new();
    rewriter.execute(TABLES).expect("the fixed tables are valid");
    let _ = rewriter.execute(ddl);
    if !query.trim().is_empty() {
        let _ = rewriter.rewrite_sql(query);
    }
});
