//! `MvSession::sql` on arbitrary SQL over small generated tables: each line is one statement
//! (MV DDL is materialized; queries are planned and optimized, so the rule runs, but not
//! executed). Errors are fine; a panic or a hang is a bug.
#![no_main]

use std::sync::LazyLock;

use datafusion::arrow::record_batch::RecordBatch;
use libfuzzer_sys::fuzz_target;
use mvrewrite::testkit::datagen;
use mvrewrite::MvSession;

static RUNTIME: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
});

/// Tiny tables, so that materializing any MV (a cross join of all of them included) is quick.
static TABLES: LazyLock<Vec<(&str, RecordBatch)>> = LazyLock::new(|| {
    vec![
        ("sales", datagen::sales(50, 7).unwrap()),
        ("events", datagen::events(100, 100, 11, |_| {}).unwrap().remove(0)),
        ("readings", datagen::readings(50, 3).unwrap()),
        ("users", datagen::users(20, 13).unwrap()),
        ("visits", datagen::visits(50, 20, 17).unwrap()),
        ("sites", datagen::sites(19).unwrap()),
    ]
});

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    RUNTIME.block_on(async {
        let session = MvSession::new();
        for (name, batch) in TABLES.iter() {
            session.register_batches(name, vec![batch.clone()]).await.unwrap();
        }
        for statement in text.lines().filter(|l| !l.trim().is_empty()) {
            if let Ok(df) = session.sql(statement).await {
                let _ = df.into_optimized_plan();
            }
        }
    });
});
