//! A deploy's timeline as an SVG chart: healthy old, healthy new, healthy in all and live
//! instances over time, the floor and the ceiling as lines, and markers (rollback, bake).

use anyhow::{Result, anyhow};
use plotters::prelude::*;

/// The counts after one reconcile step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// Seconds since the run started.
    pub at: i64,
    /// Healthy instances on the version being replaced.
    pub old_healthy: u32,
    /// Healthy instances on the target version.
    pub new_healthy: u32,
    /// Live instances (both versions, and any not known yet).
    pub live: u32,
    /// The healthy floor.
    pub floor: u32,
    /// The live ceiling.
    pub ceiling: u32,
}

/// Something that happened at a moment: `rollback`, `bake`...
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Marker {
    /// Seconds since the run started.
    pub at: i64,
    /// What.
    pub label: String,
}

/// The series and their colours (the test reads the SVG's polylines by colour).
pub const SERIES: [(&str, RGBColor); 6] = [
    ("healthy", RGBColor(0x1b, 0x9e, 0x77)),
    ("healthy new", RGBColor(0x75, 0x70, 0xb3)),
    ("healthy old", RGBColor(0xd9, 0x5f, 0x02)),
    ("live", RGBColor(0x66, 0x66, 0x66)),
    ("floor", RGBColor(0xe7, 0x29, 0x8a)),
    ("ceiling", RGBColor(0x1f, 0x78, 0xb4)),
];

/// Draws the timeline as an SVG document.
pub fn draw(title: &str, samples: &[Sample], markers: &[Marker]) -> Result<String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (960, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| anyhow!("timeline: {e}"))?;
        let end = samples.iter().map(|s| s.at).chain(markers.iter().map(|m| m.at)).max().unwrap_or(0).max(1);
        let top = samples.iter().map(|s| s.ceiling.max(s.live)).max().unwrap_or(1).max(1) + 1;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(44)
            .build_cartesian_2d(0i64..end, 0u32..top)
            .map_err(|e| anyhow!("timeline: {e}"))?;
        chart.configure_mesh().x_desc("seconds").y_desc("instances").draw().map_err(|e| anyhow!("timeline: {e}"))?;
        let values: [fn(&Sample) -> u32; 6] =
            [|s| s.old_healthy + s.new_healthy, |s| s.new_healthy, |s| s.old_healthy, |s| s.live, |s| s.floor, |s| s.ceiling];
        for ((name, colour), value) in SERIES.iter().zip(values) {
            // A step line: each count holds until the next step's.
            let mut points = Vec::with_capacity(samples.len() * 2);
            for (i, sample) in samples.iter().enumerate() {
                let until = samples.get(i + 1).map_or(end, |next| next.at);
                points.push((sample.at, value(sample)));
                points.push((until, value(sample)));
            }
            let colour = *colour;
            chart
                .draw_series(LineSeries::new(points, colour.stroke_width(2)))
                .map_err(|e| anyhow!("timeline: {e}"))?
                .label(*name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour.stroke_width(2)));
        }
        for marker in markers {
            chart
                .draw_series(std::iter::once(PathElement::new(vec![(marker.at, 0), (marker.at, top)], BLACK.mix(0.4))))
                .map_err(|e| anyhow!("timeline: {e}"))?;
            chart
                .draw_series(std::iter::once(Text::new(marker.label.clone(), (marker.at, top), ("sans-serif", 12))))
                .map_err(|e| anyhow!("timeline: {e}"))?;
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .position(SeriesLabelPosition::LowerRight)
            .draw()
            .map_err(|e| anyhow!("timeline: {e}"))?;
        root.present().map_err(|e| anyhow!("timeline: {e}"))?;
    }
    Ok(svg)
}
