//! The documentation site renders each service's OpenAPI document from a committed copy in
//! `docs/api/openapi/`. This test keeps those copies equal to what the services serve.
//!
//! After an API change, refresh them with `UPDATE_DOCS=1 cargo test -p shop --test docs`.

#[path = "../support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;

use reqwest::StatusCode;
use serde::{Serialize, Serializer};
use serde_json::Value;

use support::{TestShop, expect_json};

/// Each service's name (the committed file's stem) and the path of its document.
const DOCUMENTS: [(&str, &str); 4] = [
    ("backend", "/api/openapi.json"),
    ("user-service", "/user-api/openapi.json"),
    ("cart-service", "/cart-api/openapi.json"),
    ("order-service", "/order-api/openapi.json"),
];

const UPDATE_COMMAND: &str = "UPDATE_DOCS=1 cargo test -p shop --test docs";

#[tokio::test]
async fn committed_openapi_documents_match_the_services() {
    let update = std::env::var_os("UPDATE_DOCS").is_some_and(|value| value == "1");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/api/openapi");
    let shop = TestShop::start().await;
    let mut stale = Vec::new();
    for (service, path) in DOCUMENTS {
        let document: Value = expect_json(shop.get(path, None).await, StatusCode::OK).await;
        let expected = canonical(&document);
        let file = dir.join(format!("{service}.json"));
        let committed = std::fs::read_to_string(&file).unwrap_or_default();
        if committed == expected {
            continue;
        }
        if update {
            std::fs::create_dir_all(&dir).expect("docs/api/openapi can be created");
            std::fs::write(&file, &expected).expect("the OpenAPI document is written");
            println!("updated docs/api/openapi/{service}.json");
        } else {
            stale.push(format!(
                "  docs/api/openapi/{service}.json: {}",
                first_difference(&committed, &expected)
            ));
        }
    }
    shop.stop().await;
    assert!(
        stale.is_empty(),
        "the committed OpenAPI documents differ from what the services serve:\n{}\n\
         run `{UPDATE_COMMAND}` and commit the result",
        stale.join("\n")
    );
}

/// Pretty-printed, object keys sorted, with a trailing newline: the same bytes whatever
/// order serde_json keeps keys in (its `preserve_order` feature may be on in some builds).
fn canonical(document: &Value) -> String {
    let mut text = serde_json::to_string_pretty(&Sorted(document)).expect("JSON serializes");
    text.push('\n');
    text
}

struct Sorted<'a>(&'a Value);

impl Serialize for Sorted<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(map) => {
                let sorted: BTreeMap<&String, Sorted> = map
                    .iter()
                    .map(|(key, value)| (key, Sorted(value)))
                    .collect();
                sorted.serialize(serializer)
            }
            Value::Array(items) => serializer.collect_seq(items.iter().map(Sorted)),
            scalar => scalar.serialize(serializer),
        }
    }
}

fn first_difference(committed: &str, expected: &str) -> String {
    if committed.is_empty() {
        return "missing".to_owned();
    }
    let mut committed_lines = committed.lines();
    let mut expected_lines = expected.lines();
    for line in 1.. {
        match (committed_lines.next(), expected_lines.next()) {
            (Some(old), Some(new)) if old == new => {}
            (old, new) => {
                return format!(
                    "line {line} is {:?}, the service serves {:?}",
                    old.unwrap_or("<end of file>").trim(),
                    new.unwrap_or("<end of document>").trim()
                );
            }
        }
    }
    unreachable!("two different texts differ on some line")
}
