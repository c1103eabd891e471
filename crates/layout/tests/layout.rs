//! The layout check on small crates written for each case, and on the real tree.

use std::fs;
use std::path::{Path, PathBuf};

use stepdeploy_layout::{Problem, check};

/// Writes `files` (path, text) under a temporary crate folder; returns it and its `lib.rs`.
fn krate(files: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    for (path, text) in files {
        let path = dir.path().join(path);
        fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
        fs::write(path, text).expect("write");
    }
    let root = dir.path().join("lib.rs");
    (dir, root)
}

fn cycles(root: &Path) -> Vec<Vec<(String, String)>> {
    let name = |p: &Path| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    check(root, 600)
        .expect("readable")
        .into_iter()
        .filter_map(|p| match p {
            Problem::Cycle { loop_edges: edges, .. } => Some(edges.iter().map(|e| (name(&e.from), name(&e.to))).collect()),
            _ => None,
        })
        .collect()
}

#[test]
fn two_files_that_use_each_other_are_a_cycle() {
    let (_dir, root) = krate(&[
        ("lib.rs", "mod a;\nmod b;\n"),
        ("a.rs", "use crate::b::B;\npub struct A(B);\n"),
        ("b.rs", "pub struct B;\npub fn f(_: crate::a::A) {}\n"),
    ]);
    assert_eq!(cycles(&root), vec![vec![("a.rs".into(), "b.rs".into()), ("b.rs".into(), "a.rs".into())]]);
    let shown = check(&root, 600).unwrap()[0].to_string();
    assert!(shown.contains("a.rs uses") && shown.contains("(crate::b::B)") && shown.contains("(crate::a::A)"), "{shown}");
}

#[test]
fn a_cycle_through_three_files_and_a_reexport_is_found() {
    let (_dir, root) = krate(&[
        ("lib.rs", "mod a;\nmod b;\nmod c;\npub use c::C;\n"),
        ("a.rs", "pub struct A(crate::b::B);\n"),
        ("b.rs", "use crate::C;\npub struct B(C);\n"),
        ("c.rs", "use super::a::A;\npub struct C(Box<A>);\n"),
    ]);
    let found = cycles(&root);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0].len(), 3, "a -> b -> c -> a: {found:?}");
}

#[test]
fn a_nested_module_using_its_parent_folder_module_is_a_cycle_when_the_parent_uses_it() {
    let (_dir, root) = krate(&[
        ("lib.rs", "pub mod steps;\n"),
        ("steps/mod.rs", "mod lock;\nmod dispatch;\npub use dispatch::handle;\npub struct Error;\n"),
        ("steps/lock.rs", "use super::Error;\npub fn take() -> Result<(), Error> { crate::steps::handle(); Ok(()) }\n"),
        ("steps/dispatch.rs", "pub fn handle() { super::lock::take().ok(); }\n"),
    ]);
    let found = cycles(&root);
    assert_eq!(found, vec![vec![("dispatch.rs".into(), "lock.rs".into()), ("lock.rs".into(), "dispatch.rs".into())]]);
}

#[test]
fn layered_modules_mod_declarations_and_reexports_are_not_cycles() {
    let (_dir, root) = krate(&[
        ("lib.rs", "pub mod low;\npub mod high;\npub use high::run;\npub use low::*;\n"),
        ("low.rs", "pub struct Record;\n#[cfg(test)]\nmod tests {\n    use super::*;\n    #[test]\n    fn t() { let _ = Record; }\n}\n"),
        (
            "high.rs",
            "use crate::Record;\nuse std::collections::HashMap;\npub fn run() -> (Record, HashMap<u8, u8>) { (crate::low::Record, HashMap::new()) }\n",
        ),
    ]);
    assert_eq!(cycles(&root), Vec::<Vec<(String, String)>>::new());
}

#[test]
fn a_file_over_the_cap_is_named_with_its_length() {
    let long = "pub fn f() {}\n".repeat(11);
    let (_dir, root) = krate(&[("lib.rs", "mod long;\n"), ("long.rs", &long)]);
    let problems = check(&root, 10).unwrap();
    assert!(matches!(&problems[..], [Problem::TooLong { lines: 11, cap: 10, .. }]), "{problems:?}");
    assert!(check(&root, 11).unwrap().is_empty());
}

#[test]
fn a_missing_module_file_is_an_error_naming_it() {
    let (_dir, root) = krate(&[("lib.rs", "mod gone;\n")]);
    let error = check(&root, 600).unwrap_err().to_string();
    assert!(error.contains("mod gone;"), "{error}");
}
