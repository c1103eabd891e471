//! Choice rules: parsing and evaluation.

use chrono::DateTime;
use serde_json::Value;

use crate::model::QueryLanguage;

/// A comparison's data type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    /// `String*`.
    String,
    /// `Numeric*`.
    Numeric,
    /// `Boolean*`.
    Boolean,
    /// `Timestamp*`.
    Timestamp,
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cmp {
    /// `*Equals`.
    Eq,
    /// `*LessThan`.
    Lt,
    /// `*GreaterThan`.
    Gt,
    /// `*LessThanEquals`.
    Le,
    /// `*GreaterThanEquals`.
    Ge,
}

/// An operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A typed comparison.
    Compare(DataType, Cmp),
    /// `StringMatches` (`*` wildcard, `\*` and `\\` escapes).
    StringMatches,
    /// `IsNull`.
    IsNull,
    /// `IsPresent`.
    IsPresent,
    /// `IsNumeric`.
    IsNumeric,
    /// `IsString`.
    IsString,
    /// `IsBoolean`.
    IsBoolean,
    /// `IsTimestamp`.
    IsTimestamp,
}

/// The right-hand side.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// A literal.
    Literal(Value),
    /// A `*Path` operand.
    Path(String),
}

/// A condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Condition {
    /// All of them.
    And(Vec<Condition>),
    /// Any of them.
    Or(Vec<Condition>),
    /// Not it.
    Not(Box<Condition>),
    /// Variable op operand.
    Compare {
        /// The Variable path.
        variable: String,
        /// The operator.
        op: Op,
        /// The operand.
        operand: Operand,
    },
    /// A JSONata `Condition`.
    Jsonata(Value),
}

/// A top-level rule (or a nested one, without `next`).
#[derive(Debug, Clone, PartialEq)]
pub struct ChoiceRule {
    /// Where to go when it matches (top-level rules only).
    pub next: Option<String>,
    /// Variables to assign when it matches.
    pub assign: Option<Value>,
    /// JSONata Output when it matches.
    pub output: Option<Value>,
    /// The condition.
    pub condition: Condition,
}

fn operator(name: &str) -> Option<(Op, bool)> {
    let (base, is_path) = match name.strip_suffix("Path") {
        Some(b) => (b, true),
        None => (name, false),
    };
    let parse = |n: &str| -> Option<Op> {
        let typed = |prefix: &str, t: DataType| -> Option<Op> {
            let rest = n.strip_prefix(prefix)?;
            Some(Op::Compare(
                t,
                match rest {
                    "Equals" => Cmp::Eq,
                    "LessThan" => Cmp::Lt,
                    "GreaterThan" => Cmp::Gt,
                    "LessThanEquals" => Cmp::Le,
                    "GreaterThanEquals" => Cmp::Ge,
                    _ => return None,
                },
            ))
        };
        typed("String", DataType::String)
            .or_else(|| typed("Numeric", DataType::Numeric))
            .or_else(|| typed("Boolean", DataType::Boolean))
            .or_else(|| typed("Timestamp", DataType::Timestamp))
            .or(match n {
                "StringMatches" => Some(Op::StringMatches),
                "IsNull" => Some(Op::IsNull),
                "IsPresent" => Some(Op::IsPresent),
                "IsNumeric" => Some(Op::IsNumeric),
                "IsString" => Some(Op::IsString),
                "IsBoolean" => Some(Op::IsBoolean),
                "IsTimestamp" => Some(Op::IsTimestamp),
                _ => None,
            })
    };
    if is_path
        && let Some(op) = parse(base)
        && matches!(op, Op::Compare(..))
    {
        return Some((op, true));
    }
    parse(name).map(|op| (op, false))
}

