//! Deterministic data generators: the ClickHouse/Moose-style `events` table, the CarbonData
//! `sales` table, and random rows for any schema (the conformance corpus). Seeded, so a
//! failing comparison can be reproduced.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, Date32Array, Decimal128Array, Float32Array, Float64Array,
    Int8Array, Int16Array, Int32Array, Int64Array, StringArray, TimestampMicrosecondArray,
    TimestampMillisecondArray, TimestampNanosecondArray, TimestampSecondArray, new_null_array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::record_batch::RecordBatch;

/// SplitMix64: tiny, fast, and good enough for test data.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    /// Skewed pick in `0..n`: low indexes are much more frequent.
    pub fn skewed(&mut self, n: u64) -> u64 {
        let a = self.below(n);
        let b = self.below(n);
        a.min(b)
    }
}

pub const EVENT_TYPES: [&str; 6] = ["view", "click", "scroll", "purchase", "signup", "logout"];
/// 2024-01-01T00:00:00Z in nanoseconds.
const EVENTS_START_NS: i64 = 1_704_067_200_000_000_000;
const EVENTS_SPAN_S: u64 = 90 * 24 * 3600;

/// The `events` table: `event_id BIGINT, ts TIMESTAMP, user_id BIGINT, event_type VARCHAR,
/// value DOUBLE` (value NULL in ~2% of rows), like the Moose example's.
pub fn events_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("event_id", DataType::Int64, false),
        Field::new("ts", DataType::Timestamp(TimeUnit::Nanosecond, None), false),
        Field::new("user_id", DataType::Int64, false),
        Field::new("event_type", DataType::Utf8, false),
        Field::new("value", DataType::Float64, true),
    ]))
}

/// `rows` events in batches of `batch_size`, spread over 90 days, skewed towards few users and
/// event types. `progress` is called with the rows generated so far after each batch.
pub fn events(
    rows: usize,
    batch_size: usize,
    seed: u64,
    mut progress: impl FnMut(usize),
) -> Result<Vec<RecordBatch>, ArrowError> {
    let mut rng = Rng::new(seed);
    let mut batches = Vec::new();
    let mut start = 0;
    while start < rows {
        let n = batch_size.min(rows - start);
        let ids = Int64Array::from_iter_values((start..start + n).map(|i| i as i64));
        let ts = TimestampNanosecondArray::from_iter_values(
            (0..n).map(|_| EVENTS_START_NS + (rng.below(EVENTS_SPAN_S) as i64) * 1_000_000_000),
        );
        let users = Int64Array::from_iter_values((0..n).map(|_| rng.skewed(10_000) as i64));
        let types = StringArray::from_iter_values(
            (0..n).map(|_| EVENT_TYPES[rng.skewed(EVENT_TYPES.len() as u64) as usize]),
        );
        let values = Float64Array::from_iter(
            (0..n).map(|_| (!rng.chance(0.02)).then(|| (rng.below(100_000) as f64) / 100.0)),
        );
        let columns: Vec<ArrayRef> = vec![
            Arc::new(ids),
            Arc::new(ts),
            Arc::new(users),
            Arc::new(types),
            Arc::new(values),
        ];
        batches.push(RecordBatch::try_new(events_schema(), columns)?);
        start += n;
        progress(start);
    }
    Ok(batches)
}

/// A `users` dimension for `events`: `user_id BIGINT` (unique, `0..rows`; events with a
/// larger user_id have no user), `name VARCHAR`, `country VARCHAR` (NULL in ~5%), `tier INT`.
pub fn users(rows: usize, seed: u64) -> Result<RecordBatch, ArrowError> {
    let mut rng = Rng::new(seed);
    let countries = ["fr", "us", "de", "in", "br"];
    let schema = Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::Int64, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("country", DataType::Utf8, true),
        Field::new("tier", DataType::Int32, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(0..rows as i64)),
        Arc::new(StringArray::from_iter_values(
            (0..rows).map(|i| format!("user{}", i % 500)),
        )),
        Arc::new(StringArray::from_iter((0..rows).map(|_| {
            (!rng.chance(0.05)).then(|| countries[rng.skewed(5) as usize])
        }))),
        Arc::new(Int32Array::from_iter_values(
            (0..rows).map(|_| rng.below(4) as i32),
        )),
    ];
    RecordBatch::try_new(schema, columns)
}

