//! Progress of an MV being computed (created, refreshed, compacted) and of a store being
//! restored, for whoever watches the session: the CLI prints it on stderr, as the demo's data
//! generation does.
//!
//! Rows read are DataFusion's own metrics: the `output_rows` of the plan's leaves (its scans),
//! which their streams count as they go, so a running computation can be sampled without
//! slowing it down.

use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use datafusion::physical_plan::ExecutionPlan;

/// How far one step of maintenance has come.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    /// What is being done: `computing by_kind`, `merging new rows into by_kind`, `restoring
    /// by_kind (2 of 5)`.
    pub task: String,
    /// Rows its scans have read so far, where they count them (none for a restore).
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

/// Reports a running plan's progress to a sink from a thread of its own, so that the reports
/// keep their pace whatever the runtime is busy with: every `sink.every` while it runs, and
/// once more at [`Watch::finish`] if it ran that long. Dropped without `finish` (the
/// computation failed), it stops quietly.
pub struct Watch {
    plan: Arc<dyn ExecutionPlan>,
    task: String,
    sink: Option<ProgressSink>,
    start: Instant,
    /// Dropped to stop the reporting thread.
    running: Option<mpsc::Sender<()>>,
    reporter: Option<std::thread::JoinHandle<()>>,
}

impl Watch {
    /// Starts watching `plan`, about to run as `task`; with no sink, nothing is reported.
    pub fn start(plan: &Arc<dyn ExecutionPlan>, task: &str, sink: Option<ProgressSink>) -> Watch {
        let start = Instant::now();
        let (running, stopped) = mpsc::channel::<()>();
        let reporter = sink.clone().map(|sink| {
            let (plan, task) = (Arc::clone(plan), task.to_string());
            std::thread::spawn(move || {
                let every = sink.every.max(Duration::from_millis(1));
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    (sink.report)(&progress(&task, plan.as_ref(), start, false));
                }
            })
        });
        Watch {
            plan: Arc::clone(plan),
            task: task.to_string(),
            sink,
            start,
            running: Some(running),
            reporter,
        }
    }

    /// The plan ran to its end: the last report. Returns the rows its scans read.
    pub fn finish(mut self) -> Option<u64> {
        self.stop();
        if let Some(sink) = &self.sink
            && self.start.elapsed() >= sink.every
        {
            (sink.report)(&progress(&self.task, self.plan.as_ref(), self.start, true));
        }
        rows_read(self.plan.as_ref())
    }

    fn stop(&mut self) {
        drop(self.running.take());
        if let Some(reporter) = self.reporter.take() {
            let _ = reporter.join();
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop();
    }
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

/// Progress through a known number of steps (the MVs of a restore), reported at most every
/// `sink.every`, and once more at the end if it ran that long.
pub struct Steps {
    sink: Option<ProgressSink>,
    total: usize,
    done: usize,
    start: Instant,
    last: Instant,
    task: String,
}

impl Steps {
    /// `total` steps about to start.
    pub fn new(sink: Option<ProgressSink>, total: usize) -> Steps {
        let now = Instant::now();
        Steps {
            sink,
            total,
            done: 0,
            start: now,
            last: now,
            task: String::new(),
        }
    }

    /// The next step, `task`, starts.
    pub fn next(&mut self, task: &str) {
        self.done += 1;
        self.task = format!("{task} ({} of {})", self.done, self.total);
        if let Some(sink) = &self.sink
            && self.last.elapsed() >= sink.every
        {
            self.last = Instant::now();
            (sink.report)(&self.progress(false));
        }
    }

    /// Every step ended.
    pub fn finish(self) {
        if let Some(sink) = &self.sink
            && self.start.elapsed() >= sink.every
        {
            (sink.report)(&self.progress(true));
        }
    }

    fn progress(&self, done: bool) -> Progress {
        Progress {
            task: self.task.clone(),
            rows_read: None,
            elapsed: self.start.elapsed(),
            done,
        }
    }
}
