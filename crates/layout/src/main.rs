//! `stepdeploy-layout [--max-lines N] CRATE_ROOT...`: checks each crate
//! (given by its `lib.rs`) for files over the line cap and import cycles.
//! Exits 1 when it finds any, 2 on bad arguments or unreadable files.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut cap = 600;
    let mut roots = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--max-lines" {
            match args.next().and_then(|n| n.parse().ok()) {
                Some(n) => cap = n,
                None => {
                    eprintln!("error: --max-lines takes a whole number of lines");
                    return ExitCode::from(2);
                }
            }
        } else {
            roots.push(PathBuf::from(arg));
        }
    }
    if roots.is_empty() {
        eprintln!("usage: stepdeploy-layout [--max-lines N] CRATE_ROOT... (e.g. crates/core/src/lib.rs)");
        return ExitCode::from(2);
    }
    let mut failed = false;
    for root in &roots {
        match stepdeploy_layout::check(root, cap) {
            Ok(problems) if problems.is_empty() => println!("{}: no file over {cap} lines, no import cycle", root.display()),
            Ok(problems) => {
                failed = true;
                for problem in problems {
                    println!("{problem}");
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        }
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}
