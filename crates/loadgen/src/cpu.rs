//! CPU time of a process (user + system, all threads) from `/proc/<pid>/stat`, to tell whether the
//! server or the load generator ran out of CPU. Linux only; elsewhere readings are `None`.

use std::time::Duration;

/// Linux reports `utime`/`stime` in USER_HZ ticks, 100 per second on every mainstream target.
const TICKS_PER_SECOND: u64 = 100;

/// Reads one process's CPU time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuMeter {
    /// Name in summaries: `loadgen`, `server`.
    pub name: String,
    pid: u32,
}

impl CpuMeter {
    /// The process `pid`, reported as `name`.
    pub fn new(name: &str, pid: u32) -> CpuMeter {
        CpuMeter {
            name: name.to_owned(),
            pid,
        }
    }

    /// This process, reported as `loadgen`.
    pub fn this_process() -> CpuMeter {
        CpuMeter::new("loadgen", std::process::id())
    }

    /// CPU time used so far; `None` when `/proc` cannot tell.
    pub fn read(&self) -> Option<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid)).ok()?;
        let ticks = cpu_ticks(&stat)?;
        Some(Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND))
    }
}

/// `utime + stime` from the text of `/proc/<pid>/stat`. The command name (field 2) is in
/// parentheses and may hold spaces, so fields are counted from the last `)`.
pub fn cpu_ticks(stat: &str) -> Option<u64> {
    let (_, after_name) = stat.rsplit_once(')')?;
    let mut fields = after_name.split_whitespace().skip(11); // state is field 3, utime field 14
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_add_user_and_system_time_after_the_command_name() {
        let stat = "4242 (tokio rt) w)) S 1 4242 4242 0 -1 4194560 1234 0 0 0 731 269 0 0 20 0 3 0 100 0 0";
        assert_eq!(cpu_ticks(stat), Some(1000));
        assert_eq!(cpu_ticks("4242 (short) S 1 2"), None);
        assert_eq!(cpu_ticks("no parentheses"), None);
    }

    #[test]
    fn this_process_has_used_some_cpu() {
        let meter = CpuMeter::this_process();
        let spin: u64 = (0..5_000_000u64).fold(0, |acc, x| acc.wrapping_add(x * x));
        assert!(spin > 0);
        if std::path::Path::new("/proc/self/stat").exists() {
            assert!(meter.read().is_some());
        }
    }
}
