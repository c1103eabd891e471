//! JSONPath as Step Functions reads it (the Jayway dialect), and reference
//! paths for ResultPath.
//!
//! Hand-written because the JSONPath crates follow RFC 9535, which AWS does
//! not: AWS accepts names like `$.input-value`, returns a plain value for a
//! definite path and an array for an indefinite one (wildcards, slices,
//! filters, unions, deep scans), and knows `.length()`.

use serde_json::{Map, Value};

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
    simple: bool,
}

impl Path {
    /// Parses `text`; the error says what is wrong.
    pub fn parse(text: &str) -> Result<Path, String> {
        let mut p = Parser { chars: text.chars().collect(), pos: 0 };
        let root = p.root()?;
        let mut segments = Vec::new();
        while !p.done() {
            segments.push(p.segment()?);
        }
        let simple = segments.iter().all(|s| matches!(s, Segment::Name(_) | Segment::Index(_)));
        Ok(Path { text: text.to_string(), root, segments, simple })
    }

    /// Whether the path names exactly one place (no wildcard, slice, filter, union or deep scan).
    pub fn is_definite(&self) -> bool {
        self.segments.iter().all(|s| matches!(s, Segment::Name(_) | Segment::Index(_) | Segment::Length))
    }

    /// Evaluates against `value`. A definite path gives the value or `None`
    /// when absent; an indefinite one gives an array of every match.
    pub fn select(&self, value: &Value) -> Option<Value> {
        if self.simple {
            return self.walk(value).cloned();
        }
        let mut current: Vec<&Value> = vec![value];
        let mut lengths: Vec<Value> = Vec::new();
        for segment in &self.segments {
            if let Segment::Length = segment {
                // .length() makes new values; it ends a path in practice.
                lengths = current.iter().filter_map(|v| length_of(v)).collect();
                current = Vec::new();
                continue;
            }
            let mut next = Vec::new();
            for v in current {
                apply(segment, v, &mut next);
            }
            current = next;
            if current.is_empty() && self.is_definite() && lengths.is_empty() {
                return None;
            }
        }
        let mut found: Vec<Value> = current.into_iter().cloned().collect();
        found.extend(lengths);
        if self.is_definite() { found.into_iter().next() } else { Some(Value::Array(found)) }
    }

    /// A names-and-indexes path, followed without copying.
    fn walk<'v>(&self, value: &'v Value) -> Option<&'v Value> {
        let mut current = value;
        for segment in &self.segments {
            current = match segment {
                Segment::Name(name) => current.as_object()?.get(name)?,
                Segment::Index(i) => {
                    let items = current.as_array()?;
                    let idx = if *i < 0 { items.len() as i64 + i } else { *i };
                    items.get(usize::try_from(idx).ok()?)?
                }
                _ => return None,
            };
        }
        Some(current)
    }

    /// The same path with `$` quoted the way AWS prints it in causes: `$['a']['b']`.
    pub fn bracketed(&self) -> String {
        let mut out = String::from("$");
        for s in &self.segments {
            match s {
                Segment::Name(n) => out.push_str(&format!("['{n}']")),
                Segment::Index(i) => out.push_str(&format!("[{i}]")),
                Segment::Wildcard => out.push_str("[*]"),
                _ => return self.text.clone(),
            }
        }
        out
    }
}

fn length_of(value: &Value) -> Option<Value> {
    match value {
        Value::Array(items) => Some(Value::from(items.len())),
        Value::Object(map) => Some(Value::from(map.len())),
        Value::String(s) => Some(Value::from(s.chars().count())),
        _ => None,
    }
}

