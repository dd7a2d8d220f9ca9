//! What a run was measured on, so that runs can be compared: cores, CPU, kernel, date, the
//! commit of liblease, SQLite's version, and the file system of the temporary databases.

use std::ffi::CStr;
use std::path::Path;
use std::process::Command;

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    pub cores: usize,
    pub cpu: String,
    pub memory_mib: Option<u64>,
    pub kernel: String,
    pub date_utc: String,
    pub git_commit: String,
    /// True when tracked files differed from the commit: the figures are of a working tree.
    pub git_dirty: Option<bool>,
    pub liblease_version: String,
    pub sqlite_version: String,
    /// Where the temporary databases live, and its file system (it decides what reaches disk).
    pub temp_dir: String,
    pub temp_fs: String,
}

impl Machine {
    pub fn describe() -> Machine {
        let temp_dir = std::env::temp_dir();
        Machine {
            cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
            cpu: cpu_model().unwrap_or_else(|| "unknown".into()),
            memory_mib: memory_mib(),
            kernel: kernel(),
            date_utc: utc_now(),
            git_commit: git(&["rev-parse", "HEAD"]).unwrap_or_else(|| "unknown".into()),
            git_dirty: git(&["status", "--porcelain", "--untracked-files=no"]).map(|s| !s.is_empty()),
            liblease_version: liblease_version(),
            sqlite_version: rusqlite::version().to_owned(),
            temp_fs: file_system(&temp_dir),
            temp_dir: temp_dir.display().to_string(),
        }
    }

    /// One line for under the table.
    pub fn summary(&self) -> String {
        let dirty = match self.git_dirty {
            Some(true) => " with uncommitted changes",
            _ => "",
        };
        format!(
            "Machine: {} cores ({}), {} MiB, {}; liblease {} at {}{dirty}; SQLite {}; temp dir {} ({}); {}",
            self.cores,
            self.cpu,
            self.memory_mib.map_or("?".into(), |m| m.to_string()),
            self.kernel,
            self.liblease_version,
            &self.git_commit[..self.git_commit.len().min(12)],
            self.sqlite_version,
            self.temp_dir,
            self.temp_fs,
            self.date_utc,
        )
    }
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    let line = info.lines().find(|line| line.starts_with("model name"))?;
    Some(line.split_once(':')?.1.trim().to_owned())
}

fn memory_mib() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find_map(|line| line.strip_prefix("MemTotal:"))?;
    Some(line.trim().trim_end_matches("kB").trim().parse::<u64>().ok()? / 1024)
}

fn kernel() -> String {
    // SAFETY: utsname is plain bytes; uname fills it with NUL-terminated strings.
    let mut name: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut name) } != 0 {
        return "unknown".into();
    }
    let text = |field: &[libc::c_char]| {
        // SAFETY: uname NUL-terminates every field.
        unsafe { CStr::from_ptr(field.as_ptr()) }.to_string_lossy().into_owned()
    };
    format!("{} {} {}", text(&name.sysname), text(&name.release), text(&name.machine))
}

fn liblease_version() -> String {
    let version = lease::ffi::lease_version();
    if version.is_null() {
        return "unknown".into();
    }
    // SAFETY: lease_version returns a static NUL-terminated string.
    unsafe { CStr::from_ptr(version) }.to_string_lossy().into_owned()
}

/// The workspace's git, if there is one.
fn git(args: &[&str]) -> Option<String> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    let output = Command::new("git").arg("-C").arg(workspace).args(args).output().ok()?;
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

#[cfg(target_os = "linux")]
fn file_system(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else { return "unknown".into() };
    // SAFETY: statfs is plain data; the path is NUL-terminated.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(path.as_ptr(), &mut stat) } != 0 {
        return "unknown".into();
    }
    #[allow(clippy::unnecessary_cast)] // f_type's integer type differs between targets.
    match stat.f_type as u64 {
        0xEF53 => "ext4".into(),
        0x0102_1994 => "tmpfs".into(),
        0x5846_5342 => "xfs".into(),
        0x9123_683E => "btrfs".into(),
        0x794C_7630 => "overlayfs".into(),
        0x2FC1_2FC1 => "zfs".into(),
        0xF2F5_2010 => "f2fs".into(),
        other => format!("file system type {other:#x}"),
    }
}

#[cfg(not(target_os = "linux"))]
fn file_system(_path: &Path) -> String {
    "unknown".into()
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SSZ`.
fn utc_now() -> String {
    let seconds =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, time) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", time / 3600, time % 3600 / 60, time % 60)
}

/// The proleptic Gregorian date of a count of days since 1970-01-01 (the well-known
/// era-based conversion).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_index + 2) / 5 + 1) as u32;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_from_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
    }
}
