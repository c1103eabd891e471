//! Intrinsic functions (`States.Format(...)`): parsed once into an AST by a
//! recursive-descent parser, arity checked at parse time, then evaluated.

use base64::Engine;
use serde_json::{Map, Value};

use crate::path::Path;

/// An argument or call.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// A literal: `'text'`, `42`, `true`, `null`.
    Literal(Value),
    /// `$.x`, `$$.Execution.Id`, `$var`.
    Path(Path),
    /// `States.Name(args...)`.
    Call(Func, Vec<Expr>),
}

/// The intrinsic functions AWS documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// `States.Format('a {} b', x)`.
    Format,
    /// `States.StringToJson('{"a":1}')`.
    StringToJson,
    /// `States.JsonToString($.x)`.
    JsonToString,
    /// `States.Array(1, 2)`.
    Array,
    /// `States.ArrayPartition([1,2,3], 2)` → `[[1,2],[3]]`.
    ArrayPartition,
    /// `States.ArrayContains([1,2], 2)` → `true`.
    ArrayContains,
    /// `States.ArrayRange(1, 9, 2)` → `[1,3,5,7,9]`.
    ArrayRange,
    /// `States.ArrayGetItem([1,2], 1)` → `2`.
    ArrayGetItem,
    /// `States.ArrayLength([1,2])` → `2`.
    ArrayLength,
    /// `States.ArrayUnique([1,1])` → `[1]`.
    ArrayUnique,
    /// `States.Base64Encode('a')`.
    Base64Encode,
    /// `States.Base64Decode('YQ==')`.
    Base64Decode,
    /// `States.Hash('data', 'SHA-256')`.
    Hash,
    /// `States.JsonMerge(a, b, false)`.
    JsonMerge,
    /// `States.MathRandom(1, 10)`.
    MathRandom,
    /// `States.MathAdd(1, 2)`.
    MathAdd,
    /// `States.StringSplit('a,b', ',')`.
    StringSplit,
    /// `States.UUID()`.
    Uuid,
}

impl Func {
    fn from_name(name: &str) -> Option<Func> {
        Some(match name {
            "States.Format" => Func::Format,
            "States.StringToJson" => Func::StringToJson,
            "States.JsonToString" => Func::JsonToString,
            "States.Array" => Func::Array,
            "States.ArrayPartition" => Func::ArrayPartition,
            "States.ArrayContains" => Func::ArrayContains,
            "States.ArrayRange" => Func::ArrayRange,
            "States.ArrayGetItem" => Func::ArrayGetItem,
            "States.ArrayLength" => Func::ArrayLength,
            "States.ArrayUnique" => Func::ArrayUnique,
            "States.Base64Encode" => Func::Base64Encode,
            "States.Base64Decode" => Func::Base64Decode,
            "States.Hash" => Func::Hash,
            "States.JsonMerge" => Func::JsonMerge,
            "States.MathRandom" => Func::MathRandom,
            "States.MathAdd" => Func::MathAdd,
            "States.StringSplit" => Func::StringSplit,
            "States.UUID" => Func::Uuid,
            _ => return None,
        })
    }

    /// Allowed argument counts.
    fn arity(self) -> (usize, usize) {
        match self {
            Func::Format => (1, usize::MAX),
            Func::Array => (0, usize::MAX),
            Func::Uuid => (0, 0),
            Func::StringToJson | Func::JsonToString | Func::ArrayLength | Func::ArrayUnique | Func::Base64Encode | Func::Base64Decode => (1, 1),
            Func::ArrayPartition | Func::ArrayContains | Func::ArrayGetItem | Func::Hash | Func::MathAdd | Func::StringSplit => (2, 2),
            Func::MathRandom => (2, 3),
            Func::ArrayRange | Func::JsonMerge => (3, 3),
        }
    }
}

/// Whether a string is an intrinsic call (as opposed to a path).
pub fn looks_like_call(text: &str) -> bool {
    text.trim_start().starts_with("States.")
}

