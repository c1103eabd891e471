//! The layout rules on the real tree.

use std::path::Path;

use stepdeploy_layout::check;

/// The tree itself: the files under `crates/core/src` and `crates/asl/src` stay within the cap with no cycle.
#[test]
fn core_and_asl_have_no_file_over_600_lines_and_no_import_cycle() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("crates/").to_path_buf();
    for name in ["core", "asl"] {
        let problems = check(&crates.join(name).join("src/lib.rs"), 600).expect("readable");
        let shown: Vec<String> = problems.iter().map(ToString::to_string).collect();
        assert!(problems.is_empty(), "crates/{name}:\n{}", shown.join("\n"));
    }
}
