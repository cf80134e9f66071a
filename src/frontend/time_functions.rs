//! CarbonData's and ClickHouse's bucket functions as DataFusion UDFs, so their users' SQL runs
//! unchanged: `timeseries(ts, 'fifteen_minute')`, `toStartOfHour(ts)`, `toDate(ts)`, ...
//!
//! Each one *is* its canonical bucket: `simplify` replaces the call by the `date_trunc` or
//! `date_bin` expression of its grain (plus a cast for the ClickHouse functions that return a
//! DATE), so DataFusion's optimizer hands the rewriter one spelling, and evaluation without the
//! optimizer evaluates that same expression. Grains come from the `timeseries` pack's names:
//! CarbonData's week starts on Sunday (`carbon.timeseries.first.day.of.week` defaults to
//! SUNDAY), as ClickHouse's `toStartOfWeek` (mode 0) does; `toMonday` and `date_trunc('week')`
//! start on Monday.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema, TimeUnit};
use datafusion::common::{DFSchema, Result, ScalarValue, exec_err, plan_err};
use datafusion::execution::context::ExecutionProps;
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    Volatility, cast, col,
};
use datafusion::physical_expr::create_physical_expr;
use datafusion::prelude::SessionContext;

use crate::timeseries::{Grain, Lattice};

/// The built-in lattice, for naming grains.
static LATTICE: LazyLock<Arc<Lattice>> = LazyLock::new(|| crate::rules::RuleSet::builtin().lattice);

/// `(name, grain, returns a DATE)`: ClickHouse's functions. Names are lower case as DataFusion
/// looks unquoted names up; the ClickHouse spelling is an alias.
const CLICKHOUSE: [(&str, &str, bool); 13] = [
    ("toStartOfSecond", "second", false),
    ("toStartOfMinute", "minute", false),
    ("toStartOfFiveMinutes", "five_minute", false),
    ("toStartOfTenMinutes", "ten_minute", false),
    ("toStartOfFifteenMinutes", "fifteen_minute", false),
    ("toStartOfHour", "hour", false),
    ("toStartOfDay", "day", false),
    ("toDate", "day", true),
    ("toStartOfWeek", "week", true),
    ("toMonday", "iso_week", true),
    ("toStartOfMonth", "month", true),
    ("toStartOfQuarter", "quarter", true),
    ("toStartOfYear", "year", true),
];

/// All of them: CarbonData's `timeseries` and ClickHouse's functions.
pub fn functions() -> Vec<ScalarUDF> {
    let mut out = vec![ScalarUDF::new_from_impl(BucketFunction::new(
        "timeseries",
        None,
        false,
    ))];
    out.extend(CLICKHOUSE.iter().map(|(name, grain, date)| {
        ScalarUDF::new_from_impl(BucketFunction::new(name, Some(grain), *date))
    }));
    out
}

/// Registers [`functions`] in `ctx`.
pub fn register(ctx: &SessionContext) {
    for f in functions() {
        ctx.register_udf(f);
    }
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct BucketFunction {
    name: String,
    aliases: Vec<String>,
    /// The lattice name of the grain; `None`: the second argument names it (`timeseries`).
    grain: Option<&'static str>,
    returns_date: bool,
    signature: Signature,
}

impl BucketFunction {
    fn new(name: &str, grain: Option<&'static str>, returns_date: bool) -> Self {
        let lower = name.to_ascii_lowercase();
        let aliases = if lower == name {
            vec![]
        } else {
            vec![name.to_string()]
        };
        BucketFunction {
            name: lower,
            aliases,
            grain,
            returns_date,
            signature: Signature::user_defined(Volatility::Immutable),
        }
    }

    fn arity(&self) -> usize {
        if self.grain.is_some() { 1 } else { 2 }
    }

    fn grain(&self, name_arg: Option<&ScalarValue>) -> Result<Grain> {
        let name = match (self.grain, name_arg) {
            (Some(g), _) => g.to_string(),
            (None, Some(ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s))))
            | (None, Some(ScalarValue::LargeUtf8(Some(s)))) => s.clone(),
            (None, _) => {
                return plan_err!("{}: the granularity must be a string literal", self.name);
            }
        };
        match LATTICE.grain(&name) {
            Some(g) => Ok(g),
            None => plan_err!(
                "{}: unknown granularity '{name}' (one of: {})",
                self.name,
                LATTICE.names().join(", ")
            ),
        }
    }

    /// The canonical expression for the call over `ts` (already of a timestamp type).
    fn canonical(&self, ts: Expr, ts_type: &DataType, grain: Grain) -> Result<Expr> {
        let Some(bucket) = grain.bucket(ts, ts_type) else {
            return plan_err!(
                "{}: this granularity needs a timestamp without time zone, not {ts_type}",
                self.name
            );
        };
        Ok(if self.returns_date {
            cast(bucket, DataType::Date32)
        } else {
            bucket
        })
    }
}

