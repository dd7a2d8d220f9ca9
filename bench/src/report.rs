//! The results: figures grouped by scenario, printed as one table and written as JSON.
//!
//! Every figure sits beside its baseline's and says on how many samples each was measured; each
//! section carries notes saying what exactly was measured, and the parameters it ran with.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::machine::Machine;
use crate::stats::{Stat, Summary};
use crate::{Config, Result};

/// One side's value of a figure.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Measure {
    Value(f64),
    /// A setting or a count that is best read as text ("6000/2000/50").
    Text(String),
    /// This platform cannot measure it; the reason.
    Unavailable(String),
    /// The measurement failed; the error.
    Failed(String),
    /// The figure has no counterpart on this side.
    Absent,
}

/// The outcome of measuring one side of a scenario, kept whole so that several figures can be
/// read from it.
#[derive(Debug, Clone)]
pub enum Side<T> {
    Measured(T),
    Unavailable(String),
    Failed(String),
}

impl<T> Side<T> {
    pub fn of(result: Result<T>) -> Side<T> {
        match result {
            Ok(value) => Side::Measured(value),
            Err(e) => Side::Failed(e.to_string()),
        }
    }

    /// Measures with `run` unless `unavailable` gives a reason not to.
    pub fn unless(unavailable: Option<String>, run: impl FnOnce() -> Result<T>) -> Side<T> {
        match unavailable {
            Some(reason) => Side::Unavailable(reason),
            None => Side::of(run()),
        }
    }

    /// The same outcome, with the measured value read into another.
    pub fn map<U>(&self, read: impl FnOnce(&T) -> U) -> Side<U> {
        match self {
            Side::Measured(value) => Side::Measured(read(value)),
            Side::Unavailable(reason) => Side::Unavailable(reason.clone()),
            Side::Failed(error) => Side::Failed(error.clone()),
        }
    }

    pub fn measured(&self) -> Option<&T> {
        match self {
            Side::Measured(value) => Some(value),
            _ => None,
        }
    }

    /// A figure read from the outcome, or why there is none.
    pub fn measure(&self, read: impl FnOnce(&T) -> f64) -> Measure {
        match self {
            Side::Measured(value) => Measure::Value(read(value)),
            Side::Unavailable(reason) => Measure::Unavailable(reason.clone()),
            Side::Failed(error) => Measure::Failed(error.clone()),
        }
    }

    /// Like [`Side::measure`], for a figure that may not exist (a ratio to a failed ceiling).
    pub fn try_measure(&self, read: impl FnOnce(&T) -> Option<f64>, missing: &str) -> Measure {
        match self.measure(|value| read(value).unwrap_or(f64::NAN)) {
            Measure::Value(v) if v.is_nan() => Measure::Failed(missing.into()),
            other => other,
        }
    }

    pub fn count(&self, read: impl FnOnce(&T) -> usize) -> Option<u64> {
        self.measured().map(|value| read(value) as u64)
    }
}

impl Side<Vec<f64>> {
    /// The summary of measured samples.
    pub fn summary(&self) -> Side<Summary> {
        match self {
            Side::Measured(samples) => Side::of(Summary::of(samples).ok_or_else(|| "no samples".into())),
            Side::Unavailable(reason) => Side::Unavailable(reason.clone()),
            Side::Failed(error) => Side::Failed(error.clone()),
        }
    }

    pub fn samples(&self) -> Option<&[f64]> {
        self.measured().map(Vec::as_slice)
    }
}

/// How many samples each side's figure rests on.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Samples {
    pub liblease: Option<u64>,
    pub baseline: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Figure {
    /// The baseline this figure is compared with; empty when there is none.
    pub against: String,
    pub metric: String,
    pub unit: String,
    pub liblease: Measure,
    pub baseline: Measure,
    pub samples: Samples,
}