/// Parses one call, e.g. `States.Format('{}', $.a)`.
pub fn parse(text: &str) -> Result<Expr, String> {
    let mut p = Parser { chars: text.chars().collect(), pos: 0 };
    p.spaces();
    let expr = p.call()?;
    p.spaces();
    if p.pos != p.chars.len() {
        return Err(format!("unexpected text after the call at position {}", p.pos));
    }
    Ok(expr)
}

struct Parser {
    chars: Vec<char>,
    pos: usize,
}

impl Parser {
    fn spaces(&mut self) {
        while self.chars.get(self.pos).is_some_and(|c| c.is_whitespace()) {
            self.pos += 1;
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn call(&mut self) -> Result<Expr, String> {
        let start = self.pos;
        while self.peek().is_some_and(|c| c.is_ascii_alphanumeric() || c == '.') {
            self.pos += 1;
        }
        let name: String = self.chars[start..self.pos].iter().collect();
        let func = Func::from_name(&name).ok_or_else(|| format!("unknown intrinsic function {name:?}"))?;
        self.spaces();
        if self.peek() != Some('(') {
            return Err(format!("expected '(' after {name}"));
        }
        self.pos += 1;
        let mut args = Vec::new();
        self.spaces();
        if self.peek() == Some(')') {
            self.pos += 1;
        } else {
            loop {
                self.spaces();
                args.push(self.arg()?);
                self.spaces();
                match self.peek() {
                    Some(',') => self.pos += 1,
                    Some(')') => {
                        self.pos += 1;
                        break;
                    }
                    _ => return Err(format!("expected ',' or ')' in {name} at position {}", self.pos)),
                }
            }
        }
        let (min, max) = func.arity();
        if args.len() < min || args.len() > max {
            let expected = if min == max {
                min.to_string()
            } else if max == usize::MAX {
                format!("at least {min}")
            } else {
                format!("{min} to {max}")
            };
            return Err(format!("{name} takes {expected} argument(s), got {}", args.len()));
        }
        Ok(Expr::Call(func, args))
    }

    fn arg(&mut self) -> Result<Expr, String> {
        match self.peek() {
            Some('\'') => Ok(Expr::Literal(Value::String(self.string()?))),
            Some('$') => {
                let start = self.pos;
                let mut depth = 0i32;
                let mut quote: Option<char> = None;
                while let Some(c) = self.peek() {
                    match (quote, c) {
                        (Some(q), c) if c == q => quote = None,
                        (Some(_), _) => {}
                        (None, '\'' | '"') => quote = Some(c),
                        (None, '[' | '(') => depth += 1,
                        (None, ']') => depth -= 1,
                        (None, ')') if depth == 0 => break,
                        (None, ')') => depth -= 1,
                        (None, ',') if depth == 0 => break,
                        _ => {}
                    }
                    self.pos += 1;
                }
                let text: String = self.chars[start..self.pos].iter().collect();
                Path::parse(text.trim()).map(Expr::Path)
            }
            Some(c) if c.is_ascii_alphabetic() && self.chars[self.pos..].starts_with(&['S', 't', 'a', 't', 'e', 's', '.']) => self.call(),
            _ => {
                let start = self.pos;
                while self.peek().is_some_and(|c| c != ',' && c != ')') {
                    self.pos += 1;
                }
                let text: String = self.chars[start..self.pos].iter().collect();
                let text = text.trim();
                serde_json::from_str::<Value>(text)
                    .ok()
                    .filter(|v| !v.is_object() && !v.is_array() && !v.is_string())
                    .map(Expr::Literal)
                    .ok_or_else(|| format!("{text:?} is not a valid argument"))
            }
        }
    }

    /// A single-quoted string; `\'`, `\{`, `\}` and `\\` are escapes.
    fn string(&mut self) -> Result<String, String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => return Err("unterminated string literal".into()),
                Some('\\') => {
                    self.pos += 1;
                    match self.peek() {
                        Some(c @ ('\'' | '\\')) => out.push(c),
                        // Format's own escapes survive to Format.
                        Some(c @ ('{' | '}')) => {
                            out.push('\\');
                            out.push(c);
                        }
                        Some(c) => {
                            out.push('\\');
                            out.push(c);
                        }
                        None => return Err("unterminated string literal".into()),
                    }
                    self.pos += 1;
                }
                Some('\'') => {
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
}

/// What evaluation needs from the engine: resolving paths.
pub trait Resolver {
    /// The value at `path`, or a States.Runtime cause.
    fn resolve(&self, path: &Path) -> Result<Value, String>;
}

/// Evaluates an expression; the error is a States.IntrinsicFailure cause.
pub fn eval(expr: &Expr, resolver: &dyn Resolver) -> Result<Value, EvalError> {
    match expr {
        Expr::Literal(v) => Ok(v.clone()),
        Expr::Path(p) => resolver.resolve(p).map_err(EvalError::Runtime),
        Expr::Call(func, args) => {
            let values = args.iter().map(|a| eval(a, resolver)).collect::<Result<Vec<_>, _>>()?;
            call(*func, values).map_err(EvalError::Intrinsic)
        }
    }
}

/// Why an intrinsic failed.
#[derive(Debug, Clone, PartialEq)]
pub enum EvalError {
    /// A path could not be resolved (States.Runtime).
    Runtime(String),
    /// The function rejected its arguments (States.IntrinsicFailure).
    Intrinsic(String),
}

/// Java's `Math.round`: half rounds up, towards positive infinity.
fn java_round(x: f64) -> i64 {
    (x + 0.5).floor() as i64
}

fn int_arg(v: &Value, what: &str) -> Result<i64, String> {
    v.as_i64().or_else(|| v.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)).ok_or_else(|| format!("{what} must be an integer, got {v}"))
}

fn str_arg<'a>(v: &'a Value, what: &str) -> Result<&'a str, String> {
    v.as_str().ok_or_else(|| format!("{what} must be a string, got {v}"))
}

