//! `stepdeploy graph`, and the README's graphs being current.

use std::path::Path;
use std::process::Command;

fn graph(file: &str, format: &str) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_stepdeploy")).args(["graph", file, "--format", format]).output().expect("stepdeploy runs");
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn root() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

#[test]
fn the_readme_graphs_are_what_the_state_machines_draw() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let mut checked = 0;
    for block in readme.split("<!-- graph: ").skip(1) {
        let file = block.split(" -->").next().unwrap();
        let embedded = block.split("```mermaid\n").nth(1).and_then(|b| b.split("```").next()).unwrap();
        let (ok, drawn, stderr) = graph(root().join(file).to_str().unwrap(), "mermaid");
        assert!(ok, "{stderr}");
        assert_eq!(embedded, drawn, "README.md's graph of {file} is out of date: regenerate it with `stepdeploy graph {file}`");
        checked += 1;
    }
    assert_eq!(checked, 3, "serial-deploy, full-deploy and bake");
}

#[test]
fn dot_output_and_bad_input() {
    let (ok, dot, _) = graph(root().join("statemachines/serial-deploy.asl.json").to_str().unwrap(), "dot");
    assert!(ok && dot.starts_with("digraph workflow {") && dot.contains("Replace -> RolloutProgress"), "{dot}");
    let (ok, _, stderr) = graph(root().join("README.md").to_str().unwrap(), "dot");
    assert!(!ok && stderr.contains("not JSON"), "{stderr}");
}
