//! A crate's module tree, read from its files: which file holds each
//! module, what each module defines, and what it imports or re-exports.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// Why a crate's tree could not be read.
#[derive(Debug)]
pub enum TreeError {
    /// A file could not be read.
    Read(PathBuf, std::io::Error),
    /// A file is not Rust that syn parses.
    Parse(PathBuf, syn::Error),
    /// `mod name;` with neither `name.rs` nor `name/mod.rs`.
    MissingModule(PathBuf, String),
}

impl std::fmt::Display for TreeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TreeError::Read(path, e) => write!(f, "{}: cannot read: {e}", path.display()),
            TreeError::Parse(path, e) => write!(f, "{}: not parsable Rust: {e}", path.display()),
            TreeError::MissingModule(path, name) => write!(f, "{}: `mod {name};` has no {name}.rs or {name}/mod.rs", path.display()),
        }
    }
}

impl std::error::Error for TreeError {}

/// One `use` binding: the name it brings in, the path it names, and
/// whether it is a re-export (`pub use`), which is not a dependency of its own.
#[derive(Debug, Clone)]
pub struct Import {
    /// The name bound (`*` for a glob).
    pub name: String,
    /// The path's segments, as written.
    pub path: Vec<String>,
    /// `pub use` (any visibility but private).
    pub reexport: bool,
}

/// A module: a file, or an inline `mod name { ... }` inside one.
pub struct Module {
    /// The file holding it.
    pub file: PathBuf,
    /// The enclosing module (none for the crate root).
    pub parent: Option<usize>,
    /// Child modules by name.
    pub children: BTreeMap<String, usize>,
    /// Names of the items it defines (not modules).
    pub items: BTreeSet<String>,
    /// Its `use` bindings.
    pub imports: Vec<Import>,
    /// The items of this module, for the edge visitor (empty for inline modules: they are visited with their file).
    pub syntax: Vec<syn::Item>,
    /// Whether the module is an inline one (its syntax lives in its parent's).
    pub inline: bool,
}

/// Every module of a crate; index 0 is the root (`lib.rs` or `main.rs`).
pub struct Tree {
    /// The modules.
    pub modules: Vec<Module>,
}

impl Tree {
    /// Reads the crate whose root file is `root` (e.g. `crates/core/src/lib.rs`).
    pub fn read(root: &Path) -> Result<Tree, TreeError> {
        let mut tree = Tree { modules: Vec::new() };
        let dir = root.parent().unwrap_or(Path::new(".")).to_path_buf();
        tree.add_file(root, None, dir)?;
        Ok(tree)
    }

    fn add_file(&mut self, file: &Path, parent: Option<usize>, child_dir: PathBuf) -> Result<usize, TreeError> {
        let text = fs::read_to_string(file).map_err(|e| TreeError::Read(file.to_path_buf(), e))?;
        let parsed = syn::parse_file(&text).map_err(|e| TreeError::Parse(file.to_path_buf(), e))?;
        let index = self.push(file, parent, false);
        self.add_items(index, &parsed.items, &child_dir)?;
        self.modules[index].syntax = parsed.items;
        Ok(index)
    }

    fn push(&mut self, file: &Path, parent: Option<usize>, inline: bool) -> usize {
        self.modules.push(Module {
            file: file.to_path_buf(),
            parent,
            children: BTreeMap::new(),
            items: BTreeSet::new(),
            imports: Vec::new(),
            syntax: Vec::new(),
            inline,
        });
        self.modules.len() - 1
    }

    fn add_items(&mut self, index: usize, items: &[syn::Item], child_dir: &Path) -> Result<(), TreeError> {
        for item in items {
            match item {
                syn::Item::Mod(m) => {
                    let name = m.ident.to_string();
                    let child = match &m.content {
                        Some((_, inner)) => {
                            let file = self.modules[index].file.clone();
                            let child = self.push(&file, Some(index), true);
                            self.add_items(child, inner, &child_dir.join(&name))?;
                            child
                        }
                        None => {
                            let flat = child_dir.join(format!("{name}.rs"));
                            let nested = child_dir.join(&name).join("mod.rs");
                            let file = if flat.exists() {
                                flat
                            } else if nested.exists() {
                                nested
                            } else {
                                return Err(TreeError::MissingModule(self.modules[index].file.clone(), name));
                            };
                            self.add_file(&file, Some(index), child_dir.join(&name))?
                        }
                    };
                    self.modules[index].children.insert(name, child);
                }
                syn::Item::Use(u) => {
                    let reexport = !matches!(u.vis, syn::Visibility::Inherited);
                    let mut found = Vec::new();
                    flatten_use(&u.tree, &mut Vec::new(), &mut found);
                    for (name, path) in found {
                        self.modules[index].imports.push(Import { name, path, reexport });
                    }
                }
                other => {
                    if let Some(name) = item_name(other) {
                        self.modules[index].items.insert(name);
                    }
                }
            }
        }
        Ok(())
    }