fn apply<'v>(segment: &Segment, value: &'v Value, out: &mut Vec<&'v Value>) {
    match segment {
        Segment::Name(name) => {
            if let Some(v) = value.as_object().and_then(|o| o.get(name)) {
                out.push(v);
            }
        }
        Segment::Index(i) => {
            if let Some(items) = value.as_array() {
                let idx = if *i < 0 { items.len() as i64 + i } else { *i };
                if let Some(v) = usize::try_from(idx).ok().and_then(|idx| items.get(idx)) {
                    out.push(v);
                }
            }
        }
        Segment::Wildcard => match value {
            Value::Array(items) => out.extend(items.iter()),
            Value::Object(map) => out.extend(map.values()),
            _ => {}
        },
        Segment::Descend(name) => descend(value, name.as_deref(), out),
        Segment::Union(parts) => {
            for part in parts {
                apply(part, value, out);
            }
        }
        Segment::Slice(start, end, step) => {
            if let Some(items) = value.as_array() {
                let len = items.len() as i64;
                let norm = |v: i64| if v < 0 { (len + v).max(0) } else { v.min(len) };
                let (s, e, st) = (norm(start.unwrap_or(0)), norm(end.unwrap_or(len)), step.unwrap_or(1).max(1));
                let mut i = s;
                while i < e {
                    out.push(&items[i as usize]);
                    i += st;
                }
            }
        }
        Segment::Filter(filter) => {
            let candidates: Vec<&Value> = match value {
                Value::Array(items) => items.iter().collect(),
                Value::Object(map) => map.values().collect(),
                _ => Vec::new(),
            };
            out.extend(candidates.into_iter().filter(|c| filter_matches(filter, c)));
        }
        Segment::Length => {}
    }
}

fn descend<'v>(value: &'v Value, name: Option<&str>, out: &mut Vec<&'v Value>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                if name.is_none_or(|n| n == k) {
                    out.push(v);
                }
            }
            for v in map.values() {
                descend(v, name, out);
            }
        }
        Value::Array(items) => {
            if name.is_none() {
                out.extend(items.iter());
            }
            for v in items {
                descend(v, name, out);
            }
        }
        _ => {}
    }
}

fn relative(segments: &[Segment], value: &Value) -> Option<Value> {
    let mut current = vec![value];
    for s in segments {
        if let Segment::Length = s {
            return current.first().and_then(|v| length_of(v));
        }
        let mut next = Vec::new();
        for v in current {
            apply(s, v, &mut next);
        }
        current = next;
    }
    current.into_iter().next().cloned()
}

fn filter_matches(filter: &Filter, item: &Value) -> bool {
    match filter {
        Filter::Exists(path) => relative(path, item).is_some(),
        Filter::Compare(path, op, literal) => {
            let Some(v) = relative(path, item) else { return false };
            compare_values(&v, op, literal)
        }
        Filter::And(a, b) => filter_matches(a, item) && filter_matches(b, item),
        Filter::Or(a, b) => filter_matches(a, item) || filter_matches(b, item),
        Filter::Not(a) => !filter_matches(a, item),
    }
}

