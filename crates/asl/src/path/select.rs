//! Evaluating a path against a value.

use serde_json::Value;

use super::types::{Filter, Path, Segment};

impl Path {
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
