//! The rewritten plan as SQL text (what `rewrite` returns and the command line prints), for
//! the plans DataFusion's unparser does not write right by itself (src/frontend/unparse.rs): each text
//! must plan and return the original query's rows. (Every other test comparing a rewrite also
//! runs its text where it plans: tests/common/mod.rs.)

mod common;

/// Returns whether the query was answered in parts.
async fn text_returns_the_same_rows(pair: &common::Pair, mv: &str, query: &str) -> bool {
    pair.session.sql(mv).await.unwrap();
    let used = common::assert_same(pair, query).await;
    assert!(!used.is_empty(), "{query} not rewritten");
    let in_parts = pair
        .session
        .last_report()
        .is_some_and(|r| !r.parts.is_empty());
    let plan = pair
        .session
        .context()
        .sql(query)
        .await
        .unwrap()
        .into_optimized_plan()
        .unwrap();
    let text = mvrewrite::testkit::checked_sql(&plan, &pair.plain.state())
        .await
        .unwrap_or_else(|| panic!("no SQL text that plans for\n{}", plan.display_indent()));
    let rows = pair
        .plain
        .sql(&text)
        .await
        .unwrap_or_else(|e| panic!("{e}\n{text}"))
        .collect()
        .await
        .unwrap();
    let expected = pair
        .plain
        .sql(query)
        .await
        .unwrap()
        .collect()
        .await
        .unwrap();
    if let Err(diff) = common::compare(&expected, &rows) {
        panic!("{diff}\n{text}");
    }
    in_parts
}

/// A union of partial aggregates: the unparser writes an unprojected aggregate's columns
/// aggregates first, which a UNION ALL would pair with the other part's group keys.
#[tokio::test]
async fn a_query_answered_in_parts() {
    let pair = common::sales_and_events();
    let in_parts = text_returns_the_same_rows(
        &pair,
        "CREATE MATERIALIZED VIEW by_duration AS SELECT users.country, visits.duration, count(*) AS n, sum(visits.duration) AS d FROM visits JOIN users ON visits.user_id = users.user_id WHERE visits.duration > 100 GROUP BY users.country, visits.duration",
        "SELECT users.country, count(*), sum(visits.duration) FROM visits JOIN users ON visits.user_id = users.user_id WHERE visits.duration < 300 GROUP BY users.country",
    )
    .await;
    assert!(in_parts);
}

/// A zoned timestamp literal: written as a cast to a timestamp without zone, it would be read
/// in the column's zone, hours off.
#[tokio::test]
async fn a_zoned_timestamp_range() {
    let pair = common::sales_and_events();
    text_returns_the_same_rows(
        &pair,
        "CREATE MATERIALIZED VIEW by_hour AS SELECT date_trunc('hour', ts_ny) AS t, sum(amount) AS total FROM readings GROUP BY 1",
        "SELECT sum(amount) FROM readings WHERE ts_ny >= '2023-03-12T00:00:00-05:00' AND ts_ny < '2023-11-06T00:00:00-05:00'",
    )
    .await;
}

/// An infinite float: written bare (`-inf`), it would be read as a column name.
#[tokio::test]
async fn an_infinite_float_literal() {
    let pair = common::sales_and_events();
    text_returns_the_same_rows(
        &pair,
        "CREATE MATERIALIZED VIEW priced AS SELECT user_id, price FROM sales WHERE price < 50",
        "SELECT user_id FROM sales WHERE price < 50 AND price > CAST('-inf' AS DOUBLE)",
    )
    .await;
}

/// An order by an output the MV computes: the sort key names it by the query's table.
#[tokio::test]
async fn an_ordered_rollup() {
    let pair = common::sales_and_events();
    text_returns_the_same_rows(
        &pair,
        "CREATE MATERIALIZED VIEW by_country AS SELECT country, sum(price) AS total FROM sales GROUP BY country",
        "SELECT country, sum(price) AS total FROM sales GROUP BY country ORDER BY country",
    )
    .await;
}

