//! What Linux's /proc says about a process: bytes written, CPU time, resident memory, threads.
//! Elsewhere these return an error that the scenarios report as "unavailable".

use crate::Result;

/// Why a figure from /proc cannot be had on this platform, or `None` when it can.
pub fn unavailable() -> Option<String> {
    if std::path::Path::new("/proc/self/io").exists() && std::path::Path::new("/proc/self/stat").exists() {
        None
    } else {
        Some("needs Linux's /proc (io, stat, status, task)".into())
    }
}

/// Counters of /proc/<pid>/io.
#[derive(Debug, Clone, Copy, Default)]
pub struct Io {
    /// Bytes passed to write(2) and friends (pwrite, writev...), whatever the file.
    pub wchar: u64,
    /// Bytes the process caused to be sent to the block layer (pages it dirtied on a block
    /// device; 0 on tmpfs).
    pub write_bytes: u64,
}

pub fn io(pid: u32) -> Result<Io> {
    let text = read(&format!("/proc/{pid}/io"))?;
    let field = |name: &str| -> Result<u64> {
        text.lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .ok_or_else(|| format!("/proc/{pid}/io has no {name}"))?
            .trim()
            .parse()
            .map_err(|e| format!("/proc/{pid}/io {name}: {e}").into())
    };
    Ok(Io { wchar: field("wchar")?, write_bytes: field("write_bytes")? })
}

/// User plus system CPU time of the whole process (all its threads), in seconds, from the
/// utime and stime fields of /proc/<pid>/stat (whole clock ticks, usually 10 ms).
pub fn cpu_seconds(pid: u32) -> Result<f64> {
    let text = read(&format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces and parentheses: the fields start after the last ')'.
    let rest = text.rsplit_once(')').ok_or("malformed /proc/<pid>/stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Field 3 (state) is fields[0]; utime is field 14, stime field 15.
    let ticks = |index: usize| -> Result<u64> {
        Ok(fields.get(index).ok_or("short /proc/<pid>/stat")?.parse::<u64>()?)
    };
    // SAFETY: sysconf has no preconditions.
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if per_second <= 0 {
        return Err("sysconf(_SC_CLK_TCK) failed".into());
    }
    Ok((ticks(11)? + ticks(12)?) as f64 / per_second as f64)
}

/// CPU time of every live thread of the process, in seconds, from /proc/<pid>/task/*/schedstat
/// (nanoseconds on the CPU, as the scheduler counts them: finer than whole ticks).
pub fn cpu_seconds_precise(pid: u32) -> Result<f64> {
    let mut total_ns = 0u64;
    for entry in std::fs::read_dir(format!("/proc/{pid}/task"))? {
        let path = entry?.path().join("schedstat");
        let text = read(&path.to_string_lossy())?;
        total_ns += text.split_whitespace().next().ok_or("empty schedstat")?.parse::<u64>()?;
    }
    Ok(total_ns as f64 / 1e9)
}

/// CPU time of the calling thread, in seconds, from /proc/thread-self/schedstat.
pub fn cpu_seconds_of_this_thread() -> Result<f64> {
    let text = read("/proc/thread-self/schedstat")?;
    Ok(text.split_whitespace().next().ok_or("empty schedstat")?.parse::<u64>()? as f64 / 1e9)
}

/// Resident memory (VmRSS) of a process, in KiB.
pub fn rss_kib(pid: u32) -> Result<u64> {
    status_kib(pid, "VmRSS")
}

/// Resident anonymous memory (RssAnon: heap, stacks, private dirty pages; no code) of a process,
/// in KiB.
pub fn anon_kib(pid: u32) -> Result<u64> {
    status_kib(pid, "RssAnon")
}

fn status_kib(pid: u32, field: &str) -> Result<u64> {
    let text = read(&format!("/proc/{pid}/status"))?;
    let prefix = format!("{field}:");
    let line = text
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .ok_or_else(|| format!("no {field} in status"))?;
    Ok(line.trim().trim_end_matches("kB").trim().parse()?)
}

/// Number of threads of a process.
pub fn threads(pid: u32) -> Result<usize> {
    Ok(std::fs::read_dir(format!("/proc/{pid}/task"))?.count())
}

fn read(path: &str) -> Result<String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {path}: {e}").into())
}