fn array_arg<'a>(v: &'a Value, what: &str) -> Result<&'a Vec<Value>, String> {
    v.as_array().ok_or_else(|| format!("{what} must be an array, got {v}"))
}

/// Renders a value the way Java's `toString` does inside States.Format.
pub fn java_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".into(),
        Value::Array(items) => format!("[{}]", items.iter().map(java_string).collect::<Vec<_>>().join(", ")),
        Value::Object(map) => format!("{{{}}}", map.iter().map(|(k, v)| format!("{k}={}", java_string(v))).collect::<Vec<_>>().join(", ")),
        other => other.to_string(),
    }
}

fn call(func: Func, args: Vec<Value>) -> Result<Value, String> {
    match func {
        Func::Format => {
            let template = str_arg(&args[0], "the first argument of States.Format")?;
            let mut out = String::new();
            let mut rest = args[1..].iter();
            let mut chars = template.chars().peekable();
            let mut used = 0;
            while let Some(c) = chars.next() {
                match c {
                    '\\' => {
                        if let Some(next) = chars.next() {
                            out.push(next);
                        }
                    }
                    '{' if chars.peek() == Some(&'}') => {
                        chars.next();
                        let arg = rest.next().ok_or("States.Format has more {} placeholders than arguments")?;
                        out.push_str(&java_string(arg));
                        used += 1;
                    }
                    c => out.push(c),
                }
            }
            if used != args.len() - 1 {
                return Err(format!("States.Format has {used} placeholder(s) but {} argument(s)", args.len() - 1));
            }
            Ok(Value::String(out))
        }
        Func::StringToJson => {
            let text = str_arg(&args[0], "States.StringToJson's argument")?;
            if text.trim().is_empty() {
                return Ok(Value::Null);
            }
            serde_json::from_str(text).map_err(|e| format!("States.StringToJson could not parse {text:?}: {e}"))
        }
        Func::JsonToString => Ok(Value::String(serde_json::to_string(&args[0]).unwrap_or_default())),
        Func::Array => Ok(Value::Array(args)),
        Func::ArrayPartition => {
            let items = array_arg(&args[0], "States.ArrayPartition's first argument")?;
            let size = int_arg(&args[1], "States.ArrayPartition's chunk size")?;
            if size <= 0 {
                return Err(format!("States.ArrayPartition's chunk size must be positive, got {size}"));
            }
            Ok(Value::Array(items.chunks(size as usize).map(|c| Value::Array(c.to_vec())).collect()))
        }
        Func::ArrayContains => Ok(Value::Bool(array_arg(&args[0], "States.ArrayContains's first argument")?.contains(&args[1]))),
        Func::ArrayRange => {
            let (start, end, step) = (int_arg(&args[0], "start")?, int_arg(&args[1], "end")?, int_arg(&args[2], "step")?);
            if step == 0 {
                return Err("States.ArrayRange's step must not be 0".into());
            }
            let mut out = Vec::new();
            let mut i = start;
            while (step > 0 && i <= end) || (step < 0 && i >= end) {
                out.push(Value::from(i));
                if out.len() > 1000 {
                    return Err("States.ArrayRange may produce at most 1000 items".into());
                }
                i += step;
            }
            Ok(Value::Array(out))
        }
        Func::ArrayGetItem => {
            let items = array_arg(&args[0], "States.ArrayGetItem's first argument")?;
            let index = int_arg(&args[1], "States.ArrayGetItem's index")?;
            usize::try_from(index)
                .ok()
                .and_then(|i| items.get(i))
                .cloned()
                .ok_or_else(|| format!("States.ArrayGetItem's index {index} is out of bounds"))
        }
        Func::ArrayLength => Ok(Value::from(array_arg(&args[0], "States.ArrayLength's argument")?.len())),
        Func::ArrayUnique => {
            let mut out: Vec<Value> = Vec::new();
            for v in array_arg(&args[0], "States.ArrayUnique's argument")? {
                if !out.contains(v) {
                    out.push(v.clone());
                }
            }
            Ok(Value::Array(out))
        }
        Func::Base64Encode => {
            Ok(Value::String(base64::engine::general_purpose::STANDARD.encode(str_arg(&args[0], "States.Base64Encode's argument")?)))
        }
        Func::Base64Decode => {
            let bytes = base64::engine::general_purpose::STANDARD
                .decode(str_arg(&args[0], "States.Base64Decode's argument")?)
                .map_err(|e| format!("States.Base64Decode: {e}"))?;
            String::from_utf8(bytes).map(Value::String).map_err(|e| format!("States.Base64Decode: {e}"))
        }
        Func::Hash => {
            let data = match &args[0] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let algorithm = str_arg(&args[1], "States.Hash's algorithm")?;
            let hex = hash(&data, algorithm)?;
            Ok(Value::String(hex))
        }
        Func::JsonMerge => {
            let (Value::Object(a), Value::Object(b)) = (&args[0], &args[1]) else {
                return Err("States.JsonMerge merges two objects".into());
            };
            if args[2] != Value::Bool(false) {
                return Err("States.JsonMerge supports only shallow merges (false as its third argument)".into());
            }
            let mut merged: Map<String, Value> = a.clone();
            merged.extend(b.clone());
            Ok(Value::Object(merged))
        }
        Func::MathRandom => {
            let (start, end) = (int_arg(&args[0], "start")?, int_arg(&args[1], "end")?);
            if start >= end {
                return Err(format!("States.MathRandom's start ({start}) must be below its end ({end})"));
            }
            use rand::{Rng, SeedableRng};
            let mut rng = match args.get(2) {
                Some(seed) => rand::rngs::StdRng::seed_from_u64(int_arg(seed, "seed")? as u64),
                None => rand::rngs::StdRng::from_os_rng(),
            };
            Ok(Value::from(rng.random_range(start..end)))
        }
        Func::MathAdd => {
            let number = |v: &Value| v.as_f64().map(java_round).ok_or_else(|| format!("States.MathAdd adds numbers, got {v}"));
            Ok(Value::from(number(&args[0])? + number(&args[1])?))
        }
        Func::StringSplit => {
            let text = str_arg(&args[0], "States.StringSplit's first argument")?;
            let delimiters: Vec<char> = str_arg(&args[1], "States.StringSplit's delimiter")?.chars().collect();
            Ok(Value::Array(text.split(|c| delimiters.contains(&c)).filter(|s| !s.is_empty()).map(|s| Value::String(s.to_string())).collect()))
        }
        Func::Uuid => Ok(Value::String(uuid::Uuid::new_v4().to_string())),
    }
}

