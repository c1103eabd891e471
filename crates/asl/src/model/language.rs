//! The query language a state's fields are written in.

/// `JSONPath` (the default) or `JSONata`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryLanguage {
    /// Paths, `.$` keys and intrinsics.
    JsonPath,
    /// JSONata expressions in `{% %}`.
    JsonAta,
}
