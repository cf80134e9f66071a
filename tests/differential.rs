//! Random differential testing: a seeded generator of MV and query pairs over the `sales`
//! table (NULLs and skew included). Each pair is registered, rewritten, and both plans executed;
//! results must agree. `DIFF_CASES` and `DIFF_SEED` choose how many pairs and which; the test
//! prints `differential: N pairs, K rewritten, M mismatches, P panics`.

mod common;

use std::io::Write;

use futures::FutureExt;
use mvrewrite::testkit::datagen::Rng;

const KEYS: [&str; 6] = [
    "country",
    "sex",
    "user_id",
    "upper(country)",
    "quantity % 3",
    "price > 50",
];
const MV_AGGS: [&str; 10] = [
    "count(*)",
    // Read as it is for the same groups, or for fewer when the filter pins the MV's other
    // keys (`country = 'china'`); DataFusion plans it as two aggregates when it is alone.
    "count(DISTINCT user_id)",
    "count(price)",
    "sum(quantity)",
    "sum(price)",
    "min(price)",
    "max(quantity)",
    "avg(price)",
    "count(quantity)",
    // A DECIMAL's sum and count, picked together: its average is rebuilt from them to the
    // digit (`+ 1`: DataFusion names a CAST by its argument, and `avg(price)` is taken).
    "sum(CAST(price + 1 AS DECIMAL(12, 2))), count(CAST(price + 1 AS DECIMAL(12, 2)))",
];
/// Aggregates only queries use, on top of `MV_AGGS`.
const QUERY_ONLY_AGGS: [&str; 5] = [
    "count(DISTINCT sex)",
    // An INT: averaged as a DOUBLE, rebuilt from `sum(quantity)` and `count(quantity)`.
    "avg(quantity)",
    "max(country)",
    "sum(quantity) + count(*)",
    "avg(CAST(price + 1 AS DECIMAL(12, 2)))",
];

fn query_aggs() -> Vec<&'static str> {
    MV_AGGS.iter().chain(&QUERY_ONLY_AGGS).copied().collect()
}
const FILTERS: [&str; 5] = [
    "",
    "country = 'china'",
    "quantity > 5",
    "price IS NOT NULL",
    "sex = 'f' OR country IS NULL",
];

fn pick<'a>(rng: &mut Rng, from: &[&'a str], at_least: usize) -> Vec<&'a str> {
    let mut out: Vec<&str> = from.iter().copied().filter(|_| rng.chance(0.4)).collect();
    while out.len() < at_least {
        let x = from[rng.below(from.len() as u64) as usize];
        if !out.contains(&x) {
            out.push(x);
        }
    }
    out
}

/// An aggregate MV's GROUP BY, and a column selected after its keys: mostly its keys, one in
/// six grouping sets of them (answering as the set of every key where its rows can be told
/// apart: keys NOT NULL in `sales`, or the `grouping()` of every key, kept half the time; never
/// when that set is there twice).
fn mv_grouping(rng: &mut Rng, keys: &[&str]) -> (String, Option<String>) {
    let keys = keys.join(", ");
    let sets = match rng.below(24) {
        0..=1 => format!("ROLLUP({keys})"),
        2..=3 => format!("CUBE({keys})"),
        4 => format!("GROUPING SETS (({keys}), ())"),
        5 => format!("GROUPING SETS (({keys}), ({keys}), ())"),
        _ => return (keys, None),
    };
    let gid = rng.chance(0.5).then(|| format!("grouping({keys}) AS gid"));
    (sets, gid)
}