impl Figure {
    pub fn new(against: &str, metric: impl Into<String>, unit: &str) -> Figure {
        Figure {
            against: against.into(),
            metric: metric.into(),
            unit: unit.into(),
            liblease: Measure::Absent,
            baseline: Measure::Absent,
            samples: Samples::default(),
        }
    }

    pub fn liblease(mut self, value: Measure, samples: Option<u64>) -> Figure {
        self.liblease = value;
        self.samples.liblease = samples;
        self
    }

    pub fn baseline(mut self, value: Measure, samples: Option<u64>) -> Figure {
        self.baseline = value;
        self.samples.baseline = samples;
        self
    }
}

/// One figure per statistic of a distribution, liblease's beside the baseline's (if it has one).
pub fn distribution(
    against: &str,
    what: &str,
    unit: &str,
    liblease: &Side<Summary>,
    baseline: Option<&Side<Summary>>,
    stats: &[Stat],
) -> Vec<Figure> {
    stats
        .iter()
        .map(|&stat| {
            let figure = Figure::new(against, format!("{what}, {}", stat.name()), unit)
                .liblease(liblease.measure(|s| s.get(stat)), liblease.count(|s| s.n));
            match baseline {
                Some(baseline) => figure.baseline(baseline.measure(|s| s.get(stat)), baseline.count(|s| s.n)),
                None => figure,
            }
        })
        .collect()
}

/// The results of one scenario group.
#[derive(Debug, Clone, Serialize)]
pub struct Section {
    pub number: u32,
    pub title: String,
    /// What was measured and how, in sentences.
    pub notes: Vec<String>,
    /// The parameters this run used: counts, durations, options.
    pub parameters: Map<String, Value>,
    pub figures: Vec<Figure>,
}

impl Section {
    pub fn new(number: u32, title: &str) -> Section {
        Section {
            number,
            title: title.into(),
            notes: Vec::new(),
            parameters: Map::new(),
            figures: Vec::new(),
        }
    }

    pub fn note(&mut self, note: impl Into<String>) {
        self.notes.push(note.into());
    }

    pub fn parameter(&mut self, name: &str, value: impl Into<Value>) {
        self.parameters.insert(name.into(), value.into());
    }
}

/// The table of every section, with each section's notes below it.
pub fn table(sections: &[Section]) -> String {
    const HEADER: [&str; 6] = ["scenario", "metric", "liblease", "baseline", "samples", "unit"];
    let mut rows: Vec<[String; 6]> = Vec::new();
    for section in sections {
        // The scenario's name goes on its first line only.
        let mut scenario = format!("{}. {}", section.number, section.title);
        let mut against: Option<&str> = None;
        for figure in &section.figures {
            if against != Some(figure.against.as_str()) {
                against = Some(&figure.against);
                if !figure.against.is_empty() {
                    let group = format!("[vs {}]", figure.against);
                    rows.push([std::mem::take(&mut scenario), group, e(), e(), e(), e()]);
                }
            }
            rows.push([
                std::mem::take(&mut scenario),
                figure.metric.clone(),
                cell(&figure.liblease),
                cell(&figure.baseline),
                samples_cell(&figure.samples),
                figure.unit.clone(),
            ]);
        }
    }
    let mut widths = HEADER.map(|h| h.chars().count());
    for row in &rows {
        for (width, text) in widths.iter_mut().zip(row) {
            // A group's "[vs ...]" line may overflow into the next columns.
            if !text.starts_with("[vs ") {
                *width = (*width).max(text.chars().count());
            }
        }
    }
    let mut out = String::new();
    let line = |out: &mut String, row: &[String; 6]| {
        let mut text = String::new();
        for (index, (cell, width)) in row.iter().zip(widths).enumerate() {
            // Text columns left, number columns right.
            let _ = match index {
                2 | 3 => write!(text, "{cell:>width$}  "),
                _ => write!(text, "{cell:<width$}  "),
            };
        }
        let _ = writeln!(out, "{}", text.trim_end());
    };
    line(&mut out, &HEADER.map(String::from));
    line(&mut out, &widths.map(|w| "-".repeat(w)));
    for row in &rows {
        line(&mut out, row);
    }
    out.push('\n');
    for section in sections {
        let _ = writeln!(out, "{}. {}", section.number, section.title);
        for note in &section.notes {
            let _ = writeln!(out, "   - {note}");
        }
        let mut reported = Vec::new();
        for figure in &section.figures {
            for (side, measure) in [("liblease", &figure.liblease), ("baseline", &figure.baseline)] {
                let why = match measure {
                    Measure::Unavailable(reason) => format!("{side}: unavailable here: {reason}"),
                    Measure::Failed(error) => format!("{side}: FAILED: {error}"),
                    _ => continue,
                };
                if !reported.contains(&why) {
                    let _ = writeln!(out, "   ! {why}");
                    reported.push(why);
                }
            }
        }
    }
    out
}

