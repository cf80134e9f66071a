//! The source tree is the pipeline: each top-level module of `src/` is a stage, and a stage
//! uses only the stages below it (ARCHITECTURE.md draws the order). This test reads every
//! source file and fails on an import that goes up, so an import cycle between folders cannot
//! come back unnoticed.

use std::fs;
use std::path::Path;

/// The stages, lowest first.
const STAGES: &[&str] = &[
    "error",
    "report",
    "timeseries",
    "plan",
    "egraph",
    "rules",
    "catalog",
    "forms",
    "engine",
    "frontend",
    "lifecycle",
    "testkit",
    "serve",
    "cluster",
    "cli",
];

fn rank(module: &str) -> Option<usize> {
    STAGES.iter().position(|s| *s == module)
}

/// The top-level modules `code` names as `crate::module`.
fn crate_paths(code: &str) -> Vec<String> {
    code.match_indices("crate::")
        .map(|(i, m)| {
            code[i + m.len()..]
                .chars()
                .take_while(|c| c.is_ascii_lowercase() || *c == '_')
                .collect()
        })
        .collect()
}

fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_stage_imports_a_higher_one() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut upward = Vec::new();
    let mut unknown = Vec::new();
    for path in &all {
        let relative = path.strip_prefix(&src).unwrap();
        let stage = relative
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if stage == "lib" || stage == "bin" {
            continue;
        }
        let Some(own) = rank(&stage) else {
            unknown.push(stage);
            continue;
        };
        let text = fs::read_to_string(path).unwrap();
        // Comments may name any module (doc links to a higher stage are fine).
        let code: String = text
            .lines()
            .map(|l| l.split("//").next().unwrap_or(""))
            .collect::<Vec<_>>()
            .join("\n");
        for used in crate_paths(&code) {
            if rank(&used).is_some_and(|r| r > own) {
                upward.push(format!("{} uses crate::{used}", relative.display()));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "top-level modules missing from STAGES (add them in pipeline order): {unknown:?}"
    );
    assert!(all.len() > 40, "read only {} files", all.len());
    upward.sort();
    upward.dedup();
    assert!(
        upward.is_empty(),
        "imports from a higher stage:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_reader_finds_crate_paths() {
    assert_eq!(
        crate_paths("use crate::plan::region;\nlet x = crate::engine::Engine::default();"),
        vec!["plan", "engine"]
    );
}