fn compare_values(left: &Value, op: &str, right: &Value) -> bool {
    use std::cmp::Ordering;
    let ordering = match (left, right) {
        (Value::Number(a), Value::Number(b)) => a.as_f64().zip(b.as_f64()).and_then(|(a, b)| a.partial_cmp(&b)),
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (a, b) if a == b => Some(Ordering::Equal),
        _ => None,
    };
    match op {
        "==" => ordering == Some(Ordering::Equal),
        "!=" => ordering != Some(Ordering::Equal),
        "<" => ordering == Some(Ordering::Less),
        "<=" => matches!(ordering, Some(Ordering::Less | Ordering::Equal)),
        ">" => ordering == Some(Ordering::Greater),
        ">=" => matches!(ordering, Some(Ordering::Greater | Ordering::Equal)),
        _ => false,
    }
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn done(&self) -> bool {
        self.pos >= self.chars.len()
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<(), String> {
        if self.eat(c) { Ok(()) } else { Err(format!("expected '{c}' at position {}", self.pos)) }
    }

    fn skip_spaces(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn root(&mut self) -> Result<Root, String> {
        if !self.eat('$') {
            return Err("a path starts with '$'".into());
        }
        if self.eat('$') {
            return Ok(Root::Context);
        }
        let name = self.name();
        Ok(if name.is_empty() { Root::Input } else { Root::Variable(name) })
    }

    /// A dot-notation name: anything up to `.`, `[` or the end (Jayway is lenient).
    fn name(&mut self) -> String {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c == '.' || c == '[' || c == '(' {
                break;
            }
            self.pos += 1;
        }
        self.chars[start..self.pos].iter().collect()
    }

    fn segment(&mut self) -> Result<Segment, String> {
        if self.eat('.') {
            if self.eat('.') {
                if self.eat('*') {
                    return Ok(Segment::Descend(None));
                }
                let name = self.name();
                return if name.is_empty() { Err("expected a name after '..'".into()) } else { Ok(Segment::Descend(Some(name))) };
            }
            if self.eat('*') {
                return Ok(Segment::Wildcard);
            }
            let name = self.name();
            if name.is_empty() {
                return Err(format!("expected a name at position {}", self.pos));
            }
            if name == "length" && self.eat('(') {
                self.expect(')')?;
                return Ok(Segment::Length);
            }
            return Ok(Segment::Name(name));
        }
        if self.eat('[') {
            self.skip_spaces();
            let segment = self.bracket()?;
            self.skip_spaces();
            self.expect(']')?;
            return Ok(segment);
        }
        Err(format!("unexpected '{}' at position {}", self.peek().unwrap_or(' '), self.pos))
    }

    fn bracket(&mut self) -> Result<Segment, String> {
        if self.eat('*') {
            return Ok(Segment::Wildcard);
        }
        if self.eat('?') {
            self.expect('(')?;
            let filter = self.filter_or()?;
            self.skip_spaces();
            self.expect(')')?;
            return Ok(Segment::Filter(filter));
        }
        let mut parts = Vec::new();
        loop {
            self.skip_spaces();
            let part = match self.peek() {
                Some('\'') | Some('"') => Segment::Name(self.quoted()?),
                _ => self.index_or_slice()?,
            };
            parts.push(part);
            self.skip_spaces();
            if !self.eat(',') {
                break;
            }
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Segment::Union(parts) })
    }

    fn quoted(&mut self) -> Result<String, String> {
        let quote = self.peek().ok_or("expected a quote")?;
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err("unterminated quoted name".into()),
                // Only an escaped quote is an escape; any other backslash is literal (as Jayway reads it).
                Some('\\') if self.chars.get(self.pos + 1) == Some(&quote) => {
                    out.push(quote);
                    self.pos += 2;
                }
                Some(c) if c == quote => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn int(&mut self) -> Option<i64> {
        self.skip_spaces();
        let start = self.pos;
        if self.peek() == Some('-') {
            self.pos += 1;
        }
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.pos += 1;
        }
        let text: String = self.chars[start..self.pos].iter().collect();
        if text.is_empty() || text == "-" {
            self.pos = start;
            None
        } else {
            text.parse().ok()
        }
    }

    fn index_or_slice(&mut self) -> Result<Segment, String> {
        let first = self.int();
        self.skip_spaces();
        if self.eat(':') {
            let end = self.int();
            self.skip_spaces();
            let step = if self.eat(':') { self.int() } else { None };
            return Ok(Segment::Slice(first, end, step));
        }
        first.map(Segment::Index).ok_or_else(|| format!("expected an index, a quoted name or a slice at position {}", self.pos))
    }

    fn filter_or(&mut self) -> Result<Filter, String> {
        self.left_associative(['|', '|'], Self::filter_and, Filter::Or)
    }

    fn filter_and(&mut self) -> Result<Filter, String> {
        self.left_associative(['&', '&'], Self::filter_unary, Filter::And)
    }

    /// `operand (op operand)*`, grouped to the left.
    fn left_associative(
        &mut self,
        op: [char; 2],
        operand: fn(&mut Self) -> Result<Filter, String>,
        join: fn(Box<Filter>, Box<Filter>) -> Filter,
    ) -> Result<Filter, String> {
        let mut left = operand(self)?;
        loop {
            self.skip_spaces();
            if !self.chars[self.pos..].starts_with(&op) {
                return Ok(left);
            }
            self.pos += 2;
            left = join(Box::new(left), Box::new(operand(self)?));
        }
    }

    fn filter_unary(&mut self) -> Result<Filter, String> {
        self.skip_spaces();
        if self.eat('!') {
            return Ok(Filter::Not(Box::new(self.filter_unary()?)));
        }
        if self.eat('(') {
            let inner = self.filter_or()?;
            self.skip_spaces();
            self.expect(')')?;
            return Ok(inner);
        }
        if !self.eat('@') {
            return Err(format!("expected '@' in a filter at position {}", self.pos));
        }
        let mut segments = Vec::new();
        while matches!(self.peek(), Some('.') | Some('[')) {
            segments.push(self.segment_in_filter()?);
        }
        self.skip_spaces();
        for op in ["==", "!=", "<=", ">=", "<", ">"] {
            let op_chars: Vec<char> = op.chars().collect();
            if self.chars[self.pos..].starts_with(&op_chars) {
                self.pos += op_chars.len();
                self.skip_spaces();
                let literal = self.literal()?;
                return Ok(Filter::Compare(segments, op.to_string(), literal));
            }
        }
        Ok(Filter::Exists(segments))
    }

    fn segment_in_filter(&mut self) -> Result<Segment, String> {
        if self.eat('.') {
            let start = self.pos;
            while self.peek().is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-') {
                self.pos += 1;
            }
            return Ok(Segment::Name(self.chars[start..self.pos].iter().collect()));
        }
        self.segment()
    }

    fn literal(&mut self) -> Result<Value, String> {
        match self.peek() {
            Some('\'') | Some('"') => Ok(Value::String(self.quoted()?)),
            _ => {
                let start = self.pos;
                while self.peek().is_some_and(|c| !c.is_whitespace() && c != ')' && c != '&' && c != '|') {
                    self.pos += 1;
                }
                let text: String = self.chars[start..self.pos].iter().collect();
                serde_json::from_str(&text).map_err(|_| format!("{text:?} is not a literal"))
            }
        }
    }
}

