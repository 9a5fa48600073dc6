//! The configuration reference (docs/reference/configuration.md) lists exactly the
//! environment variables the code reads: a new variable must be documented, and a
//! documented one that nothing reads any more must go.
//!
//! "Read" means a clap argument's `env` attribute or a `std::env::var`/`var_os` call with
//! a literal name, or a service's variable in the topology table (services/topology, which
//! the services' `env` attributes name), in any Rust file under services/, loadtester/ or
//! xtask/. "Listed" means a row of a table on the page whose first cell is the name in
//! backticks.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

const REFERENCE: &str = "docs/reference/configuration.md";

/// How the code names a variable it reads: the text right before the quoted name.
const READ_PATTERNS: &[&str] = &[
    "env = \"",
    "env::var(\"",
    "env::var_os(\"",
    "listen_var: \"",
    "url_var: \"",
];

#[test]
fn the_configuration_reference_lists_exactly_the_variables_the_code_reads() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut read = BTreeSet::new();
    let sources = ["services", "loadtester", "xtask"].map(|folder| root.join(folder));
    for file in sources.iter().flat_map(|folder| rust_files(folder)) {
        let source = fs::read_to_string(&file).unwrap();
        read.extend(names_read(&source));
    }
    let page = fs::read_to_string(root.join(REFERENCE))
        .unwrap_or_else(|err| panic!("cannot read {REFERENCE}: {err}"));
    let listed = names_listed(&page);

    let undocumented: Vec<_> = read.difference(&listed).collect();
    let unread: Vec<_> = listed.difference(&read).collect();
    assert!(
        undocumented.is_empty() && unread.is_empty(),
        "{REFERENCE} is out of date.\n\
         Read by the code but not listed (add a table row `| `NAME` | ... |`): {undocumented:?}\n\
         Listed but read by nothing (remove the row): {unread:?}"
    );
    assert!(
        read.len() > 10,
        "the scan found too few variables: {read:?}"
    );
}

fn names_read(source: &str) -> Vec<String> {
    let mut names = Vec::new();
    for pattern in READ_PATTERNS {
        for (start, _) in source.match_indices(pattern) {
            let rest = &source[start + pattern.len()..];
            let name = &rest[..rest.find('"').unwrap_or(0)];
            if is_variable_name(name) {
                names.push(name.to_owned());
            }
        }
    }
    names
}

/// The first cell of every table row, when it is a variable name in backticks.
fn names_listed(page: &str) -> BTreeSet<String> {
    page.lines()
        .filter_map(|line| line.trim().strip_prefix("| `"))
        .filter_map(|cell| cell.split_once('`'))
        .map(|(name, _)| name.to_owned())
        .filter(|name| is_variable_name(name))
        .collect()
}

fn is_variable_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
}

/// Every `.rs` file below `dir`, skipping build output.
fn rust_files(dir: &Path) -> impl Iterator<Item = PathBuf> {
    let mut pending = vec![dir.to_path_buf()];
    let mut files = Vec::new();
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() && !path.ends_with("target") {
                pending.push(path);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                files.push(path);
            }
        }
    }
    files.into_iter()
}
