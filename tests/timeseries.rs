//! Time-bucket rollup end to end: random pairs of an MV bucketed at one grain and a query at
//! another, in random spellings (date_trunc, date_bin, CarbonData `timeseries`, ClickHouse
//! `toStartOf*`), over a naive timestamp, two zoned ones (New York with its daylight-saving
//! changes, Kathmandu at UTC+05:45) and a DATE column, sometimes with a time or date range. Every
//! query runs with and without rewriting over `readings` (2022-11 to 2025-01) and the results
//! are compared; the MV must be used exactly when the query's grain nests in the MV's, by the
//! lattice written out below (independently of the pack's).
//!
//! `TIME_CASES` (default 150) and `DIFF_SEED` (default 1) choose the pairs.

mod common;

use mvrewrite::CandidateStatus;
use mvrewrite::testkit::datagen::Rng;

/// `(fine, coarse)`: the lattice edges; nesting is their transitive closure.
const EDGES: [(&str, &str); 15] = [
    ("second", "minute"),
    ("minute", "five_minute"),
    ("minute", "ten_minute"),
    ("minute", "fifteen_minute"),
    ("five_minute", "ten_minute"),
    ("five_minute", "fifteen_minute"),
    ("ten_minute", "thirty_minute"),
    ("fifteen_minute", "thirty_minute"),
    ("thirty_minute", "hour"),
    ("hour", "day"),
    ("day", "week"),
    ("day", "iso_week"),
    ("day", "month"),
    ("month", "quarter"),
    ("quarter", "year"),
];

fn nests(fine: &str, coarse: &str) -> bool {
    let mut reached = vec![fine];
    let mut i = 0;
    while i < reached.len() {
        let from = reached[i];
        for (f, c) in EDGES {
            if f == from && !reached.contains(&c) {
                reached.push(c);
            }
        }
        i += 1;
    }
    fine != coarse && reached.contains(&coarse)
}

/// The spellings of a grain over `col`; zoned timestamps and DATE columns only have some.
fn spellings(grain: &str, col: &str) -> Vec<String> {
    let zoned = col.starts_with("ts_");
    let date = col == "day";
    let mut out = Vec::new();
    let unit = match grain {
        "iso_week" => Some("week"),
        "second" | "minute" | "hour" | "day" | "month" | "quarter" | "year" => Some(grain),
        _ => None,
    };
    if let Some(unit) = unit {
        out.push(format!("date_trunc('{unit}', {col})"));
    }
    if grain != "iso_week" && !(zoned && unit.is_none()) {
        out.push(format!("timeseries({col}, '{grain}')"));
    }
    let clickhouse = match grain {
        "second" => Some("toStartOfSecond"),
        "minute" => Some("toStartOfMinute"),
        "five_minute" => Some("toStartOfFiveMinutes"),
        "ten_minute" => Some("toStartOfTenMinutes"),
        "fifteen_minute" => Some("toStartOfFifteenMinutes"),
        "hour" => Some("toStartOfHour"),
        "day" => Some("toStartOfDay"),
        "week" => Some("toStartOfWeek"),
        "iso_week" => Some("toMonday"),
        "month" => Some("toStartOfMonth"),
        "quarter" => Some("toStartOfQuarter"),
        "year" => Some("toStartOfYear"),
        _ => None,
    };
    if let Some(f) = clickhouse
        && !(zoned && unit.is_none())
    {
        out.push(format!("{f}({col})"));
    }
    if grain == "day" && !zoned {
        out.push(format!("toDate({col})"));
    }
    let minutes = match grain {
        "minute" => Some(1),
        "five_minute" => Some(5),
        "ten_minute" => Some(10),
        "fifteen_minute" => Some(15),
        "thirty_minute" => Some(30),
        _ => None,
    };
    if let Some(m) = minutes
        && !zoned
        && !date
    {
        out.push(format!(
            "date_bin(INTERVAL '{m} minutes', {col}, TIMESTAMP '1970-01-01 00:00:00')"
        ));
    }
    if grain == "week" && !zoned {
        let ts = if date {
            format!("CAST({col} AS TIMESTAMP)")
        } else {
            col.to_string()
        };
        out.push(format!(
            "date_bin(INTERVAL '7 days', {ts}, TIMESTAMP '1970-01-04 00:00:00')"
        ));
    }
    out
}

fn returns_date(spelling: &str) -> bool {
    [
        "toDate",
        "toStartOfWeek",
        "toMonday",
        "toStartOfMonth",
        "toStartOfQuarter",
        "toStartOfYear",
    ]
    .iter()
    .any(|f| spelling.starts_with(f))
}

