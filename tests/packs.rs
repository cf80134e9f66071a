//! Every rule pack's cases (`rules/<pack>.cases`): rewritten through a real session on
//! generated data, results compared with the original query, outcome checked against the
//! case's `expect:`, and the final plan and report snapshotted into `snapshots/`.

mod common;

use common::cases;

async fn run_pack(pack: &str) {
    let text = std::fs::read_to_string(format!("rules/{pack}.cases")).unwrap();
    let cases = cases(&text);
    assert!(!cases.is_empty(), "{pack}.cases has no cases");
    for case in cases {
        let pair = common::sales_and_events();
        for mv in &case.mvs {
            pair.session.sql(mv).await.unwrap();
        }
        pair.session.clear_report();
        let used = common::assert_same(&pair, &case.query).await;
        let expected: Vec<String> = case.expect.iter().cloned().collect();
        assert_eq!(used, expected, "case {}: MVs used", case.name);
        let plan = pair
            .session
            .context()
            .sql(&mvrewrite::testkit::standard_sql(&case.query))
            .await
            .unwrap()
            .into_optimized_plan()
            .unwrap();
        let report = pair
            .session
            .last_report()
            .map(|r| r.to_string())
            .unwrap_or_default();
        let snapshot = format!(
            "{}\n\n{}\n\nreport:\n{}\nplan:\n{}",
            case.mvs.join("\n"),
            case.query,
            report,
            plan.display_indent()
        );
        insta::with_settings!({
            snapshot_path => "../snapshots",
            prepend_module_to_snapshot => false,
            omit_expression => true,
        }, {
            insta::assert_snapshot!(format!("{pack}__{}", case.name), snapshot);
        });
    }
}

#[tokio::test]
async fn core_pack() {
    run_pack("core").await;
}

#[tokio::test]
async fn aggregate_pack() {
    run_pack("aggregate").await;
}

#[tokio::test]
async fn filter_pack() {
    run_pack("filter").await;
}

#[tokio::test]
async fn timeseries_pack() {
    run_pack("timeseries").await;
}

#[tokio::test]
async fn join_pack() {
    run_pack("join").await;
}
