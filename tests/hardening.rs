//! Pathological inputs get a bounded answer: the original plan or a correct rewritten one, no
//! stack overflow, no panic. (How long each takes is measured in `benches/rewrite.rs`, never
//! asserted here.)

mod common;

use std::sync::Arc;

use datafusion::arrow::array::Int64Array;
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::MemTable;
use datafusion::prelude::SessionContext;
use mvrewrite::{MvSession, Rewriter};

/// A session with tables `t0..t{n}` of `(id BIGINT, v BIGINT)`, 20 rows each.
fn tables(n: usize) -> (MvSession, SessionContext) {
    let session = MvSession::new();
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("v", DataType::Int64, true),
    ]));
    for t in 0..n {
        let batch = RecordBatch::try_new(
            Arc::clone(&schema),
            vec![
                Arc::new(Int64Array::from_iter_values(0..20)),
                Arc::new(Int64Array::from_iter((0..20).map(|i| {
                    let v = (i * 7 + t as i64) % 11;
                    (v != 3).then_some(v)
                }))),
            ],
        )
        .unwrap();
        let table = MemTable::try_new(Arc::clone(&schema), vec![vec![batch]]).unwrap();
        session
            .context()
            .register_table(format!("t{t}"), Arc::new(table))
            .unwrap();
    }
    let plain = session.without_rewrites();
    (session, plain)
}

#[tokio::test]
async fn a_forty_table_join() {
    let (session, plain) = tables(40);
    session
        .sql("CREATE MATERIALIZED VIEW pair AS SELECT t0.id, t0.v AS v0, t1.v AS v1 FROM t0 JOIN t1 ON t0.id = t1.id")
        .await
        .unwrap();
    let joins: String = (1..40)
        .map(|i| format!(" JOIN t{i} ON t{}.id = t{i}.id", i - 1))
        .collect();
    let sql = format!("SELECT t0.id, t0.v, t1.v, t39.v FROM t0{joins}");
    let used = common::assert_same_in(&session, &plain, &sql).await;
    assert_eq!(used, ["pair"], "the MV answers its part of the join");
    let sum: String = (0..40).map(|i| format!(" + coalesce(t{i}.v, 0)")).collect();
    let sql = format!("SELECT t0.id % 3, sum(0{sum}) FROM t0{joins} GROUP BY 1");
    common::assert_same_in(&session, &plain, &sql).await;
}

#[tokio::test]
async fn a_two_thousand_element_in_list() {
    let pair = common::sales_and_events();
    pair.session
        .sql("CREATE MATERIALIZED VIEW per_user AS SELECT user_id, event_type, count(*) AS n, sum(value) AS total FROM events WHERE user_id < 5000 GROUP BY user_id, event_type")
        .await
        .unwrap();
    let list: Vec<String> = (0..2000).map(|i| (i * 2).to_string()).collect();
    let sql = format!(
        "SELECT event_type, count(*), sum(value) FROM events WHERE user_id IN ({}) GROUP BY event_type",
        list.join(", ")
    );
    let used = common::assert_same(&pair, &sql).await;
    assert_eq!(used, ["per_user"], "every listed id is below 5000");
    let sql = format!(
        "SELECT event_type, count(*) FROM events WHERE user_id NOT IN ({}) GROUP BY event_type",
        list.join(", ")
    );
    assert!(common::assert_same(&pair, &sql).await.is_empty());
}

#[tokio::test]
async fn expressions_nested_five_hundred_deep() {
    // SQL parsers bound nesting (DataFusion's at 50 levels), so the plan is built directly.
    let (session, plain) = tables(1);
    session
        .sql("CREATE MATERIALIZED VIEW rows_of_t0 AS SELECT id, v FROM t0 WHERE id > 2")
        .await
        .unwrap();
    let source = datafusion::datasource::provider_as_source(
        session.context().table_provider("t0").await.unwrap(),
    );
    let plan = mvrewrite::testkit::datagen::deeply_nested_plan("t0", source, 500).unwrap();
    let run = |ctx: SessionContext, plan| {
        // A thread with a large stack, as a server would give: the point is that the work is
        // bounded, not how deep a test thread's stack is.
        std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(move || {
                tokio::runtime::Runtime::new()
                    .unwrap()
                    .block_on(async move {
                        ctx.execute_logical_plan(plan)
                            .await
                            .unwrap()
                            .collect()
                            .await
                            .unwrap()
                    })
            })
            .unwrap()
            .join()
            .unwrap()
    };
    let expected = run(plain, plan.clone());
    session.clear_report();
    let actual = run(session.context().clone(), plan);
    common::compare(&expected, &actual).unwrap();
    assert_eq!(
        session
            .last_report()
            .map(|r| r.used_mvs())
            .unwrap_or_default(),
        ["rows_of_t0"]
    );
}

/// 10,000 MVs on one table: the rewrite returns, with an MV that answers exactly.
#[test]
fn ten_thousand_mvs_on_one_table() {
    let mut rewriter = Rewriter::new();
    rewriter
        .execute("CREATE TABLE events (event_id BIGINT NOT NULL, ts TIMESTAMP NOT NULL, user_id BIGINT NOT NULL, event_type VARCHAR NOT NULL, value DOUBLE)")
        .unwrap();
    rewriter.set_table_rows("events", 10_000_000);
    for i in 0..10_000 {
        rewriter
            .execute(&format!(
                "CREATE MATERIALIZED VIEW mv{i} AS SELECT event_type, user_id % {m} AS bucket, count(*) AS n, sum(value) AS total FROM events WHERE value > {i} GROUP BY 1, 2",
                m = 2 + i % 7
            ))
            .unwrap();
    }
    // `value` is aggregated away: only the MV with the same filter and buckets answers.
    let answered = rewriter
        .rewrite_sql("SELECT event_type, user_id % 5, sum(value) FROM events WHERE value > 1235 GROUP BY 1, 2")
        .unwrap();
    assert_eq!(answered.used_mvs, ["mv1235"], "{}", answered.report);
    let unanswered = rewriter
        .rewrite_sql("SELECT user_id, max(value) FROM events GROUP BY user_id")
        .unwrap();
    assert!(!unanswered.rewritten);
}
