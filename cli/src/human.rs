//! Durations and tables as a person reads them.

/// `850ms`, `9.8s`, `3m12s`, `2h05m`, `4d07h`.
pub fn duration_ms(ms: u64) -> String {
    let seconds = ms / 1000;
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{}.{}s", seconds, ms % 1000 / 100),
        60_000..3_600_000 => format!("{}m{:02}s", seconds / 60, seconds % 60),
        3_600_000..86_400_000 => format!("{}h{:02}m", seconds / 3600, seconds % 3600 / 60),
        _ => format!("{}d{:02}h", seconds / 86_400, seconds % 86_400 / 3600),
    }
}

/// "no writer waiting", "1 writer waiting", "2 writers waiting".
pub fn writers_waiting(count: usize) -> String {
    match count {
        0 => "no writer waiting".into(),
        1 => "1 writer waiting".into(),
        n => format!("{n} writers waiting"),
    }
}

/// Rows of cells as columns aligned on the widest cell, two spaces apart, the first row the
/// header.
pub fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|column| {
            rows.iter().filter_map(|row| row.get(column)).map(|cell| cell.chars().count()).max().unwrap_or(0)
        })
        .collect();
    let mut text = String::new();
    for row in rows {
        let mut line = String::new();
        for (column, cell) in row.iter().enumerate() {
            if column + 1 < row.len() {
                line.push_str(&format!("{cell:<width$}  ", width = widths[column]));
            } else {
                line.push_str(cell);
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_at_a_glance() {
        assert_eq!(duration_ms(850), "850ms");
        assert_eq!(duration_ms(9_870), "9.8s");
        assert_eq!(duration_ms(192_000), "3m12s");
        assert_eq!(duration_ms(7_500_000), "2h05m");
        assert_eq!(duration_ms(4 * 86_400_000 + 7 * 3_600_000), "4d07h");
    }

    #[test]
    fn columns_align() {
        let rows = vec![vec!["KEY".into(), "PID".into()], vec!["export".into(), "7".into()]];
        assert_eq!(table(&rows), "KEY     PID\nexport  7\n");
    }
}
