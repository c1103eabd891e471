//! JSONPath as Step Functions reads it (the Jayway dialect), and reference
//! paths for ResultPath.
//!
//! Hand-written because the JSONPath crates follow RFC 9535, which AWS does
//! not: AWS accepts names like `$.input-value`, returns a plain value for a
//! definite path and an array for an indefinite one (wildcards, slices,
//! filters, unions, deep scans), and knows `.length()`.
//!
//! Layers: `types`, `parse`, `select`, `set`.

mod parse;
mod select;
mod set;
mod types;

pub use set::set;
pub use types::{Filter, Path, Root, Segment};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

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