/// Parses a rule; `top` rules need `Next`.
pub fn parse_rule(value: &Value, top: bool, language: QueryLanguage) -> Result<ChoiceRule, String> {
    let obj = value.as_object().ok_or("a choice rule must be an object")?;
    let next = obj.get("Next").and_then(Value::as_str).map(str::to_string);
    if top && next.is_none() {
        return Err("a top-level choice rule needs Next".into());
    }
    if !top && next.is_some() {
        return Err("a nested choice rule must not have Next".into());
    }
    let condition = parse_condition(obj, language)?;
    Ok(ChoiceRule { next, assign: obj.get("Assign").cloned(), output: obj.get("Output").cloned(), condition })
}

fn parse_condition(obj: &serde_json::Map<String, Value>, language: QueryLanguage) -> Result<Condition, String> {
    if language == QueryLanguage::JsonAta {
        return obj.get("Condition").cloned().map(Condition::Jsonata).ok_or_else(|| "a JSONata choice rule needs Condition".to_string());
    }
    let nested = |v: &Value| -> Result<Condition, String> {
        let o = v.as_object().ok_or("a nested rule must be an object")?;
        if o.contains_key("Next") {
            return Err("a nested choice rule must not have Next".into());
        }
        parse_condition(o, language)
    };
    if let Some(list) = obj.get("And") {
        return Ok(Condition::And(list.as_array().ok_or("And takes a list")?.iter().map(nested).collect::<Result<_, _>>()?));
    }
    if let Some(list) = obj.get("Or") {
        return Ok(Condition::Or(list.as_array().ok_or("Or takes a list")?.iter().map(nested).collect::<Result<_, _>>()?));
    }
    if let Some(inner) = obj.get("Not") {
        return Ok(Condition::Not(Box::new(nested(inner)?)));
    }
    let variable = obj.get("Variable").and_then(Value::as_str).ok_or("a comparison needs Variable")?.to_string();
    let mut found = None;
    for (key, v) in obj {
        if matches!(key.as_str(), "Variable" | "Next" | "Comment" | "Assign" | "Output") {
            continue;
        }
        let (op, is_path) = operator(key).ok_or_else(|| format!("{key:?} is not a comparison operator"))?;
        if found.is_some() {
            return Err("a comparison takes exactly one operator".into());
        }
        let operand = if is_path {
            Operand::Path(v.as_str().ok_or_else(|| format!("{key} takes a path string"))?.to_string())
        } else {
            let ok = match op {
                Op::Compare(DataType::String, _) | Op::Compare(DataType::Timestamp, _) | Op::StringMatches => v.is_string(),
                Op::Compare(DataType::Numeric, _) => v.is_number(),
                Op::Compare(DataType::Boolean, _) => v.is_boolean(),
                _ => v.is_boolean(),
            };
            if !ok {
                return Err(format!("{key} does not take {v}"));
            }
            Operand::Literal(v.clone())
        };
        found = Some((op, operand));
    }
    let (op, operand) = found.ok_or("a comparison needs an operator")?;
    Ok(Condition::Compare { variable, op, operand })
}

/// Parses an ISO-8601 extended offset date-time (what AWS accepts as a timestamp).
pub fn parse_timestamp(text: &str) -> Option<DateTime<chrono::FixedOffset>> {
    if !text.contains('T') {
        return None;
    }
    DateTime::parse_from_rfc3339(text).ok()
}

