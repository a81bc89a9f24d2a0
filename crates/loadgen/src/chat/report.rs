//! Results as text: medians over repetitions, Markdown rows, the BENCHMARKS.md section.

use crate::chat::fanout::FanoutResult;
use crate::chat::idle::IdleResult;

/// The run with the median value of `key` (the lower middle for an even count).
pub fn median_by<T>(runs: &[T], key: impl Fn(&T) -> f64) -> Option<&T> {
    let mut order: Vec<&T> = runs.iter().collect();
    order.sort_by(|a, b| key(a).total_cmp(&key(b)));
    order.get(order.len().saturating_sub(1) / 2).copied()
}

/// Header of the fan-out table.
pub const FANOUT_HEADER: &str = "| scenario | servers | rooms × members (publishers) | msgs/s offered | deliveries/s offered | deliveries/s (median) | p50 ms | p99 ms | p999 ms | sender lag p99 ms | gaps / dups / missing | server CPU µs/delivery | server RSS MiB | all runs: deliveries/s, p99 ms | target | met |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|";

/// How a fan-out row was set up.
pub struct FanoutRow<'a> {
    pub scenario: &'a str,
    pub servers: &'a str,
    pub rooms: u32,
    pub members: u32,
    pub publishers: u32,
    pub rate: f64,
    pub target: &'a str,
    pub met: bool,
}

pub fn fanout_row(row: &FanoutRow<'_>, runs: &[FanoutResult]) -> String {
    let Some(median) = median_by(runs, FanoutResult::deliveries_per_sec) else {
        return format!("| {} | {} | no runs |", row.scenario, row.servers);
    };
    let all: Vec<String> = runs
        .iter()
        .map(|run| {
            format!(
                "{:.0}, {:.1}",
                run.deliveries_per_sec(),
                run.latency_ms(0.99)
            )
        })
        .collect();
    format!(
        "| {} | {} | {} × {} ({}) | {:.0} | {:.0} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} | {} / {} / {} | {} | {} | {} | {} | {} |",
        row.scenario,
        row.servers,
        row.rooms,
        row.members,
        row.publishers,
        row.rate,
        row.rate * f64::from(row.members),
        median.deliveries_per_sec(),
        median.latency_ms(0.5),
        median.latency_ms(0.99),
        median.latency_ms(0.999),
        median.send_lag_p99_ms(),
        median.counts.gaps,
        median.counts.duplicates,
        median.missing(),
        median
            .server_cpu_us_per_delivery()
            .map_or("n/a".to_owned(), |us| format!("{us:.2}")),
        median.server_rss.map_or("n/a".to_owned(), |rss| format!(
            "{:.0}",
            rss as f64 / 1048576.0
        )),
        all.join("; "),
        row.target,
        if row.met { "yes" } else { "**no**" },
    )
}

/// Header of the idle table.
pub const IDLE_HEADER: &str = "| scenario | servers | connections asked | opened (median run) | still open after hold | failed | server RSS before → after MiB | KiB per connection | all runs: opened, KiB/conn | target | met |\n|---|---|---|---|---|---|---|---|---|---|---|";

pub fn idle_row(
    scenario: &str,
    servers: &str,
    runs: &[IdleResult],
    target: &str,
    met: bool,
) -> String {
    let Some(median) = median_by(runs, IdleResult::bytes_per_connection) else {
        return format!("| {scenario} | {servers} | no runs |");
    };
    let all: Vec<String> = runs
        .iter()
        .map(|run| format!("{}, {:.2}", run.opened, run.bytes_per_connection() / 1024.0))
        .collect();
    format!(
        "| {scenario} | {servers} | {} | {} | {} | {} | {:.0} → {:.0} | {:.2} | {} | {target} | {} |",
        median.requested,
        median.opened,
        median.still_open,
        median.failed,
        median.rss_before as f64 / 1048576.0,
        median.rss_after as f64 / 1048576.0,
        median.bytes_per_connection() / 1024.0,
        all.join("; "),
        if met { "yes" } else { "**no**" },
    )
}

/// The one-minute load average from `/proc/loadavg`.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| {
            let fields: Vec<&str> = text.split_whitespace().take(3).collect();
            (fields.len() == 3).then(|| fields.join(" "))
        })
        .unwrap_or_else(|| "n/a".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_is_the_middle_run() {
        let runs = [3.0, 1.0, 2.0];
        assert_eq!(median_by(&runs, |x| *x), Some(&2.0));
        assert_eq!(median_by(&[1.0, 2.0], |x: &f64| *x), Some(&1.0));
        assert_eq!(median_by(&[] as &[f64], |x| *x), None);
    }
}