/// What a timestamp argument is coerced to: dates and strings become nanosecond timestamps,
/// as `date_trunc` does.
fn timestamp_type(t: &DataType) -> Result<DataType> {
    match t {
        DataType::Timestamp(..) => Ok(t.clone()),
        DataType::Date32
        | DataType::Date64
        | DataType::Utf8
        | DataType::Utf8View
        | DataType::LargeUtf8
        | DataType::Null => Ok(DataType::Timestamp(TimeUnit::Nanosecond, None)),
        other => plan_err!("expected a timestamp or date, got {other}"),
    }
}

impl ScalarUDFImpl for BucketFunction {
    fn name(&self) -> &str {
        &self.name
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        if arg_types.len() != self.arity() {
            return plan_err!("{} takes {} arguments", self.name, self.arity());
        }
        let mut types = vec![timestamp_type(&arg_types[0])?];
        if self.arity() == 2 {
            types.push(DataType::Utf8);
        }
        Ok(types)
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if self.returns_date {
            Ok(DataType::Date32)
        } else {
            timestamp_type(&arg_types[0])
        }
    }

    /// Nullable exactly when the timestamp is, as the canonical expression is.
    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        let ts = &args.arg_fields[0];
        let data_type = self.return_type(&[ts.data_type().clone()])?;
        Ok(Arc::new(Field::new(
            &self.name,
            data_type,
            ts.is_nullable(),
        )))
    }

    fn simplify(&self, mut args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        let name_arg = match args.get(1) {
            Some(Expr::Literal(v, _)) => Some(v),
            Some(_) => return Ok(ExprSimplifyResult::Original(args)),
            None => None,
        };
        let grain = self.grain(name_arg)?;
        let ts = args.swap_remove(0);
        let ts_type = info.get_data_type(&ts)?;
        Ok(ExprSimplifyResult::Simplified(
            self.canonical(ts, &ts_type, grain)?,
        ))
    }

    /// Without the optimizer: evaluates the canonical expression over the argument.
    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let name_arg = match args.args.get(1) {
            Some(ColumnarValue::Scalar(v)) => Some(v),
            Some(_) => return exec_err!("{}: the granularity must be a constant", self.name),
            None => None,
        };
        let grain = self.grain(name_arg)?;
        let ts_field = args.arg_fields[0].as_ref().clone().with_name("ts");
        let ts_type = ts_field.data_type().clone();
        let schema = Arc::new(Schema::new(vec![ts_field]));
        let expr = self.canonical(col("ts"), &ts_type, grain)?;
        let physical = create_physical_expr(
            &expr,
            &DFSchema::try_from(Arc::clone(&schema))?,
            &ExecutionProps::new(),
            &PhysicalPlanningContext::default(),
        )?;
        let array = args.args[0].to_array(args.number_rows)?;
        let batch = RecordBatch::try_new(schema, vec![array])?;
        physical.evaluate(&batch)
    }
}
