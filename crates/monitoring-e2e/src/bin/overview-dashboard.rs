//! Prints the Grafana dashboard over every service (`deploy/grafana/dashboards/overview.json`):
//! `cargo run -q -p monitoring-e2e --bin overview-dashboard > deploy/grafana/dashboards/overview.json`.

fn main() {
    print!("{}", monitoring_e2e::overview_dashboard());
}
