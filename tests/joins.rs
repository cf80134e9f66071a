//! Random differential testing over a star schema: `visits` (the fact table; `referrer_id` is
//! NULL in some rows) with `users` (declared primary key, and `visits.user_id` a declared,
//! NOT NULL foreign key to it) and `sites` (no key: some ids twice, some missing). Seeded pairs
//! of an MV and a query, each over its own join shape (inner joins in any order, left joins,
//! self-joins of `users` as visitor and referrer and of `visits`, semi and anti joins, and
//! joins of aggregates),
//! GROUP BY, aggregates and filters, are registered and executed with and without rewriting;
//! results must agree. `JOIN_CASES` (default 300) and `DIFF_SEED` choose the run; it prints
//! `joins: N pairs, K rewritten`.

mod common;

use mvrewrite::testkit::datagen::Rng;

/// Join shapes: FROM clauses with the columns they offer as group keys.
const SHAPES: [(&str, &[&str]); 18] = [
    ("visits v", &["v.user_id", "v.site_id", "v.duration % 5"]),
    (
        "visits v JOIN users u ON v.user_id = u.user_id",
        &["u.country", "u.tier", "v.user_id", "v.site_id"],
    ),
    (
        "users u JOIN visits v ON u.user_id = v.user_id",
        &["u.country", "u.tier", "v.site_id"],
    ),
    (
        "visits v JOIN sites s ON v.site_id = s.site_id",
        &["s.region", "v.site_id", "v.user_id"],
    ),
    (
        "visits v JOIN users u ON v.user_id = u.user_id JOIN sites s ON s.site_id = v.site_id",
        &["u.country", "s.region", "u.tier", "v.user_id"],
    ),
    (
        "visits v LEFT JOIN users u ON v.referrer_id = u.user_id",
        &["u.country", "u.tier", "v.user_id", "v.site_id"],
    ),
    (
        "users u LEFT JOIN visits v ON u.user_id = v.user_id",
        &["u.country", "u.tier", "v.site_id"],
    ),
    // Self-joins: users as the visitor and as the referrer, in two spellings.
    (
        "visits v JOIN users u ON v.user_id = u.user_id JOIN users r ON v.referrer_id = r.user_id",
        &["u.country", "r.country", "r.tier", "v.site_id"],
    ),
    (
        "users r JOIN visits v ON r.user_id = v.referrer_id JOIN users u ON v.user_id = u.user_id",
        &["u.country", "r.country", "r.tier", "v.site_id"],
    ),
    (
        "visits v LEFT JOIN users u ON v.user_id = u.user_id LEFT JOIN users r ON v.referrer_id = r.user_id",
        &["u.country", "r.country", "u.tier", "v.user_id"],
    ),
    // A symmetric self-join of the fact table: visits of one user on one site.
    (
        "visits v JOIN visits w ON v.user_id = w.user_id AND v.site_id = w.site_id",
        &["v.site_id", "w.duration % 5", "v.duration % 5"],
    ),
    // Semi and anti joins: EXISTS, IN and NOT EXISTS.
    (
        "(SELECT * FROM visits WHERE EXISTS (SELECT 1 FROM users x WHERE x.user_id = visits.user_id AND x.tier > 1)) v",
        &["v.user_id", "v.site_id", "v.duration % 5"],
    ),
    (
        "(SELECT * FROM visits WHERE user_id IN (SELECT user_id FROM users WHERE country = 'china')) v",
        &["v.user_id", "v.site_id"],
    ),
    (
        "(SELECT * FROM visits WHERE NOT EXISTS (SELECT 1 FROM sites y WHERE y.site_id = visits.site_id AND y.region = 'eu')) v",
        &["v.site_id", "v.duration % 5", "v.user_id"],
    ),
    // INTERSECT and EXCEPT: joins on NULL-equal keys (`referrer_id` has NULLs).
    (
        "(SELECT * FROM visits WHERE duration > 50 INTERSECT SELECT * FROM visits WHERE site_id < 30) v",
        &["v.site_id", "v.user_id", "v.duration % 5"],
    ),
    (
        "(SELECT * FROM visits EXCEPT SELECT * FROM visits WHERE duration > 200) v",
        &["v.site_id", "v.duration % 5"],
    ),
    // A join of an aggregate, and the same join of one computing more (`WIDER`): the columns
    // are named as the table's, so the aggregates above read them alike.
    (
        "(SELECT user_id, site_id, sum(duration) AS duration, count(referrer_id) AS referrer_id FROM visits GROUP BY user_id, site_id) v JOIN users u ON v.user_id = u.user_id",
        &["u.country", "u.tier", "v.site_id", "v.user_id"],
    ),
    (
        "(SELECT user_id, site_id, sum(duration) AS duration, count(referrer_id) AS referrer_id, count(*) AS n, max(duration) AS top FROM visits GROUP BY user_id, site_id) v JOIN users u ON v.user_id = u.user_id",
        &["u.country", "u.tier", "v.site_id", "v.user_id"],
    ),
];
/// The shape computing more aggregates than `WIDER - 1`, over the same groups.
const WIDER: usize = 17;
const AGGS: [&str; 6] = [
    "count(*)",
    "sum(v.duration)",
    "min(v.duration)",
    "max(v.duration)",
    "count(v.referrer_id)",
    "count(v.duration)",
];
const USER_AGGS: [&str; 5] = [
    "sum(u.tier)",
    "max(u.tier)",
    "count(u.country)",
    "count(DISTINCT u.country)",
    "avg(u.tier)",
];
const SITE_AGGS: [&str; 2] = ["count(s.region)", "max(s.region)"];
const FILTERS: [&str; 5] = [
    "v.duration > 300",
    "v.duration > 100",
    "v.site_id < 20",
    "v.referrer_id IS NOT NULL",
    "v.user_id < 500",
];

