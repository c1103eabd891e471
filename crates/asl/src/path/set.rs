//! Writing a value at a path (ResultPath).

use serde_json::{Map, Value};

use super::types::{Path, Segment};

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
