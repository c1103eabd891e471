//! Parsing path text into a [`Path`].

use serde_json::Value;

use super::types::{Filter, Path, Root, Segment};

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
