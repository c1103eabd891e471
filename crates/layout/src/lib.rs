//! Keeps the source tree one a reader can hold: every file under a line
//! cap, and no file importing from a module that imports it back, directly
//! or through others (a module uses what sits below it, never above).
//!
//! `scripts/test` runs it over `crates/core/src` and `crates/asl/src`.

pub mod edges;
pub mod tree;

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};

pub use edges::{Edge, edges};
pub use tree::{Tree, TreeError};

/// What the check found wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A file over the line cap.
    TooLong {
        /// The file.
        file: PathBuf,
        /// Its lines.
        lines: usize,
        /// The cap.
        cap: usize,
    },
    /// Files that import from each other: every file of the group, and the
    /// edges of one loop through them, in order.
    Cycle {
        /// The files that all reach each other.
        files: Vec<PathBuf>,
        /// One loop: the shortest through the first file.
        loop_edges: Vec<Edge>,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::TooLong { file, lines, cap } => {
                write!(f, "{}: {lines} lines, over the cap of {cap}; split it into modules", file.display())
            }
            Problem::Cycle { files, loop_edges } => {
                let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
                write!(f, "import cycle among {} files ({}); one loop:", files.len(), names.join(", "))?;
                for edge in loop_edges {
                    write!(f, "\n  {} uses {} ({})", edge.from.display(), edge.to.display(), edge.via)?;
                }
                Ok(())
            }
        }
    }
}

/// Checks the crate whose root is `root` (`lib.rs`): line cap on every
/// `.rs` file below its folder, and import cycles between its files.
pub fn check(root: &Path, cap: usize) -> Result<Vec<Problem>, TreeError> {
    let mut problems = Vec::new();
    let dir = root.parent().unwrap_or(Path::new("."));
    for file in rust_files(dir).map_err(|e| TreeError::Read(dir.to_path_buf(), e))? {
        let text = std::fs::read_to_string(&file).map_err(|e| TreeError::Read(file.clone(), e))?;
        let lines = text.lines().count();
        if lines > cap {
            problems.push(Problem::TooLong { file, lines, cap });
        }
    }
    let tree = Tree::read(root)?;
    problems.extend(cycles(&edges(&tree)).into_iter().map(|(files, loop_edges)| Problem::Cycle { files, loop_edges }));
    Ok(problems)
}

fn rust_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// One cycle per group of files that reach each other (a strongly
/// connected component): its files, and the shortest loop through the first.
pub fn cycles(edges: &[Edge]) -> Vec<(Vec<PathBuf>, Vec<Edge>)> {
    let mut next: BTreeMap<&Path, Vec<&Edge>> = BTreeMap::new();
    for edge in edges {
        next.entry(&edge.from).or_default().push(edge);
    }
    let files: BTreeSet<&Path> = edges.iter().flat_map(|e| [e.from.as_path(), e.to.as_path()]).collect();
    let mut seen: BTreeSet<&Path> = BTreeSet::new();
    let mut out = Vec::new();
    for &file in &files {
        if seen.contains(file) {
            continue;
        }
        let Some(cycle) = shortest_loop(file, &next) else { continue };
        // Every file that reaches `file` and is reached from it is in the same cycle group.
        let group: Vec<PathBuf> =
            reachable(file, &next).into_iter().filter(|other| reachable(other, &next).contains(file)).map(Path::to_path_buf).collect();
        seen.extend(group.iter().map(PathBuf::as_path).filter_map(|p| files.get(p).copied()));
        out.push((group, cycle));
    }
    out
}

fn reachable<'a>(start: &'a Path, next: &BTreeMap<&'a Path, Vec<&'a Edge>>) -> BTreeSet<&'a Path> {
    let mut found = BTreeSet::new();
    let mut queue = VecDeque::from([start]);
    while let Some(file) = queue.pop_front() {
        for edge in next.get(file).into_iter().flatten() {
            if found.insert(edge.to.as_path()) {
                queue.push_back(&edge.to);
            }
        }
    }
    found
}

/// The shortest chain of edges from `start` back to itself.
fn shortest_loop(start: &Path, next: &BTreeMap<&Path, Vec<&Edge>>) -> Option<Vec<Edge>> {
    let mut came_by: BTreeMap<&Path, &Edge> = BTreeMap::new();
    let mut queue = VecDeque::from([start]);
    while let Some(file) = queue.pop_front() {
        for &edge in next.get(file).into_iter().flatten() {
            if edge.to == start {
                let mut chain = vec![edge.clone()];
                let mut at = edge.from.as_path();
                while at != start {
                    let previous = came_by[at];
                    chain.push(previous.clone());
                    at = &previous.from;
                }
                chain.reverse();
                return Some(chain);
            }
            if !came_by.contains_key(edge.to.as_path()) && edge.to != start {
                came_by.insert(&edge.to, edge);
                queue.push_back(&edge.to);
            }
        }
    }
    None
}