/// Hex digest of `data` with MD5, SHA-1, SHA-256, SHA-384 or SHA-512.
pub fn hash(data: &str, algorithm: &str) -> Result<String, String> {
    use sha2::Digest;
    Ok(match algorithm {
        "MD5" => hex(&md5::Md5::digest(data.as_bytes())),
        "SHA-1" => hex(&sha1::Sha1::digest(data.as_bytes())),
        "SHA-256" => hex(&sha2::Sha256::digest(data.as_bytes())),
        "SHA-384" => hex(&sha2::Sha384::digest(data.as_bytes())),
        "SHA-512" => hex(&sha2::Sha512::digest(data.as_bytes())),
        other => return Err(format!("States.Hash: {other:?} is not one of MD5, SHA-1, SHA-256, SHA-384, SHA-512")),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    struct Input(Value);
    impl Resolver for Input {
        fn resolve(&self, path: &Path) -> Result<Value, String> {
            path.select(&self.0).ok_or_else(|| format!("no {}", path.text))
        }
    }

    fn give(call: &str, input: Value) -> Value {
        eval(&parse(call).unwrap(), &Input(input)).unwrap()
    }

    #[test]
    fn intrinsics_yield_what_aws_yields() {
        let cases = [
            ("States.Format('a {} b {}', $.x, $.y)", json!({"x": 1, "y": {"k": [1, 2]}}), json!("a 1 b {k=[1, 2]}")),
            ("States.Format('esc \\{\\} {}', 'v')", json!({}), json!("esc {} v")),
            ("States.StringToJson('{\"a\": 1}')", json!({}), json!({"a": 1})),
            ("States.JsonToString($.x)", json!({"x": {"a": [1]}}), json!("{\"a\":[1]}")),
            ("States.Array(1, 'two', true, null)", json!({}), json!([1, "two", true, null])),
            ("States.ArrayPartition(States.Array(1,2,3), 2)", json!({}), json!([[1, 2], [3]])),
            ("States.ArrayRange(1, 9, 2)", json!({}), json!([1, 3, 5, 7, 9])),
            ("States.ArrayGetItem(States.StringSplit('a-b-c', '-'), 2)", json!({}), json!("c")),
            ("States.ArrayUnique(States.Array(1, 1, 2))", json!({}), json!([1, 2])),
            ("States.Base64Encode('Data to encode')", json!({}), json!("RGF0YSB0byBlbmNvZGU=")),
            ("States.Hash('input data', 'MD5')", json!({}), json!("812f45842bc6d66ee14572ce20db8e86")),
            ("States.MathAdd(-2.5, 0)", json!({}), json!(-2)),
            ("States.MathAdd(1.49, 1.5)", json!({}), json!(3)),
            ("States.StringSplit(', , ,', ',')", json!({}), json!([" ", " "])),
            ("States.JsonMerge($.a, $.b, false)", json!({"a": {"x": 1, "y": 1}, "b": {"y": 2}}), json!({"x": 1, "y": 2})),
        ];
        for (call, input, expected) in cases {
            assert_eq!(give(call, input), expected, "{call}");
        }
        assert_eq!(give("States.UUID()", json!({})).as_str().map(str::len), Some(36));
    }

    #[test]
    fn bad_calls_fail_at_parse_time() {
        for bad in ["States.Nope(1)", "States.UUID(1)", "States.MathAdd(1)", "States.Format('x'", "States.Array(1) trailing"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