/// An MV and a query that often, but not always, it can answer.
fn pair(rng: &mut Rng) -> (String, String) {
    let mv_filter = FILTERS[rng.skewed(FILTERS.len() as u64) as usize];
    let where_mv = if mv_filter.is_empty() {
        String::new()
    } else {
        format!(" WHERE {mv_filter}")
    };
    if rng.chance(0.2) {
        // A projection MV.
        let cols = pick(
            rng,
            &[
                "country",
                "sex",
                "user_id",
                "quantity",
                "price",
                "upper(country) AS uc",
                // Integer `+`/`-` a literal give their operand back (src/forms/invertible.rs);
                // a DOUBLE's does not.
                "user_id + 7 AS shifted_id",
                "quantity - 3 AS q3",
                "price + 1.5 AS p15",
            ],
            2,
        );
        let mv = format!("SELECT {} FROM sales{where_mv}", cols.join(", "));
        let keys = pick(rng, &["country", "sex", "user_id"], 1);
        let aggs = pick(rng, &query_aggs(), 1);
        let query = format!(
            "SELECT {k}, {a} FROM sales{where_mv} GROUP BY {k}",
            k = keys.join(", "),
            a = aggs.join(", ")
        );
        return (mv, query);
    }
    let mv_keys = pick(rng, &KEYS, 1);
    let mv_aggs = pick(rng, &MV_AGGS, 1);
    let (group_by, gid) = mv_grouping(rng, &mv_keys);
    let mut mv_select = mv_keys.clone();
    mv_select.extend(gid.as_deref());
    mv_select.extend(&mv_aggs);
    let mv = format!(
        "SELECT {} FROM sales{where_mv} GROUP BY {group_by}",
        mv_select.join(", ")
    );
    // Query keys mostly from the MV's keys.
    let mut keys: Vec<&str> = mv_keys
        .iter()
        .copied()
        .filter(|_| rng.chance(0.5))
        .collect();
    let extra = KEYS[rng.below(KEYS.len() as u64) as usize];
    if rng.chance(0.15) && !keys.contains(&extra) {
        keys.push(extra);
    }
    // Mostly aggregates the MV keeps, sometimes one it may not.
    let mut aggs = if rng.chance(0.8) {
        pick(rng, &mv_aggs, 1)
    } else {
        vec![]
    };
    let all = query_aggs();
    let extra = all[rng.below(all.len() as u64) as usize];
    if (aggs.is_empty() || rng.chance(0.3)) && !aggs.contains(&extra) {
        aggs.push(extra);
    }
    let query_filter = if rng.chance(0.8) {
        mv_filter.to_string()
    } else if rng.chance(0.5) && mv_filter.is_empty() {
        // Filters pinning a key; no row has 'atlantis' (without GROUP BY, still one row).
        ["country = 'china'", "sex = 'm'", "country = 'atlantis'"][rng.below(3) as usize]
            .to_string()
    } else {
        FILTERS[rng.below(FILTERS.len() as u64) as usize].to_string()
    };
    let mut select: Vec<String> = keys
        .iter()
        .chain(aggs.iter())
        .map(|s| s.to_string())
        .collect();
    // Sometimes grouping sets of the keys (read through a plain aggregate by all of them).
    let grouping = match rng.below(10) {
        _ if keys.is_empty() => None,
        0 => Some(format!("ROLLUP({})", keys.join(", "))),
        1 => Some(format!("CUBE({})", keys.join(", "))),
        2 => Some(format!(
            "GROUPING SETS (({}), ({}), ())",
            keys.join(", "),
            keys[keys.len() - 1]
        )),
        _ => None,
    };
    if grouping.is_some() && rng.chance(0.3) {
        select.push(format!("grouping({})", keys[0]));
    }
    // Sometimes an aggregate over the query's groups (a histogram of counts): its inner
    // aggregate alone is answered when the two compute one aggregate over different rows.
    let nest = grouping.is_none() && !keys.is_empty() && rng.chance(0.1);
    if nest {
        for (i, item) in select.iter_mut().enumerate() {
            *item = format!("{item} AS c{i}");
        }
    }
    let mut query = format!("SELECT {} FROM sales", select.join(", "));
    if !query_filter.is_empty() {
        query += &format!(" WHERE {query_filter}");
    }
    if !keys.is_empty() {
        let group_by = grouping.unwrap_or_else(|| keys.join(", "));
        query += &format!(" GROUP BY {group_by}");
        if rng.chance(0.2) {
            query += " HAVING count(*) > 3";
        }
    }
    if nest {
        // Not grouped by a DOUBLE: a sum of sums differs from the sum in its last bits, so
        // equal sums may part (DataFusion's own partitions reorder such sums too).
        let exact: Vec<usize> = (0..select.len())
            .filter(|&i| !select[i].contains("price") && !select[i].contains("avg("))
            .collect();
        let key = match exact.as_slice() {
            [] => 0, // a key: none is a DOUBLE
            exact => exact[rng.below(exact.len() as u64) as usize],
        };
        let other = rng.below(select.len() as u64);
        query = format!("SELECT c{key}, count(*), max(c{other}) FROM ({query}) q GROUP BY c{key}");
    }
    (mv, query)
}

#[tokio::test]
async fn differential() {
    let cases: usize = common::env_or("DIFF_CASES", 2000);
    let seed: u64 = common::env_or("DIFF_SEED", 2026);
    let mut rng = Rng::new(seed);
    let (mut rewritten, mut mismatches, mut panics) = (0, 0, 0);
    for i in 0..cases {
        let (mv, query) = pair(&mut rng);
        let run = async {
            let pair = common::sales_and_events();
            if pair
                .session
                .sql(&format!("CREATE MATERIALIZED VIEW m AS {mv}"))
                .await
                .is_err()
            {
                return Ok(false);
            }
            pair.session.clear_report();
            let expected = pair
                .plain
                .sql(&query)
                .await
                .unwrap()
                .collect()
                .await
                .unwrap();
            let rewritten = pair.session.sql(&query).await.unwrap();
            let plan = rewritten.clone().into_optimized_plan().unwrap();
            let actual = rewritten.collect().await.unwrap();
            let used = common::used_mvs(&pair.session).map_err(|e| {
                format!("case {i} (DIFF_SEED={seed}): {e}\n  MV:    {mv}\n  query: {query}")
            })?;
            let text = if used.is_empty() {
                Ok(())
            } else {
                common::same_from_text(&pair.session, &plan, &expected).await
            };
            match common::compare(&expected, &actual).and(text) {
                Ok(()) => Ok(!used.is_empty()),
                Err(diff) => Err(format!(
                    "case {i} (DIFF_SEED={seed}): results differ (the plan's or its SQL text's): {diff}\n  MV:    {mv}\n  query: {query}\n  used:  {used:?}"
                )),
            }
        };
        match std::panic::AssertUnwindSafe(run).catch_unwind().await {
            Ok(Ok(r)) => rewritten += usize::from(r),
            Ok(Err(report)) => {
                mismatches += 1;
                eprintln!("{report}");
            }
            Err(_) => {
                panics += 1;
                eprintln!("case {i} (DIFF_SEED={seed}) panicked\n  MV:    {mv}\n  query: {query}");
            }
        }
    }
    writeln!(
        std::io::stdout(),
        "differential: {cases} pairs, {rewritten} rewritten, {mismatches} mismatches, {panics} panics"
    )
    .unwrap();
    assert_eq!((mismatches, panics), (0, 0));
    assert!(
        rewritten * 3 >= cases,
        "only {rewritten} of {cases} pairs rewritten: the generator lost its aim"
    );
}