fn pick<'a, T>(rng: &mut Rng, items: &'a [T]) -> &'a T {
    &items[rng.below(items.len() as u64) as usize]
}

fn some<'a>(rng: &mut Rng, items: &[&'a str], max: usize) -> Vec<&'a str> {
    let mut out: Vec<&str> = Vec::new();
    for _ in 0..=rng.below(max as u64) {
        let i = *pick(rng, items);
        if !out.contains(&i) {
            out.push(i);
        }
    }
    out
}

/// One side of a pair: a join shape, GROUP BY keys, aggregates and an optional filter.
#[derive(Clone)]
struct Select {
    shape: usize,
    keys: Vec<&'static str>,
    aggs: Vec<&'static str>,
    filter: Option<&'static str>,
}

impl Select {
    fn random(rng: &mut Rng) -> Self {
        let shape = rng.below(SHAPES.len() as u64) as usize;
        Select {
            shape,
            keys: some(rng, SHAPES[shape].1, 3),
            aggs: some(rng, &AGGS, 4),
            filter: rng.chance(0.3).then(|| *pick(rng, &FILTERS)),
        }
    }

    /// A query the MV may answer: often its shape, a subset of its keys and aggregates, its
    /// filter or a stronger one; sometimes something it cannot answer.
    fn derived(&self, rng: &mut Rng) -> Self {
        let shape = if self.shape == WIDER && rng.chance(0.5) {
            WIDER - 1
        } else if rng.chance(0.7) {
            self.shape
        } else {
            rng.below(SHAPES.len() as u64) as usize
        };
        let offered = SHAPES[shape].1;
        let mut keys: Vec<&str> = self
            .keys
            .iter()
            .copied()
            .filter(|k| offered.contains(k) && rng.chance(0.6))
            .collect();
        if rng.chance(0.15) {
            keys.push(*pick(rng, offered));
            keys.dedup();
        }
        let mut aggs: Vec<&str> = self
            .aggs
            .iter()
            .copied()
            .filter(|_| rng.chance(0.7))
            .collect();
        if aggs.is_empty() || rng.chance(0.1) {
            aggs.push(*pick(rng, &AGGS));
            aggs.dedup();
        }
        // Sometimes an average, rebuilt from the MV's sum and count(*) or count(duration).
        if rng.chance(0.2) {
            aggs.push("avg(v.duration)");
        }
        // Sometimes an aggregate of the joined users' columns (an MV over visits answers it
        // joined back, weighted by its count(*)).
        if SHAPES[shape].0.contains("users u") && rng.chance(0.3) {
            aggs.push(*pick(rng, &USER_AGGS));
        }
        // Or of the joined sites' (some ids twice: each copy joins).
        if SHAPES[shape].0.contains("sites s") && rng.chance(0.3) {
            aggs.push(*pick(rng, &SITE_AGGS));
        }
        let filter = match (self.filter, rng.below(4)) {
            (Some(f), 0..=1) => Some(f),
            (_, 2) => Some(*pick(rng, &FILTERS)),
            (f, _) => f,
        };
        Select {
            shape,
            keys,
            aggs,
            filter,
        }
    }