const GRAINS: [&str; 13] = [
    "second",
    "minute",
    "five_minute",
    "ten_minute",
    "fifteen_minute",
    "thirty_minute",
    "hour",
    "day",
    "week",
    "iso_week",
    "month",
    "quarter",
    "year",
];

/// Whether `bound` (of the filters above: midnight on a date, or a time within a second)
/// starts a bucket of `grain`.
fn starts(grain: &str, bound: &str) -> bool {
    match (grain, bound) {
        ("week", _) => false,
        (_, b) if b.len() > "2024-01-01".len() => false,
        ("year", d) => d == "2024-01-01",
        ("day", _) => true,
        (_, d) => d != "2024-01-02" || GRAINS[..7].contains(&grain),
    }
}

fn pick<'a, T>(rng: &mut Rng, items: &'a [T]) -> &'a T {
    &items[rng.below(items.len() as u64) as usize]
}

/// The grains a column has: DATE columns from the day up.
fn grains_for(col: &str) -> Vec<&'static str> {
    GRAINS
        .iter()
        .copied()
        .filter(|g| !spellings(g, col).is_empty())
        .filter(|g| col != "day" || GRAINS[7..].contains(g))
        .collect()
}

#[tokio::test]
async fn bucket_rollups_match_the_lattice_and_the_data() {
    let cases = common::env_or("TIME_CASES", 150usize);
    let seed = common::env_or("DIFF_SEED", 1u64);
    let mut rng = Rng::new(seed);
    let pair = common::sales_and_events();
    let (mut used, mut expected_uses) = (0, 0);
    for i in 0..cases {
        let col = *pick(&mut rng, &["ts", "ts", "ts_ny", "ts_np", "day"]);
        let grains = grains_for(col);
        let fine = *pick(&mut rng, &grains);
        let coarse = *pick(&mut rng, &grains);
        // A DATE (toStartOfMonth, toMonday) cannot hold a zoned bucket's instant, only its
        // local date: such MVs answer only their own expression, not left to chance here.
        let mv_spellings: Vec<String> = spellings(fine, col)
            .into_iter()
            .filter(|s| !col.starts_with("ts_") || !returns_date(s))
            .collect();
        let mv_spelling = pick(&mut rng, &mv_spellings).clone();
        // Sometimes the query buckets another column: never answered.
        let query_col = if rng.chance(0.1) {
            *pick(&mut rng, &["ts", "ts_ny", "ts_np"])
        } else {
            col
        };
        let query_spellings = spellings(coarse, query_col);
        if query_spellings.is_empty() {
            continue;
        }
        let query_spelling = pick(&mut rng, &query_spellings).clone();
        // Bounds at 2024-01-01 and 2024-07-01, Mondays at midnight: each starts a bucket of
        // every grain but the Sunday week (and the year, for the second). A range is answered
        // when each bound starts a bucket of the MV's grain or of the query's. One bound off
        // by half a second never is; on the DATE column, a bound on a Tuesday starts only a
        // day. A DATE range is read as the range of its cast to a timestamp, which the buckets
        // of a DATE bucket.
        let both_on = |c: &str| col == c && query_col == c;
        let (filter, bounds): (&str, &[&str]) = match rng.below(3) {
            0 if both_on("ts") => (
                " WHERE ts >= '2024-01-01' AND ts < '2024-07-01'",
                &["2024-01-01", "2024-07-01"],
            ),
            1 if both_on("ts") => (
                " WHERE ts >= '2024-01-01 10:17:23.5' AND ts < '2024-07-01'",
                &["2024-01-01 10:17:23.5", "2024-07-01"],
            ),
            0 if both_on("day") => (
                " WHERE day BETWEEN '2024-01-01' AND '2024-06-30'",
                &["2024-01-01", "2024-07-01"],
            ),
            1 if both_on("day") => (
                " WHERE day >= '2024-01-02' AND day < '2024-07-01'",
                &["2024-01-02", "2024-07-01"],
            ),
            _ => ("", &[]),
        };
        let aligned = bounds.iter().all(|b| starts(fine, b) || starts(coarse, b));
        let name = format!("mv_{i}");
        let mv = format!(
            "CREATE MATERIALIZED VIEW {name} AS SELECT {mv_spelling} AS t, sensor, sum(amount) AS s, \
             count(*) AS n, min(value) AS lo, max(value) AS hi, avg(value) AS mean FROM readings GROUP BY 1, 2"
        );
        // The average from the sum and count stored beside the MV's own (never averages).
        let query = format!(
            "SELECT {query_spelling} AS t, sum(amount), count(*), max(value), avg(value) FROM readings{filter} GROUP BY 1"
        );
        pair.session.sql(&mv).await.unwrap();
        let uses = common::assert_same(&pair, &query).await;
        let expect = query_col == col && aligned && (fine == coarse || nests(fine, coarse));
        let context = format!(
            "{mv}\n{query}\n{:?}",
            pair.session.last_report().map(|r| r.to_string())
        );
        // Answerable: read, or found able to answer and dearer than the table (an MV at the
        // grain of a second holds about as many rows as the table, and more columns).
        let dearer = pair
            .session
            .last_report()
            .and_then(|r| r.status_of(&name).cloned())
            == Some(CandidateStatus::MoreExpensive);
        assert_eq!(uses == vec![name.clone()] || dearer, expect, "{context}");
        used += usize::from(!uses.is_empty());
        expected_uses += usize::from(expect);
        pair.session
            .drop_materialized_view(&name, false)
            .await
            .unwrap();
    }
    println!(
        "time buckets: {cases} pairs, {used} answered from the MV, as the lattice says ({expected_uses})"
    );
    assert!(
        used > cases / 5,
        "too few rewrites to test anything: {used}"
    );
}