/// A `visits` fact table over [`users`] (`0..users` user ids) whose foreign keys hold:
/// `visit_id BIGINT, user_id BIGINT NOT NULL` (always a user), `referrer_id BIGINT` (a user, or
/// NULL in ~10%), `duration INT`, `site_id INT` (`0..40`: [`sites`] has some of them twice
/// and lacks others, so it is no key).
pub fn visits(rows: usize, users: usize, seed: u64) -> Result<RecordBatch, ArrowError> {
    let mut rng = Rng::new(seed);
    let schema = Arc::new(Schema::new(vec![
        Field::new("visit_id", DataType::Int64, false),
        Field::new("user_id", DataType::Int64, false),
        Field::new("referrer_id", DataType::Int64, true),
        Field::new("duration", DataType::Int32, false),
        Field::new("site_id", DataType::Int32, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(0..rows as i64)),
        Arc::new(Int64Array::from_iter_values(
            (0..rows).map(|_| rng.skewed(users as u64) as i64),
        )),
        Arc::new(Int64Array::from_iter((0..rows).map(|_| {
            (!rng.chance(0.1)).then(|| rng.below(users as u64) as i64)
        }))),
        Arc::new(Int32Array::from_iter_values(
            (0..rows).map(|_| rng.below(600) as i32),
        )),
        Arc::new(Int32Array::from_iter_values(
            (0..rows).map(|_| rng.below(40) as i32),
        )),
    ];
    RecordBatch::try_new(schema, columns)
}

/// A `sites` dimension that is not keyed: `site_id INT` (30 ids, a third of them on two rows,
/// none of `30..40`), `region VARCHAR`.
pub fn sites(seed: u64) -> Result<RecordBatch, ArrowError> {
    let mut rng = Rng::new(seed);
    let regions = ["eu", "us", "asia"];
    let ids: Vec<i32> = (0..30).chain((0..30).step_by(3)).collect();
    let schema = Arc::new(Schema::new(vec![
        Field::new("site_id", DataType::Int32, false),
        Field::new("region", DataType::Utf8, false),
    ]));
    let region = StringArray::from_iter_values(ids.iter().map(|_| regions[rng.below(3) as usize]));
    RecordBatch::try_new(
        schema,
        vec![Arc::new(Int32Array::from(ids)), Arc::new(region)],
    )
}

/// 2022-11-01T00:00:00Z and 2025-02-01T00:00:00Z in seconds: the `readings` span.
const READINGS_START_S: i64 = 1_667_260_800;
const READINGS_END_S: i64 = 1_738_368_000;
/// Instants time buckets get wrong first (UTC seconds): New York's daylight-saving changes,
/// Kathmandu's midnight (UTC+05:45), ends of months, quarters and years, a Sunday/Monday.
const READINGS_EDGES_S: [i64; 8] = [
    1_678_604_400, // 2023-03-12 07:00Z, New York springs forward
    1_699_164_000, // 2023-11-05 06:00Z, New York falls back
    1_710_054_000, // 2024-03-10 07:00Z, New York springs forward
    1_688_169_600, // 2023-07-01 00:00Z, a quarter starts
    1_704_067_200, // 2024-01-01 00:00Z, a year starts
    1_709_164_800, // 2024-02-29 00:00Z, a leap day
    1_704_049_200, // 2023-12-31 19:00Z, midnight in Kathmandu
    1_706_400_000, // 2024-01-28 00:00Z, a Sunday
];

/// The `readings` table, for time-bucket tests: `reading_id BIGINT, ts TIMESTAMP, ts_ny
/// TIMESTAMP (America/New_York), ts_np TIMESTAMP (Asia/Kathmandu), day DATE, sensor VARCHAR,
/// value DOUBLE (NULL in ~3%), amount BIGINT`. The three timestamps are the same instant; `day`
/// is its UTC date. Spread over 2022-11 to 2025-01, a third of the rows within two hours of
/// the instants in `READINGS_EDGES_S`.
pub fn readings_schema() -> SchemaRef {
    let ts = |zone: Option<&str>| DataType::Timestamp(TimeUnit::Nanosecond, zone.map(Arc::from));
    Arc::new(Schema::new(vec![
        Field::new("reading_id", DataType::Int64, false),
        Field::new("ts", ts(None), false),
        Field::new("ts_ny", ts(Some("America/New_York")), false),
        Field::new("ts_np", ts(Some("Asia/Kathmandu")), false),
        Field::new("day", DataType::Date32, false),
        Field::new("sensor", DataType::Utf8, false),
        Field::new("value", DataType::Float64, true),
        Field::new("amount", DataType::Int64, false),
    ]))
}

/// `rows` readings (see [`readings_schema`]).
pub fn readings(rows: usize, seed: u64) -> Result<RecordBatch, ArrowError> {
    let mut rng = Rng::new(seed);
    let seconds: Vec<i64> = (0..rows)
        .map(|_| {
            if rng.chance(0.33) {
                let edge = READINGS_EDGES_S[rng.below(READINGS_EDGES_S.len() as u64) as usize];
                edge - 7_200 + rng.below(14_400) as i64
            } else {
                READINGS_START_S + rng.below((READINGS_END_S - READINGS_START_S) as u64) as i64
            }
        })
        .collect();
    let nanos = |zone: Option<&str>| {
        Arc::new(
            TimestampNanosecondArray::from_iter_values(seconds.iter().map(|s| s * 1_000_000_000))
                .with_timezone_opt(zone.map(Arc::<str>::from)),
        ) as ArrayRef
    };
    let sensors = ["s1", "s2", "s3", "s4"];
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(0..rows as i64)),
        nanos(None),
        nanos(Some("America/New_York")),
        nanos(Some("Asia/Kathmandu")),
        Arc::new(Date32Array::from_iter_values(
            seconds.iter().map(|s| s.div_euclid(86_400) as i32),
        )),
        Arc::new(StringArray::from_iter_values(
            (0..rows).map(|_| sensors[rng.skewed(4) as usize]),
        )),
        Arc::new(Float64Array::from_iter((0..rows).map(|_| {
            (!rng.chance(0.03)).then(|| rng.below(10_000) as f64 / 10.0)
        }))),
        Arc::new(Int64Array::from_iter_values(
            (0..rows).map(|_| rng.below(1_000) as i64),
        )),
    ];
    RecordBatch::try_new(readings_schema(), columns)
}

