//! A parsed path: where it starts and its steps.

use serde_json::Value;

/// Where a path starts.
#[derive(Debug, Clone, PartialEq)]
pub enum Root {
    /// `$`: the state's input (or the value being processed).
    Input,
    /// `$$`: the context object.
    Context,
    /// `$name`: a variable.
    Variable(String),
}

/// One step of a path.
#[derive(Debug, Clone, PartialEq)]
pub enum Segment {
    /// `.name` or `['name']`.
    Name(String),
    /// `[3]` or `[-1]`.
    Index(i64),
    /// `.*` or `[*]`.
    Wildcard,
    /// `..name` (or `..*` with `None`).
    Descend(Option<String>),
    /// `[a,b]` or `[0,2]`.
    Union(Vec<Segment>),
    /// `[start:end:step]`.
    Slice(Option<i64>, Option<i64>, Option<i64>),
    /// `[?(...)]`.
    Filter(Filter),
    /// `.length()`.
    Length,
}

/// A filter expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `@.a.b` exists (and is truthy as Jayway reads it: present).
    Exists(Vec<Segment>),
    /// `@.a < 3` and the like.
    Compare(Vec<Segment>, String, Value),
    /// `a && b`.
    And(Box<Filter>, Box<Filter>),
    /// `a || b`.
    Or(Box<Filter>, Box<Filter>),
    /// `!a`.
    Not(Box<Filter>),
}

/// A parsed path.
#[derive(Debug, Clone, PartialEq)]
pub struct Path {
    /// The source text.
    pub text: String,
    /// Its start.
    pub root: Root,
    /// Its steps.
    pub segments: Vec<Segment>,
    /// Names and indexes only: one place, walked without collecting.
    pub(super) simple: bool,
}
