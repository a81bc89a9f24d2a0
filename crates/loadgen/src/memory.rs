//! Memory of a process from `/proc/<pid>/status`: the resident set now (`VmRSS`) and its peak
//! (`VmHWM`), which `/proc/<pid>/clear_refs` can reset so the peak covers one run only.
//! Linux only; elsewhere readings are `None` and resets fail.

use std::io::Write as _;

/// `VmRSS` of `pid` in bytes.
pub fn rss_bytes(pid: u32) -> Option<u64> {
    status_bytes(&read_status(pid)?, "VmRSS")
}

/// `VmHWM` of `pid` in bytes: the highest `VmRSS` since the process started or since the last
/// [`reset_peak`].
pub fn peak_rss_bytes(pid: u32) -> Option<u64> {
    status_bytes(&read_status(pid)?, "VmHWM")
}

/// Resets `VmHWM` of `pid` to its current `VmRSS` (writing `5` to `/proc/<pid>/clear_refs`,
/// Linux ≥ 4.0, allowed for our own children). An error means the peak keeps counting from the
/// process's start.
pub fn reset_peak(pid: u32) -> std::io::Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/{pid}/clear_refs"))?
        .write_all(b"5")
}

fn read_status(pid: u32) -> Option<String> {
    std::fs::read_to_string(format!("/proc/{pid}/status")).ok()
}

/// The value of the line `key:   12345 kB` of `/proc/<pid>/status` text, in bytes.
pub fn status_bytes(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find_map(|line| {
        let (name, rest) = line.split_once(':')?;
        (name == key).then_some(rest)
    })?;
    let mut fields = line.split_whitespace();
    let kib: u64 = fields.next()?.parse().ok()?;
    (fields.next()? == "kB").then_some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\thello\nVmPeak:\t  999999 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   12345 kB\nRssAnon:\t 100 kB\nThreads:\t3\n";

    #[test]
    fn rss_and_peak_are_read_from_their_own_lines_in_bytes() {
        assert_eq!(status_bytes(STATUS, "VmRSS"), Some(12345 * 1024));
        assert_eq!(status_bytes(STATUS, "VmHWM"), Some(20480 * 1024));
        // `RssAnon` starts like `Rss` but is another key.
        assert_eq!(status_bytes(STATUS, "Rss"), None);
        assert_eq!(status_bytes("Name:\thello\n", "VmRSS"), None);
        assert_eq!(status_bytes("VmRSS:\t12 MB\n", "VmRSS"), None);
        assert_eq!(status_bytes("VmRSS:\tmany kB\n", "VmRSS"), None);
    }

    #[test]
    fn the_peak_of_this_process_can_be_reset() {
        if !std::path::Path::new("/proc/self/status").exists() {
            return;
        }
        let pid = std::process::id();
        let before = peak_rss_bytes(pid).expect("VmHWM");
        assert!(rss_bytes(pid).expect("VmRSS") > 0);
        // Touch 64 MiB, so the peak rises well above the current RSS once it is freed.
        let touched = vec![1u8; 64 << 20];
        assert!(touched.iter().step_by(4096).all(|&byte| byte == 1));
        drop(touched);
        let raised = peak_rss_bytes(pid).expect("VmHWM");
        assert!(raised >= before.max(64 << 20), "{raised} < 64 MiB");
        if reset_peak(pid).is_ok() {
            let reset = peak_rss_bytes(pid).expect("VmHWM");
            assert!(reset < raised, "reset {reset} is not below {raised}");
        }
    }
}