/// A derived table the MV answers: its alias must stay, the join reads its columns by it.
#[tokio::test]
async fn a_derived_table_answered_by_an_mv() {
    let pair = common::sales_and_events();
    text_returns_the_same_rows(
        &pair,
        "CREATE MATERIALIZED VIEW per_country AS SELECT country, sum(quantity) AS q FROM sales GROUP BY country",
        "SELECT s.sex, s.price, t.q FROM sales s JOIN (SELECT country, sum(quantity) AS q FROM sales GROUP BY country) t ON s.country = t.country",
    )
    .await;
}

/// A left join whose preserved side is a filtered table: the unparser folds a filter over a
/// join's input into the ON clause, where on the preserved side it no longer drops rows.
#[tokio::test]
async fn a_left_join_of_a_filtered_table() {
    let pair = common::sales_and_events();
    text_returns_the_same_rows(
        &pair,
        "CREATE MATERIALIZED VIEW per_user AS SELECT user_id, sum(duration) AS total FROM visits GROUP BY user_id",
        "SELECT users.user_id, users.name, users.country, users.tier, t.total FROM users LEFT JOIN (SELECT user_id, sum(duration) AS total FROM visits GROUP BY user_id) t ON users.user_id = t.user_id WHERE users.tier > 1",
    )
    .await;
}

/// The same over a table alias: the filter names the table, which the alias hides.
#[tokio::test]
async fn a_left_join_of_a_filtered_table_alias() {
    let pair = common::sales_and_events();
    text_returns_the_same_rows(
        &pair,
        "CREATE MATERIALIZED VIEW per_user AS SELECT user_id, sum(duration) AS total FROM visits GROUP BY user_id",
        "SELECT u.user_id, u.name, u.country, u.tier, t.total FROM users u LEFT JOIN (SELECT user_id, sum(duration) AS total FROM visits GROUP BY user_id) t ON u.user_id = t.user_id WHERE u.tier > 1",
    )
    .await;
}

/// NOT EXISTS over a filtered table: the unparser would move the filter into the NOT EXISTS
/// subquery, where it keeps the rows it should drop.
#[tokio::test]
async fn an_anti_join_of_a_filtered_table() {
    let pair = common::sales_and_events();
    text_returns_the_same_rows(
        &pair,
        "CREATE MATERIALIZED VIEW per_user AS SELECT user_id, sum(duration) AS total FROM visits GROUP BY user_id",
        "SELECT users.user_id, users.name, users.country, users.tier FROM users WHERE users.tier > 1 AND NOT EXISTS (SELECT 1 FROM (SELECT user_id, sum(duration) AS total FROM visits GROUP BY user_id) t WHERE t.user_id = users.user_id AND t.total > 100)",
    )
    .await;
}

/// NOT IN against a column with NULLs: the unparser writes NOT EXISTS, which a NULL does not
/// empty, so there is no text (the plan itself is rewritten and right).
#[tokio::test]
async fn no_text_for_a_not_in() {
    let pair = common::sales_and_events();
    pair.session
        .sql("CREATE MATERIALIZED VIEW per_user AS SELECT user_id, sum(duration) AS total FROM visits GROUP BY user_id")
        .await
        .unwrap();
    let query = "SELECT t.user_id, t.total FROM (SELECT user_id, sum(duration) AS total FROM visits GROUP BY user_id) t WHERE t.user_id NOT IN (SELECT referrer_id FROM visits)";
    assert_eq!(common::assert_same(&pair, query).await, vec!["per_user"]);
    let plan = pair
        .session
        .context()
        .sql(query)
        .await
        .unwrap()
        .into_optimized_plan()
        .unwrap();
    let text = mvrewrite::testkit::checked_sql(&plan, &pair.plain.state()).await;
    assert_eq!(text, None);
}

/// INTERSECT keeps a NULL both sides have: its join keys match NULLs, which `=` does not.
#[tokio::test]
async fn an_intersect_over_nulls() {
    let pair = common::sales_and_events();
    text_returns_the_same_rows(
        &pair,
        "CREATE MATERIALIZED VIEW per_ref AS SELECT referrer_id, count(*) AS n FROM visits GROUP BY referrer_id",
        "SELECT referrer_id FROM visits GROUP BY referrer_id INTERSECT SELECT referrer_id FROM visits WHERE duration > 100",
    )
    .await;
}
