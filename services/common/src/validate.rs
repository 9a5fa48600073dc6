//! Small checks that request types compose into one `ApiError::Validation`.

use crate::problem::{ApiError, FieldError};

/// Collects every invalid field of a request before answering, so clients fix all at once.
#[derive(Default)]
pub struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn check(&mut self, ok: bool, field: &str, message: impl FnOnce() -> String) -> &mut Self {
        if !ok {
            self.errors.push(FieldError::new(field, message()));
        }
        self
    }

    /// Length is counted in characters, not bytes, so the documented limit is what users see.
    pub fn text(&mut self, field: &str, value: &str, min: usize, max: usize) -> &mut Self {
        let chars = value.chars().count();
        self.check(chars >= min && chars <= max, field, || {
            format!("must be between {min} and {max} characters long")
        })
    }

    pub fn non_blank(&mut self, field: &str, value: &str) -> &mut Self {
        self.check(!value.trim().is_empty(), field, || {
            "must not be blank".to_owned()
        })
    }

    pub fn range(&mut self, field: &str, value: i64, min: i64, max: i64) -> &mut Self {
        self.check(value >= min && value <= max, field, || {
            format!("must be between {min} and {max}")
        })
    }

    pub fn finish(&mut self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::Validation(std::mem::take(&mut self.errors)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_every_invalid_field() {
        let result = Validator::new()
            .text("name", "", 1, 10)
            .range("quantity", 0, 1, 100)
            .range("price", 5, 0, 10)
            .finish();
        match result {
            Err(ApiError::Validation(errors)) => {
                let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
                assert_eq!(fields, ["name", "quantity"]);
            }
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn counts_characters_not_bytes() {
        assert!(Validator::new().text("name", "ёжик", 1, 4).finish().is_ok());
    }
}
