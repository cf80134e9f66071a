//! TPC-H rollups the benches answer from MVs (`tpch_speedup` in one process, `ballista_tpch`
//! on a cluster): MVs a user would define over lineitem and orders, and queries each answered by
//! one of them, with the same answer written by hand against the MV.

/// Daily revenue by ship mode and return flag, TPC-H Q1's pricing summary by day,
/// per-customer order totals, monthly shipments by ship mode.
pub const MVS: [&str; 4] = [
    "CREATE MATERIALIZED VIEW daily_revenue AS SELECT l_shipdate, l_shipmode, l_returnflag, sum(l_extendedprice * (1 - l_discount)) AS revenue, sum(l_quantity) AS quantity, count(*) AS line_count FROM lineitem GROUP BY l_shipdate, l_shipmode, l_returnflag",
    "CREATE MATERIALIZED VIEW pricing_summary AS SELECT l_returnflag, l_linestatus, l_shipdate, sum(l_quantity) AS sum_qty, sum(l_extendedprice) AS sum_base_price, sum(l_extendedprice * (1 - l_discount)) AS sum_disc_price, sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) AS sum_charge, sum(l_discount) AS sum_disc, count(*) AS count_order FROM lineitem GROUP BY l_returnflag, l_linestatus, l_shipdate",
    "CREATE MATERIALIZED VIEW customer_totals AS SELECT o_custkey, sum(o_totalprice) AS total, count(*) AS order_count FROM orders GROUP BY o_custkey",
    "CREATE MATERIALIZED VIEW monthly_shipments AS SELECT date_trunc('month', l_shipdate) AS month, l_shipmode, sum(l_quantity) AS quantity, count(*) AS line_count FROM lineitem GROUP BY 1, 2",
];

/// (name, MV, original SQL, the same answer written against the MV).
pub const QUERIES: [(&str, &str, &str, &str); 5] = [
    (
        "monthly_revenue_by_ship_mode_1995",
        "daily_revenue",
        "SELECT l_shipmode, date_trunc('month', l_shipdate) AS month, sum(l_extendedprice * (1 - l_discount)) AS revenue FROM lineitem WHERE l_shipdate >= DATE '1995-01-01' AND l_shipdate < DATE '1996-01-01' GROUP BY l_shipmode, date_trunc('month', l_shipdate)",
        "SELECT l_shipmode, date_trunc('month', l_shipdate) AS month, sum(revenue) AS revenue FROM daily_revenue WHERE l_shipdate >= DATE '1995-01-01' AND l_shipdate < DATE '1996-01-01' GROUP BY l_shipmode, date_trunc('month', l_shipdate)",
    ),
    (
        "revenue_by_return_flag",
        // Both lineitem MVs can answer; pricing_summary has fewer rows.
        "pricing_summary",
        "SELECT l_returnflag, sum(l_extendedprice * (1 - l_discount)) AS revenue, count(*) AS lines FROM lineitem GROUP BY l_returnflag",
        "SELECT l_returnflag, sum(sum_disc_price) AS revenue, sum(count_order) AS lines FROM pricing_summary GROUP BY l_returnflag",
    ),
    (
        // TPC-H Q1: its DECIMAL averages rebuilt from the MV's sums and count(*) (the columns
        // are NOT NULL).
        "tpch_q1",
        "pricing_summary",
        "SELECT l_returnflag, l_linestatus, sum(l_quantity) AS sum_qty, sum(l_extendedprice) AS sum_base_price, sum(l_extendedprice * (1 - l_discount)) AS sum_disc_price, sum(l_extendedprice * (1 - l_discount) * (1 + l_tax)) AS sum_charge, avg(l_quantity) AS avg_qty, avg(l_extendedprice) AS avg_price, avg(l_discount) AS avg_disc, count(*) AS count_order FROM lineitem WHERE l_shipdate <= DATE '1998-09-02' GROUP BY l_returnflag, l_linestatus ORDER BY l_returnflag, l_linestatus",
        "SELECT l_returnflag, l_linestatus, sum(sum_qty) AS sum_qty, sum(sum_base_price) AS sum_base_price, sum(sum_disc_price) AS sum_disc_price, sum(sum_charge) AS sum_charge, sum(sum_qty) / sum(count_order) AS avg_qty, sum(sum_base_price) / sum(count_order) AS avg_price, sum(sum_disc) / sum(count_order) AS avg_disc, sum(count_order) AS count_order FROM pricing_summary WHERE l_shipdate <= DATE '1998-09-02' GROUP BY l_returnflag, l_linestatus ORDER BY l_returnflag, l_linestatus",
    ),
    (
        "top_customers_by_order_total",
        "customer_totals",
        "SELECT o_custkey, sum(o_totalprice) AS total FROM orders GROUP BY o_custkey ORDER BY total DESC, o_custkey LIMIT 10",
        "SELECT o_custkey, total FROM customer_totals ORDER BY total DESC, o_custkey LIMIT 10",
    ),
    (
        // A range on the DATE column, read on the MV's month buckets of it (daily_revenue
        // could answer too, from more rows).
        "quantity_by_ship_mode_1995_1996",
        "monthly_shipments",
        "SELECT l_shipmode, sum(l_quantity) AS quantity, count(*) AS lines FROM lineitem WHERE l_shipdate BETWEEN DATE '1995-01-01' AND DATE '1996-12-31' GROUP BY l_shipmode",
        "SELECT l_shipmode, sum(quantity) AS quantity, sum(line_count) AS lines FROM monthly_shipments WHERE month >= TIMESTAMP '1995-01-01' AND month < TIMESTAMP '1997-01-01' GROUP BY l_shipmode",
    ),
];
