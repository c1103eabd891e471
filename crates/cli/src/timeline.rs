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

/// A real execution's timeline, from its history: each reconcile step's counts (as `follow`
/// reads them), with the rollback and the bake marked.
#[cfg(any(feature = "aws", test))]
pub fn from_history(events: &[crate::progress::HistoryEvent]) -> (Vec<Sample>, Vec<Marker>) {
    let mut follow = crate::progress::Follow::default();
    let (mut samples, mut markers): (Vec<Sample>, Vec<Marker>) = (Vec::new(), Vec::new());
    let mut ordered: Vec<&crate::progress::HistoryEvent> = events.iter().collect();
    ordered.sort_by_key(|e| e.id);
    for event in ordered {
        let Some(crate::progress::Update::Rollout(r)) = follow.apply(event) else { continue };
        let at = follow.elapsed_seconds();
        // The chart's old and new are the deploy's, whichever way the rollout runs.
        let target_healthy = r.replaced;
        let other_healthy = r.healthy.saturating_sub(r.replaced);
        let (old_healthy, new_healthy) = if r.rolling_back { (target_healthy, other_healthy) } else { (other_healthy, target_healthy) };
        samples.push(Sample { at, old_healthy, new_healthy, live: r.new + r.old, floor: r.min_healthy, ceiling: r.max_total });
        if r.rolling_back && !markers.iter().any(|m| m.label == "rollback") {
            markers.push(Marker { at, label: "rollback".into() });
        }
        if r.bake_remaining_seconds.is_some() && !r.rolling_back && !markers.iter().any(|m| m.label == "bake") {
            markers.push(Marker { at, label: "bake".into() });
        }
    }
    (samples, markers)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::progress::HistoryEvent;
    use serde_json::json;

    fn event(id: i64, at: i64, kind: &str, payload: Option<serde_json::Value>) -> HistoryEvent {
        HistoryEvent {
            id,
            kind: kind.to_string(),
            timestamp: chrono::DateTime::from_timestamp(1_767_225_600 + at, 0).unwrap_or_default(),
            state: Some("Replace".into()),
            payload: payload.map(|p| p.to_string()),
            error: None,
            cause: None,
        }
    }

    fn step(new_healthy: u32, old_healthy: u32, rolling_back: bool, bake: Option<u64>) -> serde_json::Value {
        json!({"deployment": {"rolling_back": rolling_back, "step": {"next": "wait", "seconds": 15, "bake_remaining_seconds": bake,
            "progress": {"new": new_healthy, "new_healthy": new_healthy, "old": old_healthy, "old_healthy": old_healthy, "unknown": 0,
                         "standby": 0, "goal": 4, "min_healthy": 4, "max_total": 8}, "not_healthy": []}}})
    }

    #[test]
    fn a_history_gives_one_sample_per_reconcile_step_in_the_deploys_terms() {
        let events = vec![
            event(1, 0, "ExecutionStarted", None),
            event(2, 15, "TaskStateExited", Some(step(0, 4, false, None))),
            event(4, 120, "TaskStateExited", Some(step(4, 0, false, Some(60)))),
            // Out of order in the page: sorted by id.
            event(3, 60, "TaskStateExited", Some(step(2, 2, false, None))),
            // The rollback's target is the old version: its "new" is the deploy's old.
            event(5, 200, "TaskStateExited", Some(step(3, 1, true, None))),
        ];
        let (samples, markers) = from_history(&events);
        let counts: Vec<(i64, u32, u32, u32, u32)> = samples.iter().map(|s| (s.at, s.old_healthy, s.new_healthy, s.floor, s.ceiling)).collect();
        assert_eq!(counts, [(15, 4, 0, 4, 8), (60, 2, 2, 4, 8), (120, 0, 4, 4, 8), (200, 3, 1, 4, 8)]);
        assert_eq!(markers, [Marker { at: 120, label: "bake".into() }, Marker { at: 200, label: "rollback".into() }]);
    }
}
