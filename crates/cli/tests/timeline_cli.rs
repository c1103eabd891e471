//! `stepdeploy local --timeline FILE.svg`: the chart's series are there, the floor never sits
//! above the healthy count in a run that succeeds, and the charts in docs/ are current.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// Runs `local` with `--timeline` into a temporary file and returns the SVG.
fn chart(args: &[&str], name: &str) -> String {
    let path: PathBuf = std::env::temp_dir().join(format!("stepdeploy-timeline-{}-{name}.svg", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_stepdeploy")).arg("local").args(args).arg("--timeline").arg(&path).output().expect("stepdeploy runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("timeline written to"), "{stderr}");
    let svg = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).ok();
    svg
}

/// The series' colours, as `crates/cli/src/timeline.rs` draws them.
const SERIES: [(&str, &str); 6] = [
    ("healthy", "#1B9E77"),
    ("healthy new", "#7570B3"),
    ("healthy old", "#D95F02"),
    ("live", "#666666"),
    ("floor", "#E7298A"),
    ("ceiling", "#1F78B4"),
];

/// Each series' data line (the longest polyline of its colour; the other is its legend swatch).
fn lines(svg: &str) -> BTreeMap<&'static str, Vec<(f64, f64)>> {
    let mut out = BTreeMap::new();
    for (name, colour) in SERIES {
        let mut longest: Vec<(f64, f64)> = Vec::new();
        for element in svg.split("<polyline").skip(1) {
            let element = element.split("/>").next().unwrap_or("");
            if !element.contains(&format!("stroke=\"{colour}\"")) {
                continue;
            }
            let points = element.split("points=\"").nth(1).and_then(|p| p.split('"').next()).unwrap_or("");
            let parsed: Vec<(f64, f64)> =
                points.split_whitespace().filter_map(|xy| xy.split_once(',').and_then(|(x, y)| Some((x.parse().ok()?, y.parse().ok()?)))).collect();
            if parsed.len() > longest.len() {
                longest = parsed;
            }
        }
        out.insert(name, longest);
    }
    out
}

#[test]
fn a_successful_deploys_chart_has_every_series_and_the_floor_never_above_the_healthy_count() {
    let svg = chart(&["serial", "--instances", "6"], "serial");
    assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"), "an SVG document");
    let lines = lines(&svg);
    for (name, points) in &lines {
        assert!(points.len() > 4, "{name}: {points:?}");
        assert!(svg.contains(&format!("\n{name}\n")), "the legend names {name}");
    }
    assert!(svg.contains("\nbake\n"), "the bake is marked");
    // Step lines of the same samples share their x; SVG's y grows downwards, so "never above" is y_floor >= y_healthy.
    let (floor, healthy) = (&lines["floor"], &lines["healthy"]);
    assert_eq!(floor.len(), healthy.len());
    for (f, h) in floor.iter().zip(healthy) {
        assert_eq!(f.0, h.0);
        assert!(f.1 >= h.1, "the floor at y={} sits above the healthy count at y={} (x={})", f.1, h.1, f.0);
    }
}

#[test]
fn a_rollback_and_a_full_deploy_are_marked() {
    let rollback = chart(&["serial", "--instances", "6", "--fault", "alarm-during-rollout"], "rollback");
    assert!(rollback.contains("\nrollback\n"), "the rollback is marked");
    let full = chart(&["full", "--instances", "6"], "full");
    assert!(full.contains("\npage up\n") && full.contains("\npage down\n"), "the maintenance page is marked");
}

#[test]
fn the_charts_in_docs_are_what_the_runs_draw() {
    for (name, args) in [
        ("serial", &["serial", "--instances", "6"][..]),
        ("rollback", &["serial", "--instances", "6", "--fault", "alarm-during-bake"][..]),
        ("full", &["full", "--instances", "6"][..]),
    ] {
        let file = root().join(format!("docs/timeline-{name}.svg"));
        let committed = std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let drawn = chart(args, name);
        assert!(
            committed == drawn,
            "{} is out of date: regenerate it with `stepdeploy local {} --timeline {}` (scripts/bench does)",
            file.display(),
            args.join(" "),
            file.display()
        );
    }
}