/// `StringMatches`: `*` matches any run; `\*` and `\\` are literal.
pub fn string_matches(text: &str, pattern: &str) -> bool {
    #[derive(PartialEq)]
    enum Tok {
        Star,
        Char(char),
    }
    let mut toks = Vec::new();
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => toks.push(Tok::Char(chars.next().unwrap_or('\\'))),
            '*' => toks.push(Tok::Star),
            c => toks.push(Tok::Char(c)),
        }
    }
    let text: Vec<char> = text.chars().collect();
    // Classic wildcard matching with backtracking over the last star.
    let (mut t, mut p) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while t < text.len() {
        if p < toks.len() && toks[p] == Tok::Char(text[t]) {
            t += 1;
            p += 1;
        } else if p < toks.len() && toks[p] == Tok::Star {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    while p < toks.len() && toks[p] == Tok::Star {
        p += 1;
    }
    p == toks.len()
}

/// Evaluates a comparison given the variable's value (`None`: absent) and the operand's.
pub fn compare(op: Op, value: Option<&Value>, operand: &Value) -> bool {
    let Some(value) = value else { return matches!(op, Op::IsPresent) && operand == &Value::Bool(false) };
    let want = operand.as_bool().unwrap_or(true);
    match op {
        Op::IsPresent => want,
        Op::IsNull => value.is_null() == want,
        Op::IsNumeric => value.is_number() == want,
        Op::IsString => value.is_string() == want,
        Op::IsBoolean => value.is_boolean() == want,
        Op::IsTimestamp => value.as_str().and_then(parse_timestamp).is_some() == want,
        Op::StringMatches => matches!((value.as_str(), operand.as_str()), (Some(t), Some(p)) if string_matches(t, p)),
        Op::Compare(t, cmp) => {
            use std::cmp::Ordering;
            let ord = match t {
                DataType::String => match (value.as_str(), operand.as_str()) {
                    (Some(a), Some(b)) => Some(a.cmp(b)),
                    _ => None,
                },
                DataType::Numeric => match (value.as_f64(), operand.as_f64()) {
                    (Some(a), Some(b)) if value.is_number() && operand.is_number() => a.partial_cmp(&b),
                    _ => None,
                },
                DataType::Boolean => match (value.as_bool(), operand.as_bool()) {
                    (Some(a), Some(b)) => Some(a.cmp(&b)),
                    _ => None,
                },
                DataType::Timestamp => match (value.as_str().and_then(parse_timestamp), operand.as_str().and_then(parse_timestamp)) {
                    (Some(a), Some(b)) => Some(a.cmp(&b)),
                    _ => None,
                },
            };
            match (ord, cmp) {
                (None, _) => false,
                (Some(o), Cmp::Eq) => o == Ordering::Equal,
                (Some(o), Cmp::Lt) => o == Ordering::Less,
                (Some(o), Cmp::Gt) => o == Ordering::Greater,
                (Some(o), Cmp::Le) => o != Ordering::Greater,
                (Some(o), Cmp::Ge) => o != Ordering::Less,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn string_matches_handles_wildcards_and_escapes() {
        let cases = [
            ("log-2024.txt", "log-*.txt", true),
            ("log.txt", "log-*.txt", false),
            ("a*b", "a\\*b", true),
            ("axb", "a\\*b", false),
            ("anything", "*", true),
            ("", "*", true),
            ("abc", "a*c*", true),
        ];
        for (text, pattern, expected) in cases {
            assert_eq!(string_matches(text, pattern), expected, "{text} ~ {pattern}");
        }
    }

    #[test]
    fn comparisons_are_typed() {
        assert!(compare(Op::Compare(DataType::Numeric, Cmp::Eq), Some(&json!(1)), &json!(1.0)));
        assert!(!compare(Op::Compare(DataType::Numeric, Cmp::Eq), Some(&json!("1")), &json!(1)));
        assert!(compare(Op::Compare(DataType::Timestamp, Cmp::Lt), Some(&json!("2016-03-14T01:59:00Z")), &json!("2016-03-14T02:00:00+00:00")));
        assert!(compare(Op::IsPresent, None, &json!(false)));
        assert!(!compare(Op::IsNull, None, &json!(true)));
        assert!(compare(Op::IsTimestamp, Some(&json!("2016-03-14T01:59:00Z")), &json!(true)));
        assert!(!compare(Op::IsTimestamp, Some(&json!("2016-03-14 01:59:00")), &json!(true)));
    }

    #[test]
    fn operators_parse_with_their_path_forms() {
        assert_eq!(operator("NumericEqualsPath"), Some((Op::Compare(DataType::Numeric, Cmp::Eq), true)));
        assert_eq!(operator("TimestampLessThanEquals"), Some((Op::Compare(DataType::Timestamp, Cmp::Le), false)));
        assert_eq!(operator("IsPresent"), Some((Op::IsPresent, false)));
        assert_eq!(operator("Bogus"), None);
    }
}