    fn sql(&self) -> String {
        let items: Vec<String> = self
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| format!("{k} AS k{i}"))
            .chain(
                self.aggs
                    .iter()
                    .enumerate()
                    .map(|(i, a)| format!("{a} AS a{i}")),
            )
            .collect();
        let filter = self
            .filter
            .map(|f| format!(" WHERE {f}"))
            .unwrap_or_default();
        let group_by = if self.keys.is_empty() {
            String::new()
        } else {
            let n: Vec<String> = (1..=self.keys.len()).map(|i| i.to_string()).collect();
            format!(" GROUP BY {}", n.join(", "))
        };
        format!(
            "SELECT {} FROM {}{filter}{group_by}",
            items.join(", "),
            SHAPES[self.shape].0
        )
    }
}

#[tokio::test]
async fn star_schema_pairs_agree() {
    let cases = common::env_or("JOIN_CASES", 300usize);
    let seed = common::env_or("DIFF_SEED", 1u64);
    let mut rng = Rng::new(seed);
    let pair = common::sales_and_events();
    for key in [
        "ALTER TABLE users ADD PRIMARY KEY (user_id)",
        "ALTER TABLE visits ADD FOREIGN KEY (user_id) REFERENCES users (user_id)",
    ] {
        pair.session.sql(key).await.unwrap();
    }
    let mut rewritten = 0;
    for i in 0..cases {
        let mv_side = Select::random(&mut rng);
        let query_side = if rng.chance(0.8) {
            mv_side.derived(&mut rng)
        } else {
            Select::random(&mut rng)
        };
        let (mv, query) = (mv_side.sql(), query_side.sql());
        let name = format!("j{i}");
        pair.session
            .sql(&format!("CREATE MATERIALIZED VIEW {name} AS {mv}"))
            .await
            .unwrap_or_else(|e| panic!("{mv}: {e}"));
        let used = common::assert_same(&pair, &query).await;
        rewritten += usize::from(used.contains(&name));
        pair.session
            .drop_materialized_view(&name, false)
            .await
            .unwrap();
    }
    println!("joins: {cases} pairs, {rewritten} rewritten (seed {seed})");
    assert!(
        rewritten > cases / 10,
        "too few rewrites to test anything: {rewritten}"
    );
}