/// `date_part` of a timestamp is read from a bucket that keeps the field: the year and quarter
/// of a month bucket, the day of the week or year of a day bucket (of a DATE too). Not from a
/// bucket that straddles the field's periods (weeks across months), nor on a zoned timestamp.
#[tokio::test]
async fn date_parts_are_read_from_buckets_that_keep_them() {
    let pair = common::sales_and_events();
    for mv in [
        "CREATE MATERIALIZED VIEW monthly AS SELECT date_trunc('month', ts) AS m, sensor, sum(amount) AS s, count(*) AS n FROM readings GROUP BY 1, 2",
        "CREATE MATERIALIZED VIEW daily_dates AS SELECT date_trunc('day', day) AS d, sum(amount) AS s FROM readings GROUP BY 1",
        "CREATE MATERIALIZED VIEW monthly_ny AS SELECT date_trunc('month', ts_ny) AS m, sum(amount) AS s FROM readings GROUP BY 1",
    ] {
        pair.session.sql(mv).await.unwrap();
    }
    common::assert_answered_by(
        &pair,
        "monthly",
        &[
            "SELECT EXTRACT(YEAR FROM ts) AS y, EXTRACT(QUARTER FROM ts) AS q, sum(amount), count(*) FROM readings GROUP BY 1, 2",
            "SELECT sensor, date_part('month', ts) AS m, sum(amount) FROM readings GROUP BY 1, 2",
            "SELECT sensor, sum(amount) FROM readings WHERE date_part('month', ts) IN (2, 3) GROUP BY sensor",
        ],
    )
    .await;
    common::assert_answered_by(
        &pair,
        "daily_dates",
        &["SELECT EXTRACT(DOW FROM day) AS w, EXTRACT(DOY FROM day) AS d, sum(amount) FROM readings GROUP BY 1, 2"],
    )
    .await;
    common::assert_not_rewritten(
        &pair,
        &[
            // Weeks cross months: the week of a month bucket is not its rows'.
            "SELECT EXTRACT(WEEK FROM ts) AS w, sum(amount) FROM readings GROUP BY 1",
            "SELECT EXTRACT(DOW FROM ts) AS w, sum(amount) FROM readings GROUP BY 1",
            "SELECT EXTRACT(YEAR FROM ts_ny) AS y, sum(amount) FROM readings GROUP BY 1",
        ],
    )
    .await;
}

/// A range on a nullable DATE answered from month buckets of it keeps NULL dates exactly when
/// the original does (`OR day IS NULL`), and drops them otherwise.
#[tokio::test]
async fn date_ranges_on_buckets_keep_nulls_as_the_original() {
    let pair = common::sales_and_events();
    pair.session
        .sql("CREATE MATERIALIZED VIEW order_months AS SELECT date_trunc('month', day) AS m, status, sum(amount) AS s, count(*) AS n FROM orders GROUP BY 1, 2")
        .await
        .unwrap();
    common::assert_answered_by(
        &pair,
        "order_months",
        &[
            "SELECT status, sum(amount), count(*) FROM orders WHERE day >= '2017-01-01' OR day IS NULL GROUP BY status",
            "SELECT status, count(*) FROM orders WHERE day < '2017-01-01' GROUP BY status",
            "SELECT count(*) FROM orders WHERE day BETWEEN '2016-03-01' AND '2016-05-31' OR day >= '2019-01-01'",
        ],
    )
    .await;
}