/// The CarbonData documentation's `sales` table: `user_id BIGINT, country VARCHAR, sex
/// VARCHAR, quantity INT, price DOUBLE`, with NULLs in country, quantity and price.
pub fn sales(rows: usize, seed: u64) -> Result<RecordBatch, ArrowError> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::Int64, false),
        Field::new("country", DataType::Utf8, true),
        Field::new("sex", DataType::Utf8, false),
        Field::new("quantity", DataType::Int32, true),
        Field::new("price", DataType::Float64, true),
    ]));
    let countries = ["china", "usa", "france", "india", "brazil"];
    let mut rng = Rng::new(seed);
    let users = Int64Array::from_iter_values((0..rows).map(|_| rng.below(50) as i64));
    let country = StringArray::from_iter(
        (0..rows).map(|_| (!rng.chance(0.05)).then(|| countries[rng.skewed(5) as usize])),
    );
    let sex =
        StringArray::from_iter_values((0..rows).map(|_| if rng.chance(0.5) { "m" } else { "f" }));
    let quantity =
        Int32Array::from_iter((0..rows).map(|_| (!rng.chance(0.05)).then(|| rng.below(20) as i32)));
    let price = Float64Array::from_iter(
        (0..rows).map(|_| (!rng.chance(0.05)).then(|| rng.below(10_000) as f64 / 100.0)),
    );
    RecordBatch::try_new(
        schema,
        vec![
            Arc::new(users),
            Arc::new(country),
            Arc::new(sex),
            Arc::new(quantity),
            Arc::new(price),
        ],
    )
}