fn e() -> String {
    String::new()
}

fn cell(measure: &Measure) -> String {
    match measure {
        Measure::Value(value) => number(*value),
        Measure::Text(text) => text.clone(),
        Measure::Unavailable(_) => "unavailable".into(),
        Measure::Failed(_) => "FAILED".into(),
        Measure::Absent => "-".into(),
    }
}

fn samples_cell(samples: &Samples) -> String {
    match (samples.liblease, samples.baseline) {
        (Some(a), Some(b)) if a == b => a.to_string(),
        (Some(a), Some(b)) => format!("{a} / {b}"),
        (Some(a), None) => format!("{a} / -"),
        (None, Some(b)) => format!("- / {b}"),
        (None, None) => "-".into(),
    }
}

/// About three significant figures, never in exponent form.
fn number(value: f64) -> String {
    let magnitude = value.abs();
    if value == 0.0 {
        "0".into()
    } else if magnitude >= 100.0 {
        format!("{value:.0}")
    } else if magnitude >= 10.0 {
        format!("{value:.1}")
    } else if magnitude >= 1.0 {
        format!("{value:.2}")
    } else {
        format!("{value:.3}")
    }
}

/// Writes the run, the machine and every section as JSON, for comparing runs.
pub fn write_json(
    path: &Path,
    config: &Config,
    machine: &Machine,
    elapsed: Duration,
    sections: &[Section],
) -> Result<()> {
    let document = serde_json::json!({
        "program": "lease-bench",
        "format": 1,
        "run": {
            "quick": config.quick,
            "only": config.only,
            "out": config.out.display().to_string(),
            "command": std::env::args().collect::<Vec<_>>().join(" "),
            "elapsed_s": elapsed.as_secs_f64(),
        },
        "machine": machine,
        "sections": sections,
    });
    let text = serde_json::to_string_pretty(&document)?;
    std::fs::write(path, text + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_about_three_figures() {
        assert_eq!(number(0.0), "0");
        assert_eq!(number(0.01234), "0.012");
        assert_eq!(number(1.234), "1.23");
        assert_eq!(number(12.34), "12.3");
        assert_eq!(number(123456.7), "123457");
    }

    #[test]
    fn the_table_names_each_baseline_once_and_explains_failures() {
        let mut section = Section::new(3, "handover");
        section.note("what it measured");
        let liblease = Side::Measured(Summary::of(&[1.0, 2.0]).unwrap());
        let baseline: Side<Summary> = Side::Failed("worker died".into());
        section.figures = distribution(
            "the predecessor",
            "latency",
            "ms",
            &liblease,
            Some(&baseline),
            &[Stat::P50, Stat::Max],
        );
        let table = table(&[section]);
        assert_eq!(table.matches("[vs the predecessor]").count(), 1, "{table}");
        assert!(table.contains("latency, p50"), "{table}");
        assert!(table.contains("FAILED: worker died"), "{table}");
        assert!(table.contains("2 / -"), "{table}");
    }
}
