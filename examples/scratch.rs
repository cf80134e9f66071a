use mvrewrite::Rewriter;
fn main() {
    let mut rw = Rewriter::new();
    rw.execute("CREATE TABLE sales (user_id BIGINT NOT NULL, country VARCHAR, sex VARCHAR NOT NULL, quantity INT, price DOUBLE)").unwrap();
    rw.set_table_rows("sales", 3000);
    let args: Vec<String> = std::env::args().skip(1).collect();
    for mv in &args[..args.len() - 1] {
        rw.execute(mv).unwrap();
    }
    let mv = rw.catalog().iter().next().unwrap().clone();
    println!("MV plan:\n{}", mv.plan.display_indent());
    let r = rw.rewrite_sql(args.last().unwrap()).unwrap();
    println!(
        "original:\n{}\nrewritten:\n{}\n{}",
        r.original.display_indent(),
        r.plan.display_indent(),
        r.report
    );
}