/// Words used for string columns: common values in the corpus' tests, so filters hit.
const WORDS: [&str; 12] = [
    "Bill",
    "Eric",
    "Sebastian",
    "Theodore",
    "Marketing",
    "Sales",
    "HR",
    "a",
    "b",
    "c",
    "x",
    "y",
];

/// `rows` random rows for any schema of the types SQL tables commonly use: small domains (so
/// groups have several rows and equality filters hit) and NULLs in nullable columns.
/// Columns named like keys (`..key`, `.._id`, `.._sk`) are near-unique.
pub fn random_batch(schema: SchemaRef, rows: usize, seed: u64) -> Result<RecordBatch, ArrowError> {
    random_batch_with_keys(schema, rows, seed, &BTreeSet::new())
}

/// [`random_batch`], with the columns named in `keys` near-unique too (the columns a workload
/// joins on, which real data has as keys): integers drawn from `0..10 × rows` (few repeats, and
/// range filters still cut), strings the decimal spelling of one.
pub fn random_batch_with_keys(
    schema: SchemaRef,
    rows: usize,
    seed: u64,
    keys: &BTreeSet<String>,
) -> Result<RecordBatch, ArrowError> {
    let mut rng = Rng::new(seed);
    let columns = schema
        .fields()
        .iter()
        .map(|f| {
            let name = f.name().to_lowercase();
            let key_like = keys.contains(&name)
                || name.ends_with("key")
                || name.ends_with("_id")
                || name.ends_with("_sk");
            random_column(f, rows, key_like, &mut rng)
        })
        .collect();
    RecordBatch::try_new(schema, columns)
}

fn random_column(field: &Field, rows: usize, key_like: bool, rng: &mut Rng) -> ArrayRef {
    let nullable = field.is_nullable();
    let valid = |rng: &mut Rng| !(nullable && rng.chance(0.1));
    macro_rules! column_of {
        ($array:ty, $value:expr) => {{
            let values: Vec<_> = (0..rows)
                .map(|_| {
                    if valid(rng) {
                        Some($value(&mut *rng))
                    } else {
                        None
                    }
                })
                .collect();
            Arc::new(<$array>::from(values)) as ArrayRef
        }};
    }
    // Integers cluster around the values tests filter on (10, 20, 100, 150, ...).
    let int = |rng: &mut Rng| -> i64 {
        match rng.below(4) {
            0 => rng.below(25) as i64,
            1 => 10 * rng.below(25) as i64,
            2 => 100 + 10 * rng.below(20) as i64,
            _ => rng.below(3000) as i64,
        }
    };
    // Key columns are near-unique, so that many-way joins stay the size real ones have.
    let key = |rng: &mut Rng| rng.below(10 * rows as u64) as i64;
    let int = |rng: &mut Rng| if key_like { key(rng) } else { int(rng) };
    let word = |rng: &mut Rng| -> String {
        if key_like {
            key(rng).to_string()
        } else {
            WORDS[rng.below(WORDS.len() as u64) as usize].to_string()
        }
    };
    match field.data_type() {
        DataType::Int8 => column_of!(Int8Array, |r: &mut Rng| r.below(100) as i8),
        DataType::Int16 => column_of!(Int16Array, |r: &mut Rng| int(r) as i16),
        DataType::Int32 => column_of!(Int32Array, |r: &mut Rng| int(r) as i32),
        DataType::Int64 => column_of!(Int64Array, |r: &mut Rng| int(r)),
        DataType::Float32 => column_of!(Float32Array, |r: &mut Rng| int(r) as f32 / 4.0),
        DataType::Float64 => column_of!(Float64Array, |r: &mut Rng| int(r) as f64 / 4.0),
        DataType::Boolean => column_of!(BooleanArray, |r: &mut Rng| r.chance(0.5)),
        DataType::Utf8 => column_of!(StringArray, |r: &mut Rng| word(r)),
        DataType::Binary => column_of!(BinaryArray, |r: &mut Rng| WORDS[r.below(4) as usize]
            .as_bytes()),
        // 2015-01-01 plus up to ~6 years.
        DataType::Date32 => column_of!(Date32Array, |r: &mut Rng| 16436 + r.below(2200) as i32),
        DataType::Decimal128(p, s) => decimal_column(field, *p, *s, rows, rng, valid, int),
        DataType::Timestamp(unit, zone) => timestamp_column(field, unit, zone, rows, rng, valid),
        other => datafusion::arrow::compute::cast(
            &(Arc::new(StringArray::from_iter_values((0..rows).map(|_| word(rng)))) as ArrayRef),
            other,
        )
        .unwrap_or_else(|_| new_null_array(other, rows)),
    }
}

