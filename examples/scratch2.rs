use mvrewrite::Rewriter;
fn main() {
    let mut rw = Rewriter::new();
    rw.execute("CREATE TABLE emps (empid INT NOT NULL, deptno INT NOT NULL, name VARCHAR, salary DOUBLE NOT NULL, commission INT)").unwrap();
    let args: Vec<String> = std::env::args().skip(1).collect();
    for mv in &args[..args.len() - 1] {
        rw.execute(mv).unwrap();
    }
    let r = rw.rewrite_sql(args.last().unwrap()).unwrap();
    println!(
        "original:\n{}\nrewritten:\n{}\n{}",
        r.original.display_indent(),
        r.plan.display_indent(),
        r.report
    );
}