/// An MV over the fact table answers aggregates of a joined-back dimension's columns: min, max
/// and DISTINCT ones read above the join, `sum` and `count` weighted by each partial group's
/// `count(*)` (every joined row stands for that many visits); never a BIGINT's sum, nor an
/// aggregate reading both sides, nor without the MV's `count(*)`.
#[tokio::test]
async fn aggregates_of_joined_back_columns_are_weighted_by_group_counts() {
    let pair = common::sales_and_events();
    for statement in [
        "CREATE MATERIALIZED VIEW per_user AS SELECT user_id, count(*) AS n, sum(duration) AS d FROM visits GROUP BY user_id",
        "CREATE MATERIALIZED VIEW per_user_site AS SELECT user_id, site_id, sum(duration) AS d FROM visits GROUP BY user_id, site_id",
        // A dimension of the users with a DECIMAL (tier 0 has no fee, tier 4 none at all).
        "CREATE TABLE fees (tier INT NOT NULL, fee DECIMAL(8, 2))",
        "INSERT INTO fees VALUES (0, NULL), (1, 2.50), (2, 10.01), (3, 99999.99)",
    ] {
        pair.session.sql(statement).await.unwrap();
    }
    common::assert_answered_by(
        &pair,
        "per_user",
        &[
            "SELECT u.country, sum(u.tier), count(*), sum(v.duration) FROM visits v JOIN users u ON v.user_id = u.user_id GROUP BY u.country",
            "SELECT u.country, min(u.tier), max(u.name), count(DISTINCT u.tier), count(u.country) FROM visits v JOIN users u ON v.user_id = u.user_id GROUP BY u.country",
            "SELECT sum(u.tier), count(u.country) FROM visits v JOIN users u ON v.user_id = u.user_id WHERE u.tier > 2",
            // No row: sum NULL, count 0.
            "SELECT sum(u.tier), count(u.country) FROM visits v JOIN users u ON v.user_id = u.user_id WHERE u.tier > 1000",
            "SELECT u.tier % 3, sum(CAST(u.tier AS DOUBLE) / 7), sum(v.duration) FROM visits v JOIN users u ON v.user_id = u.user_id GROUP BY u.tier % 3",
            // Averages: of the visits' INT from per_user's sum and count(*) (duration is NOT
            // NULL), of the users' columns weighted by each user's visits.
            "SELECT u.country, avg(v.duration), avg(u.tier), avg(CAST(u.tier AS DOUBLE) / 7) FROM visits v JOIN users u ON v.user_id = u.user_id GROUP BY u.country",
            "SELECT avg(v.duration), avg(u.tier) FROM visits v JOIN users u ON v.user_id = u.user_id WHERE u.tier > 1000",
            // A DECIMAL's average to the digit, as `avg` truncates it.
            "SELECT u.country, avg(f.fee), sum(v.duration) FROM visits v JOIN users u ON v.user_id = u.user_id JOIN fees f ON u.tier = f.tier GROUP BY u.country",
            "SELECT f.tier, avg(f.fee) FROM visits v JOIN users u ON v.user_id = u.user_id JOIN fees f ON u.tier = f.tier GROUP BY f.tier",
        ],
    )
    .await;
    common::assert_not_rewritten(
        &pair,
        &[
            // A BIGINT's sum may overflow where the visits' would not.
            "SELECT u.country, sum(u.user_id) FROM visits v JOIN users u ON v.user_id = u.user_id GROUP BY u.country",
            // Both sides in one aggregate.
            "SELECT u.country, sum(v.duration * u.tier) FROM visits v JOIN users u ON v.user_id = u.user_id GROUP BY u.country",
            // per_user_site keeps no count(*), and per_user no site.
            "SELECT v.site_id, sum(u.tier) FROM visits v JOIN users u ON v.user_id = u.user_id GROUP BY v.site_id",
        ],
    )
    .await;
}

/// Keys belong to the table they were declared on: a table dropped or replaced loses them, so
/// an MV that joins it no longer answers a query without the join once the new table's keys
/// no longer hold (duplicate `user_id`s here would multiply the MV's visits).
#[tokio::test]
async fn a_replaced_table_loses_its_declared_keys() {
    let pair = common::sales_and_events();
    for statement in [
        "ALTER TABLE users ADD PRIMARY KEY (user_id)",
        "ALTER TABLE visits ADD FOREIGN KEY (user_id) REFERENCES users (user_id)",
        "CREATE MATERIALIZED VIEW visits_users AS SELECT v.user_id, u.tier, sum(v.duration) AS d, count(*) AS n FROM visits v JOIN users u ON v.user_id = u.user_id GROUP BY v.user_id, u.tier",
    ] {
        pair.session.sql(statement).await.unwrap();
    }
    let query = "SELECT user_id, sum(duration) FROM visits GROUP BY user_id";
    common::assert_answered_by(&pair, "visits_users", &[query]).await;
    // Each user twice: the old primary key would now multiply every visit by two.
    for replace in [
        "CREATE OR REPLACE TABLE users AS SELECT * FROM users UNION ALL SELECT * FROM users",
        "REFRESH MATERIALIZED VIEW visits_users",
    ] {
        pair.session.sql(replace).await.unwrap();
    }
    common::assert_not_rewritten(&pair, &[query]).await;
    common::assert_same(&pair, query).await;
}