/// A random DECIMAL(p, s) column: the integers `int` draws, scaled, a quarter, within `p` digits.
fn decimal_column(
    field: &Field,
    p: u8,
    s: i8,
    rows: usize,
    rng: &mut Rng,
    valid: impl Fn(&mut Rng) -> bool,
    int: impl Fn(&mut Rng) -> i64,
) -> ArrayRef {
    let max = 10i128.pow(u32::from(p.min(18))) / 10;
    let values: Vec<_> = (0..rows)
        .map(|_| {
            valid(rng).then(|| {
                (int(rng) as i128).saturating_mul(10i128.saturating_pow(s.max(0) as u32)) / 4
                    % max.max(1)
            })
        })
        .collect();
    match Decimal128Array::from(values).with_precision_and_scale(p, s) {
        Ok(a) => Arc::new(a),
        Err(_) => new_null_array(field.data_type(), rows),
    }
}

/// A random TIMESTAMP column in `unit` and `zone`: whole seconds drawn, then scaled to `unit`.
fn timestamp_column(
    field: &Field,
    unit: &TimeUnit,
    zone: &Option<Arc<str>>,
    rows: usize,
    rng: &mut Rng,
    valid: impl Fn(&mut Rng) -> bool,
) -> ArrayRef {
    let tz = |unit: &TimeUnit, tz: &Option<Arc<str>>| DataType::Timestamp(*unit, tz.clone());
    // 2015-01-01 plus up to ~6 years, on whole minutes half of the time.
    let seconds = |r: &mut Rng| {
        let s = 1_420_070_400 + r.below(190_000_000) as i64;
        if r.chance(0.5) { s - s % 60 } else { s }
    };
    let scale = match unit {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    };
    let values: Vec<Option<i64>> = (0..rows)
        .map(|_| valid(rng).then(|| seconds(rng) * scale))
        .collect();
    let array: ArrayRef = match unit {
        TimeUnit::Second => Arc::new(TimestampSecondArray::from(values)),
        TimeUnit::Millisecond => Arc::new(TimestampMillisecondArray::from(values)),
        TimeUnit::Microsecond => Arc::new(TimestampMicrosecondArray::from(values)),
        TimeUnit::Nanosecond => Arc::new(TimestampNanosecondArray::from(values)),
    };
    datafusion::arrow::compute::cast(&array, &tz(unit, zone))
        .unwrap_or_else(|_| new_null_array(field.data_type(), rows))
}

/// A pathological plan for hardening tests and benchmarks: `SELECT id, v + 1 * 1 + 1 ...` (the
/// operations nested `depth` deep) `FROM table WHERE id > 5`, over `source` with columns
/// `id BIGINT, v BIGINT`. Built directly: SQL parsers stop nesting at a few dozen levels.
pub fn deeply_nested_plan(
    table: &str,
    source: Arc<dyn datafusion::logical_expr::TableSource>,
    depth: usize,
) -> datafusion::common::Result<datafusion::logical_expr::LogicalPlan> {
    use datafusion::logical_expr::{LogicalPlanBuilder, col, lit};
    let mut deep = col("v");
    for i in 0..depth {
        deep = if i % 2 == 0 {
            deep + lit(1i64)
        } else {
            deep * lit(1i64)
        };
    }
    LogicalPlanBuilder::scan(table, source, None)?
        .filter(col("id").gt(lit(5i64)))?
        .project(vec![col("id"), deep.alias("deep")])?
        .build()
}