/// Sets `value` at a reference path inside `target`, creating objects on the
/// way. Fails when the path crosses a value that is not an object.
pub fn set(target: &mut Value, path: &Path, value: Value) -> Result<(), String> {
    if path.segments.is_empty() {
        *target = value;
        return Ok(());
    }
    let mut current = target;
    let last = path.segments.len() - 1;
    for (i, segment) in path.segments.iter().enumerate() {
        match segment {
            Segment::Name(name) => {
                if current.is_null() {
                    *current = Value::Object(Map::new());
                }
                let Value::Object(map) = current else {
                    return Err(format!("cannot set field {name:?} in a value that is not an object"));
                };
                if i == last {
                    map.insert(name.clone(), value);
                    return Ok(());
                }
                current = map.entry(name.clone()).or_insert(Value::Object(Map::new()));
            }
            Segment::Index(idx) => {
                let Value::Array(items) = current else { return Err("cannot index a value that is not an array".into()) };
                let len = items.len() as i64;
                let at = if *idx < 0 { len + idx } else { *idx };
                let Some(slot) = usize::try_from(at).ok().and_then(|at| items.get_mut(at)) else {
                    return Err(format!("index {idx} is out of bounds"));
                };
                if i == last {
                    *slot = value;
                    return Ok(());
                }
                current = slot;
            }
            _ => return Err("a ResultPath must be a reference path (names and indexes only)".into()),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sel(path: &str, v: &Value) -> Option<Value> {
        Path::parse(path).unwrap().select(v)
    }

    #[test]
    fn paths_select_like_jayway() {
        let v = json!({"a": {"b": [1, 2, 3]}, "input-value": 0, "list": [{"x": 1}, {"x": 5}], "s": "abc"});
        // (path, expected)
        let cases = [
            ("$", Some(v.clone())),
            ("$.a.b[0]", Some(json!(1))),
            ("$.a.b[-1]", Some(json!(3))),
            ("$['a']['b'][1]", Some(json!(2))),
            ("$.input-value", Some(json!(0))),
            ("$.missing", None),
            ("$.a.b[*]", Some(json!([1, 2, 3]))),
            ("$.a.b[0:2]", Some(json!([1, 2]))),
            ("$.a.b[0,2]", Some(json!([1, 3]))),
            ("$.list[?(@.x > 2)]", Some(json!([{"x": 5}]))),
            ("$.list[*].x", Some(json!([1, 5]))),
            ("$..x", Some(json!([1, 5]))),
            ("$.a.b.length()", Some(json!(3))),
            ("$.missing[*]", Some(json!([]))),
        ];
        for (path, expected) in cases {
            assert_eq!(sel(path, &v), expected, "{path}");
        }
    }

    #[test]
    fn roots_and_bracketed_causes() {
        assert_eq!(Path::parse("$$.Execution.Input").unwrap().root, Root::Context);
        assert_eq!(Path::parse("$myVar.x").unwrap().root, Root::Variable("myVar".into()));
        assert_eq!(Path::parse("$.NoSuch.Path").unwrap().bracketed(), "$['NoSuch']['Path']");
        assert!(Path::parse("a.b").is_err());
    }

    #[test]
    fn set_creates_objects_and_refuses_non_objects() {
        let mut v = json!({"a": 1});
        set(&mut v, &Path::parse("$.b.c").unwrap(), json!(2)).unwrap();
        assert_eq!(v, json!({"a": 1, "b": {"c": 2}}));
        assert!(set(&mut v, &Path::parse("$.a.x").unwrap(), json!(3)).is_err());
    }
}
