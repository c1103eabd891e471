//! Draws a definition as a Mermaid flowchart or a Graphviz digraph: one
//! node per state (in file order), one edge per transition. Choice rules
//! are labelled with their condition, Catch edges with the errors they match.
//! Map and Parallel states are drawn as one node each.

use serde_json::Value;

/// One edge: from, to, label, whether it is an error path.
type Edge = (String, String, String, bool);

/// Output formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A Mermaid `flowchart TD`.
    Mermaid,
    /// A Graphviz `digraph`.
    Dot,
}

fn condition(rule: &Value) -> String {
    let variable = rule["Variable"].as_str().unwrap_or("").trim_start_matches("$.");
    for (key, value) in rule.as_object().into_iter().flatten() {
        let op = match key.as_str() {
            "StringEquals" | "NumericEquals" | "BooleanEquals" => "==",
            "NumericLessThan" | "StringLessThan" => "<",
            "NumericGreaterThan" | "StringGreaterThan" => ">",
            "NumericLessThanEquals" => "<=",
            "NumericGreaterThanEquals" => ">=",
            "IsPresent" => "present",
            "IsString" => "is string",
            "And" | "Or" | "Not" => return key.to_lowercase(),
            _ => continue,
        };
        return format!("{variable} {op} {value}").trim().replace('"', "'");
    }
    rule["Condition"].as_str().map(|c| c.replace('"', "'")).unwrap_or_else(|| "rule".into())
}

fn edges(name: &str, state: &Value) -> Vec<Edge> {
    let mut out = Vec::new();
    let mut push = |to: &Value, label: String, error: bool| {
        if let Some(to) = to.as_str() {
            out.push((name.to_string(), to.to_string(), label, error));
        }
    };
    for rule in state["Choices"].as_array().into_iter().flatten() {
        push(&rule["Next"], condition(rule), false);
    }
    push(&state["Default"], if state["Choices"].is_array() { "otherwise".into() } else { String::new() }, false);
    push(&state["Next"], String::new(), false);
    for catcher in state["Catch"].as_array().into_iter().flatten() {
        let errors: Vec<&str> = catcher["ErrorEquals"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        push(&catcher["Next"], errors.join(", "), true);
    }
    out
}

fn node_id(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '_' }).collect()
}

/// Draws `definition` (a parsed ASL document).
pub fn draw(definition: &Value, format: Format) -> String {
    let states: Vec<(&String, &Value)> = definition["States"].as_object().map(|m| m.iter().collect()).unwrap_or_default();
    let start = definition["StartAt"].as_str().unwrap_or_default();
    let all_edges: Vec<Edge> = states.iter().flat_map(|(name, state)| edges(name, state)).collect();
    let ends: Vec<&str> = states.iter().filter(|(_, s)| s["End"] == true || s["Type"] == "Succeed").map(|(n, _)| n.as_str()).collect();
    let mut out = String::new();
    match format {
        Format::Mermaid => {
            out.push_str("flowchart TD\n");
            out.push_str(&format!("    start_(( )) --> {}\n", node_id(start)));
            for (name, state) in &states {
                let id = node_id(name);
                let shape = match state["Type"].as_str().unwrap_or_default() {
                    "Choice" => format!("{{{name}}}"),
                    "Wait" => format!("([{name}])"),
                    "Fail" => format!("[/{name}/]"),
                    "Succeed" => format!("(({name}))"),
                    "Map" | "Parallel" => format!("[[{name}]]"),
                    _ => format!("[{name}]"),
                };
                out.push_str(&format!("    {id}{shape}\n"));
            }
            for (from, to, label, error) in &all_edges {
                let arrow = if *error { "-.->" } else { "-->" };
                let label = if label.is_empty() { String::new() } else { format!("|\"{label}\"|") };
                out.push_str(&format!("    {} {arrow}{label} {}\n", node_id(from), node_id(to)));
            }
            for end in ends {
                out.push_str(&format!("    {} --> end_(( ))\n", node_id(end)));
            }
        }
        Format::Dot => {
            out.push_str("digraph workflow {\n    rankdir=TB;\n    node [shape=box, fontname=\"Helvetica\"];\n");
            out.push_str(&format!("    start_ [shape=circle, label=\"\"];\n    start_ -> {};\n", node_id(start)));
            for (name, state) in &states {
                let shape = match state["Type"].as_str().unwrap_or_default() {
                    "Choice" => "diamond",
                    "Wait" => "ellipse",
                    "Fail" => "octagon",
                    "Succeed" => "doublecircle",
                    _ => "box",
                };
                out.push_str(&format!("    {} [label=\"{name}\", shape={shape}];\n", node_id(name)));
            }
            for (from, to, label, error) in &all_edges {
                let style = if *error { ", style=dashed" } else { "" };
                out.push_str(&format!("    {} -> {} [label=\"{label}\"{style}];\n", node_id(from), node_id(to)));
            }
            if !ends.is_empty() {
                out.push_str("    end_ [shape=doublecircle, label=\"\"];\n");
            }
            for end in ends {
                out.push_str(&format!("    {} -> end_;\n", node_id(end)));
            }
            out.push_str("}\n");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_transition_becomes_an_edge() {
        let definition = json!({"StartAt": "A", "States": {
            "A": {"Type": "Task", "Resource": "x", "Next": "B", "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "F"}]},
            "B": {"Type": "Choice", "Choices": [{"Variable": "$.n", "NumericEquals": 1, "Next": "A"}], "Default": "S"},
            "F": {"Type": "Fail"},
            "S": {"Type": "Succeed"}}});
        let mermaid = draw(&definition, Format::Mermaid);
        for line in ["A -->  B", "A -.->|\"States.ALL\"| F", "B -->|\"n == 1\"| A", "B -->|\"otherwise\"| S", "B{B}", "F[/F/]", "S --> end_"] {
            assert!(mermaid.contains(&line.replace("  ", " ")), "{line} in\n{mermaid}");
        }
        let dot = draw(&definition, Format::Dot);
        assert!(dot.contains("A -> F [label=\"States.ALL\", style=dashed];") && dot.contains("B [label=\"B\", shape=diamond];"), "{dot}");
    }
}