    /// The module a path leads to, seen from `from` (for an item, the
    /// module defining it); `None` for a path outside the crate (std, other
    /// crates) or one it cannot follow.
    pub fn resolve(&self, from: usize, path: &[String]) -> Option<usize> {
        self.resolve_depth(from, path, 0).map(|t| t.module)
    }

    fn resolve_depth(&self, from: usize, path: &[String], depth: usize) -> Option<Target> {
        if depth > 32 {
            return None; // a re-export loop: nothing to follow
        }
        let (first, rest) = path.split_first()?;
        let start = match first.as_str() {
            "crate" => 0,
            "self" => from,
            "super" => self.modules[from].parent?,
            // A name in scope (a child module, an item or an import), else another crate.
            _ => return self.lookup(from, path, depth),
        };
        match rest.first().map(String::as_str) {
            None => Some(Target { module: start, is_module: true }),
            Some("super") => self.resolve_depth(start, rest, depth + 1),
            Some(_) => self.lookup(start, rest, depth).or(Some(Target { module: start, is_module: false })),
        }
    }

    /// Follows `path` from the module `at`: its first segment is one of `at`'s names.
    fn lookup(&self, at: usize, path: &[String], depth: usize) -> Option<Target> {
        let (first, rest) = path.split_first()?;
        let module = &self.modules[at];
        let found = if first == "self" || first == "*" {
            Target { module: at, is_module: true }
        } else if let Some(&child) = module.children.get(first) {
            Target { module: child, is_module: true }
        } else if module.items.contains(first) {
            // An item; enum variants and associated items live with it.
            return Some(Target { module: at, is_module: false });
        } else if let Some(import) = module.imports.iter().find(|i| &i.name == first) {
            self.resolve_depth(at, &import.path, depth + 1)?
        } else {
            let mut globbed = None;
            for glob in module.imports.iter().filter(|i| i.name == "*") {
                if let Some(source) = self.resolve_depth(at, &glob.path, depth + 1)
                    && source.module != at
                    && self.has_name(source.module, first)
                {
                    globbed = self.lookup(source.module, path, depth + 1);
                    break;
                }
            }
            return globbed;
        };
        if rest.is_empty() || !found.is_module {
            return Some(found);
        }
        self.lookup(found.module, rest, depth + 1).or(Some(Target { module: found.module, is_module: false }))
    }

    fn has_name(&self, module: usize, name: &str) -> bool {
        let m = &self.modules[module];
        m.children.contains_key(name) || m.items.contains(name) || m.imports.iter().any(|i| i.name == name)
    }
}

/// Where a path leads: a module, or an item of that module.
#[derive(Debug, Clone, Copy)]
struct Target {
    module: usize,
    is_module: bool,
}

/// The name an item defines, for the items that have one.
fn item_name(item: &syn::Item) -> Option<String> {
    let ident = match item {
        syn::Item::Const(i) => &i.ident,
        syn::Item::Enum(i) => &i.ident,
        syn::Item::Fn(i) => &i.sig.ident,
        syn::Item::Static(i) => &i.ident,
        syn::Item::Struct(i) => &i.ident,
        syn::Item::Trait(i) => &i.ident,
        syn::Item::TraitAlias(i) => &i.ident,
        syn::Item::Type(i) => &i.ident,
        syn::Item::Union(i) => &i.ident,
        syn::Item::Macro(i) => i.ident.as_ref()?,
        _ => return None,
    };
    Some(ident.to_string())
}

/// The (bound name, path) pairs a use tree brings in.
pub fn flatten_use(tree: &syn::UseTree, prefix: &mut Vec<String>, out: &mut Vec<(String, Vec<String>)>) {
    match tree {
        syn::UseTree::Path(p) => {
            prefix.push(p.ident.to_string());
            flatten_use(&p.tree, prefix, out);
            prefix.pop();
        }
        syn::UseTree::Name(n) => {
            let name = n.ident.to_string();
            let mut path = prefix.clone();
            path.push(name.clone());
            let bound = if name == "self" { prefix.last().cloned().unwrap_or(name) } else { name };
            out.push((bound, path));
        }
        syn::UseTree::Rename(r) => {
            let mut path = prefix.clone();
            path.push(r.ident.to_string());
            out.push((r.rename.to_string(), path));
        }
        syn::UseTree::Glob(_) => {
            let mut path = prefix.clone();
            path.push("*".into());
            out.push(("*".into(), path));
        }
        syn::UseTree::Group(g) => {
            for item in &g.items {
                flatten_use(item, prefix, out);
            }
        }
    }
}
