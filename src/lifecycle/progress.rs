//! Progress of long maintenance work (computing an MV, restoring a store), for whoever watches
//! the session: the CLI prints it on stderr, as the demo's data generation does.
//!
//! Rows read are DataFusion's own metrics: the `output_rows` of the plan's leaves (its scans),
//! which their streams count as they go, so a running computation can be sampled without
//! slowing it down.

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::physical_plan::{ExecutionPlan, collect};
use datafusion::prelude::DataFrame;

use crate::error::Result;

/// How far one step of maintenance has come.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// What is being done: `computing by_kind`, `restoring by_kind (2 of 5)`.
    pub task: String,
    /// Rows its scans have read so far, where they count them.
    pub rows_read: Option<u64>,
    /// Time since it started.
    pub elapsed: Duration,
    /// Whether this is its last report: it is made for every step that took `every` or longer.
    pub done: bool,
}

/// Where progress goes, and how often: nothing is reported for a step shorter than `every`
/// (at least a millisecond).
#[derive(Clone)]
pub struct ProgressSink {
    /// Time between reports.
    pub every: Duration,
    /// Called with each report.
    pub report: Arc<dyn Fn(&Progress) + Send + Sync>,
}

impl std::fmt::Debug for ProgressSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProgressSink(every {:?})", self.every)
    }
}

/// Runs `df` to completion, reporting to `sink` every `sink.every` while it runs, then once
/// when done if it ran that long. The reports come from a thread of their own, so that they
/// keep their pace whatever the runtime is busy with.
pub async fn collect_reporting(
    df: DataFrame,
    task: &str,
    sink: Option<&ProgressSink>,
) -> Result<Vec<RecordBatch>> {
    let Some(sink) = sink else {
        return Ok(df.collect().await?);
    };
    let task_ctx = Arc::new(df.task_ctx());
    let plan = df.create_physical_plan().await?;
    let start = Instant::now();
    let (finished, wait) = mpsc::channel::<()>();
    let reporter = {
        let (plan, sink, task) = (Arc::clone(&plan), sink.clone(), task.to_string());
        std::thread::spawn(move || {
            let every = sink.every.max(Duration::from_millis(1));
            while let Err(RecvTimeoutError::Timeout) = wait.recv_timeout(every) {
                (sink.report)(&progress(&task, plan.as_ref(), start, false));
            }
        })
    };
    let batches = collect(Arc::clone(&plan), task_ctx).await;
    drop(finished);
    let _ = reporter.join();
    if start.elapsed() >= sink.every {
        (sink.report)(&progress(task, plan.as_ref(), start, true));
    }
    Ok(batches?)
}

fn progress(task: &str, plan: &dyn ExecutionPlan, start: Instant, done: bool) -> Progress {
    Progress {
        task: task.to_string(),
        rows_read: rows_read(plan),
        elapsed: start.elapsed(),
        done,
    }
}

/// The rows `plan`'s leaves have produced so far; `None` if none of them counts.
fn rows_read(plan: &dyn ExecutionPlan) -> Option<u64> {
    let children = plan.children();
    if children.is_empty() {
        return plan
            .metrics()
            .and_then(|m| m.output_rows())
            .map(|n| n as u64);
    }
    children
        .into_iter()
        .filter_map(|c| rows_read(c.as_ref()))
        .reduce(|a, b| a + b)
}

/// One line for a terminal: `computing by_kind: 1.2M rows read, 3.4 s`.
impl std::fmt::Display for Progress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: ", self.task)?;
        if let Some(rows) = self.rows_read {
            if rows >= 1_000_000 {
                write!(f, "{:.1}M rows read, ", rows as f64 / 1e6)?;
            } else {
                write!(f, "{rows} rows read, ")?;
            }
        }
        write!(f, "{:.1} s", self.elapsed.as_secs_f64())?;
        if self.done {
            write!(f, ", done")?;
        }
        Ok(())
    }
}
