//! The `mvrewrite` command-line tool.

use std::process::ExitCode;

const USAGE: &str = "\
mvrewrite: answer SQL queries from materialized views

USAGE:
  mvrewrite demo [--rows N]    generate an events table (default 5,000,000 rows), register MVs,
                               run queries with and without rewriting, show the MV used and timings
  mvrewrite --help

Example:
  cargo run --release -- demo --rows 1000000
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("demo") => {
            let rows = match args.iter().position(|a| a == "--rows") {
                Some(i) => match args
                    .get(i + 1)
                    .and_then(|n| n.replace('_', "").parse().ok())
                {
                    Some(n) => n,
                    None => {
                        eprintln!("error: --rows needs a number");
                        return ExitCode::from(2);
                    }
                },
                None => 5_000_000,
            };
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            };
            let mut stdout = std::io::stdout();
            match runtime.block_on(mvrewrite::demo::run(rows, &mut stdout)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Some("--help" | "-h" | "help") | None => {
            print!("{USAGE}");
            ExitCode::SUCCESS
        }
        Some(other) => {
            eprintln!("error: unknown command '{other}'\n\n{USAGE}");
            ExitCode::from(2)
        }
    }
}
