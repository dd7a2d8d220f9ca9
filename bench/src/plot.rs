//! SVG plots of distributions, liblease beside its baselines: for each series, the share of
//! samples at or below each value (an empirical CDF), on a logarithmic time axis so that
//! sub-millisecond and second-long waits show on one plot.

use std::path::Path;

use plotters::prelude::*;

use crate::Result;

/// A plot to draw once the run is over.
pub struct Plot {
    /// File name inside the output directory.
    pub file: String,
    pub title: String,
    pub x_label: String,
    /// (label, samples), the samples in the unit of `x_label`.
    pub series: Vec<(String, Vec<f64>)>,
}

/// The smallest value drawn: a logarithmic axis cannot show zero.
const FLOOR: f64 = 1e-3;
/// More points than this per line add nothing to a 1000-pixel-wide plot.
const MAX_POINTS: usize = 2000;
const COLOURS: [RGBColor; 5] =
    [RGBColor(0, 114, 178), RGBColor(213, 94, 0), RGBColor(0, 158, 115), RGBColor(204, 121, 167), BLACK];

impl Plot {
    pub fn new(file: &str, title: &str, x_label: &str) -> Plot {
        Plot { file: file.into(), title: title.into(), x_label: x_label.into(), series: Vec::new() }
    }

    /// Adds a series if it has samples (a failed measurement has none).
    pub fn add(&mut self, label: &str, samples: Option<&[f64]>) {
        if let Some(samples) = samples.filter(|s| !s.is_empty()) {
            self.series.push((label.into(), samples.to_vec()));
        }
    }

    pub fn draw(&self, path: &Path) -> Result<()> {
        if self.series.is_empty() {
            return Err("no series was measured".into());
        }
        let values = || self.series.iter().flat_map(|(_, samples)| samples.iter().map(|v| v.max(FLOOR)));
        let low = values().fold(f64::INFINITY, f64::min);
        let high = values().fold(0.0, f64::max);
        // Whole decades around the data, at least one wide.
        let low = 10f64.powf(low.log10().floor());
        let high = 10f64.powf(high.log10().ceil()).max(low * 10.0);

        let root = SVGBackend::new(path, (960, 560)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let mut chart = ChartBuilder::on(&root)
            .caption(&self.title, ("sans-serif", 20))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(60)
            .build_cartesian_2d((low..high).log_scale(), 0.0..100.0)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc(&self.x_label)
            .y_desc("% of samples at or below")
            .x_label_formatter(&|x| trimmed(*x))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()
            .map_err(|e| e.to_string())?;
        for (index, (label, samples)) in self.series.iter().enumerate() {
            let colour = COLOURS[index % COLOURS.len()];
            let legend = format!("{label} (n = {})", samples.len());
            chart
                .draw_series(LineSeries::new(cdf(samples), colour.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(legend)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .draw()
            .map_err(|e| e.to_string())?;
        root.present().map_err(|e| e.to_string())?;
        Ok(())
    }
}

/// The empirical CDF as a step line: (value, % of samples at or below it).
fn cdf(samples: &[f64]) -> Vec<(f64, f64)> {
    let mut sorted: Vec<f64> = samples.iter().map(|v| v.max(FLOOR)).collect();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let step = n.div_ceil(MAX_POINTS).max(1);
    let mut points = Vec::with_capacity(2 * n / step + 2);
    let mut below = 0.0;
    for index in (0..n).step_by(step).chain([n - 1]) {
        let value = sorted[index];
        let at_or_below = 100.0 * (index + 1) as f64 / n as f64;
        points.push((value, below));
        points.push((value, at_or_below));
        below = at_or_below;
    }
    points
}

/// An axis value without trailing zeros: 0.01, 1, 100.
fn trimmed(value: f64) -> String {
    let text = format!("{value:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}
