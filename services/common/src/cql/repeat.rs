//! Which statements the driver may send more than once. Marked idempotent, a statement
//! whose coordinator died mid-request or answered "overloaded" is retried on another node
//! (the driver's default retry policy), instead of failing the request.

use super::Schema;

/// How the driver may repeat one statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Repeat {
    /// A read changes nothing: retried, and raced on a second node when the first is slow
    /// (speculative execution), as a node restarting or cut off is.
    Read,
    /// Leaves the same data whether it runs once or twice: retried after a failure, never
    /// raced, since a raced copy landing late would overwrite a write made after it.
    Write,
    /// Never repeated: counters and list appends count twice, and a conditional update
    /// whose caller cannot tell its own earlier success from another writer's would act
    /// twice.
    Never,
}

/// How `text` may be repeated. A conditional update (`IF ...`) is repeated only when it
/// is among `retry_safe_conditionals`: its caller reads back what a repeat that finds its
/// own earlier write did not apply.
pub(super) fn repeat(name: &str, text: &str, retry_safe_conditionals: &[&str]) -> Repeat {
    let words = words(text);
    let first = words.first().map(|word| word.to_ascii_uppercase());
    if first.as_deref() == Some("SELECT") {
        return Repeat::Read;
    }
    if is_conditional(text) {
        return if retry_safe_conditionals.contains(&name) {
            Repeat::Write
        } else {
            Repeat::Never
        };
    }
    if adds_to_itself(&words) {
        Repeat::Never
    } else {
        Repeat::Write
    }
}

/// Whether `text` is a lightweight transaction (`IF ...`).
pub(super) fn is_conditional(text: &str) -> bool {
    words(text)
        .iter()
        .any(|word| word.eq_ignore_ascii_case("IF"))
}

/// `c = c + ?` or `c = c - ?`: a counter, or an append to a list.
fn adds_to_itself(words: &[&str]) -> bool {
    words
        .windows(4)
        .any(|w| w[1] == "=" && w[0] == w[2] && matches!(w[3], "+" | "-"))
}

fn words(text: &str) -> Vec<&str> {
    text.split(|c: char| c.is_whitespace() || c == ',' || c == ';')
        .filter(|word| !word.is_empty())
        .collect()
}

/// A name in `retry_safe_conditionals` must be one of the schema's lightweight
/// transactions: anything else is a mistake that would go unnoticed.
pub(super) fn check_retry_safe(schema: &Schema) -> anyhow::Result<()> {
    for name in schema.retry_safe_conditionals {
        let conditional = schema
            .statements
            .iter()
            .any(|(known, text)| known == name && is_conditional(text));
        if !conditional {
            anyhow::bail!(
                "{name} is listed as a retry-safe conditional, but the schema has no \
                 conditional statement of that name"
            );
        }
    }
    Ok(())
}

/// Only a read of the schema can be a browse read: a write at a weaker consistency could
/// be lost with the one replica that took it.
pub(super) fn check_browse_reads(schema: &Schema) -> anyhow::Result<()> {
    for name in schema.browse_reads {
        let read = schema
            .statements
            .iter()
            .any(|(known, text)| known == name && repeat(name, text, &[]) == Repeat::Read);
        if !read {
            anyhow::bail!(
                "{name} is listed as a browse read, but the schema has no read of that name"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(text: &str) -> Repeat {
        repeat("statement", text, &["safe"])
    }

    #[test]
    fn reads_are_repeated_and_raced() {
        assert_eq!(of("SELECT id FROM t WHERE k = ?"), Repeat::Read);
        assert_eq!(of("select id from t"), Repeat::Read);
    }

    #[test]
    fn plain_writes_and_batches_of_them_are_retried() {
        for text in [
            "INSERT INTO t (k, v) VALUES (?, ?)",
            "UPDATE t SET v = ?, w = ? WHERE k = ?",
            "DELETE FROM t WHERE k = ? AND c IN ?",
            "BEGIN BATCH INSERT INTO a (k) VALUES (?); INSERT INTO b (k) VALUES (?); APPLY BATCH",
        ] {
            assert_eq!(of(text), Repeat::Write, "{text}");
        }
    }

    #[test]
    fn counters_and_appends_are_never_repeated() {
        for text in [
            "UPDATE counts SET n = n + ? WHERE k = ?",
            "UPDATE t SET v = ?, log = log + ? WHERE k = ?",
            "UPDATE counts SET n = n - 1 WHERE k = ?",
        ] {
            assert_eq!(of(text), Repeat::Never, "{text}");
        }
    }

    #[test]
    fn only_a_conditional_statement_of_the_schema_can_be_listed_retry_safe() {
        static LISTED: Schema = Schema {
            migrations: &[],
            statements: &[
                ("claim", "INSERT INTO t (k) VALUES (?) IF NOT EXISTS"),
                ("put", "INSERT INTO t (k) VALUES (?)"),
            ],
            retry_safe_conditionals: &["claim"],
            browse_reads: &[],
        };
        assert!(check_retry_safe(&LISTED).is_ok());
        for wrong in [&["put"], &["missing"]] {
            let schema = Schema {
                retry_safe_conditionals: wrong,
                ..LISTED
            };
            let err = check_retry_safe(&schema).unwrap_err().to_string();
            assert!(err.contains(wrong[0]), "{err}");
        }
    }

    #[test]
    fn only_a_read_of_the_schema_can_be_listed_as_a_browse_read() {
        static LISTED: Schema = Schema {
            migrations: &[],
            statements: &[
                ("list", "SELECT k FROM t"),
                ("put", "INSERT INTO t (k) VALUES (?)"),
            ],
            retry_safe_conditionals: &[],
            browse_reads: &["list"],
        };
        assert!(check_browse_reads(&LISTED).is_ok());
        for wrong in [&["put"], &["missing"]] {
            let schema = Schema {
                browse_reads: wrong,
                ..LISTED
            };
            let err = check_browse_reads(&schema).unwrap_err().to_string();
            assert!(err.contains(wrong[0]), "{err}");
        }
    }

    #[test]
    fn a_conditional_update_is_retried_only_when_its_caller_reads_back() {
        let conditional = "UPDATE t SET v = ? WHERE k = ? IF v = ?";
        assert_eq!(repeat("safe", conditional, &["safe"]), Repeat::Write);
        assert_eq!(repeat("other", conditional, &["safe"]), Repeat::Never);
        let insert = "INSERT INTO t (k) VALUES (?) IF NOT EXISTS";
        assert_eq!(repeat("other", insert, &["safe"]), Repeat::Never);
        let batch = "BEGIN BATCH UPDATE t SET v = ? WHERE k = ? IF v = ? \
                     UPDATE t SET m[?] = ? WHERE k = ? APPLY BATCH";
        assert_eq!(repeat("other", batch, &[]), Repeat::Never);
    }
}
