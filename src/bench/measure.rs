//! What `asyncsim bench` reads of its own process, and the one thing it
//! asks of the allocator ([`trim`]): peak resident memory
//! (resettable, so each workload gets its own peak) and CPU time. Linux
//! only, from `/proc/self`; elsewhere every reading is `None` and the table
//! says "n/a".

/// Hands the memory the allocator holds free back to the system (glibc's
/// `malloc_trim`; elsewhere nothing), so that what an earlier workload
/// freed does not count in the next one's peak.
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim takes no pointer and only returns free memory.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// Resets the process's peak resident memory to its current resident
/// memory (`5` into `/proc/self/clear_refs`, Linux 4.0 and later). Returns
/// false when that is not possible: a peak read afterwards would then be
/// the whole process's, so the caller reports none.
pub fn reset_peak() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// A `/proc/self/status` field in KiB, as MiB.
fn status_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Peak resident memory of this process (`VmHWM`) in MiB, since it started
/// or since the last [`reset_peak`].
pub fn peak_rss_mib() -> Option<f64> {
    status_mib("VmHWM:")
}

/// Resident memory of this process now (`VmRSS`) in MiB.
pub fn rss_mib() -> Option<f64> {
    status_mib("VmRSS:")
}

/// Clock ticks per second of `/proc/self/stat`'s times: `USER_HZ`, which
/// Linux fixes at 100 for user space on every common architecture.
const TICKS_PER_S: f64 = 100.0;

/// CPU time this process has used so far, user plus system, over all its
/// threads, in seconds (10 ms resolution).
pub fn cpu_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_stat_cpu(&stat)
}

/// utime + stime of a `/proc/PID/stat` line, in seconds. The command name
/// (field 2, in parentheses) may hold spaces, so fields are counted from
/// after its closing parenthesis: state is field 3, utime 14, stime 15.
fn parse_stat_cpu(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_S)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_time_is_read_after_the_command_name() {
        let line = "123 (a b) c) R 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
        assert_eq!(parse_stat_cpu(line), Some(3.0));
        assert_eq!(parse_stat_cpu("no parenthesis"), None);
        assert_eq!(parse_stat_cpu("1 (x) R 1 2"), None);
    }

    #[test]
    fn the_peak_is_at_least_what_is_resident_now() {
        if !reset_peak() {
            return; // not Linux, or no clear_refs: nothing to check
        }
        let (peak, now) = (peak_rss_mib().expect("VmHWM"), rss_mib().expect("VmRSS"));
        assert!(peak > 0.0 && now > 0.0);
        let block = vec![1u8; 64 << 20];
        std::hint::black_box(&block);
        let after = peak_rss_mib().expect("VmHWM");
        assert!(after >= peak + 32.0, "64 MiB touched: the peak rose from {peak} to {after}");
    }
}
