//! Which file uses which: `use` items and inline `crate::`/`super::`/`self::`
//! paths (and paths through a child module), each resolved to the file
//! that defines the name. `mod` declarations and re-exports are not edges.

use std::path::PathBuf;

use syn::visit::Visit;

use crate::tree::{Tree, flatten_use};

/// One file's use of another.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Edge {
    /// The file that uses.
    pub from: PathBuf,
    /// The file that defines what it uses.
    pub to: PathBuf,
    /// The path as written, e.g. `crate::steps::StepError`.
    pub via: String,
}

/// Every edge between two different files of the tree.
pub fn edges(tree: &Tree) -> Vec<Edge> {
    let mut out = Vec::new();
    for (index, module) in tree.modules.iter().enumerate() {
        if !module.inline {
            walk(tree, index, &module.syntax, &mut out);
        }
    }
    out.sort();
    out.dedup();
    out
}

fn walk(tree: &Tree, module: usize, items: &[syn::Item], out: &mut Vec<Edge>) {
    for item in items {
        match item {
            syn::Item::Mod(m) => {
                if let (Some((_, inner)), Some(&child)) = (&m.content, tree.modules[module].children.get(&m.ident.to_string())) {
                    walk(tree, child, inner, out);
                }
            }
            syn::Item::Use(u) => {
                if !matches!(u.vis, syn::Visibility::Inherited) {
                    continue; // a re-export is not a dependency of its own
                }
                let mut found = Vec::new();
                flatten_use(&u.tree, &mut Vec::new(), &mut found);
                for (_, path) in found {
                    add(tree, module, &path, out);
                }
            }
            other => {
                let mut paths = Paths { tree, module, found: Vec::new() };
                paths.visit_item(other);
                for path in paths.found {
                    add(tree, module, &path, out);
                }
            }
        }
    }
}

fn add(tree: &Tree, module: usize, path: &[String], out: &mut Vec<Edge>) {
    let Some(target) = tree.resolve(module, path) else { return };
    let (from, to) = (&tree.modules[module].file, &tree.modules[target].file);
    if from != to {
        out.push(Edge { from: from.clone(), to: to.clone(), via: path.join("::") });
    }
}

/// Collects the paths of an item that lead into this crate.
struct Paths<'t> {
    tree: &'t Tree,
    module: usize,
    found: Vec<Vec<String>>,
}

impl<'ast> Visit<'ast> for Paths<'_> {
    fn visit_path(&mut self, path: &'ast syn::Path) {
        let segments: Vec<String> = path.segments.iter().map(|s| s.ident.to_string()).collect();
        if segments.len() > 1 {
            let first = segments[0].as_str();
            if matches!(first, "crate" | "super" | "self") || self.tree.modules[self.module].children.contains_key(first) {
                self.found.push(segments);
            }
        }
        syn::visit::visit_path(self, path);
    }

    fn visit_item_mod(&mut self, _: &'ast syn::ItemMod) {
        // Modules inside function bodies are not followed.
    }
}
