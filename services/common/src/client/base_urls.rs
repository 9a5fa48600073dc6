//! Where an upstream's replicas are: one base URL, or several separated by commas.

use std::fmt;
use std::str::FromStr;

use reqwest::Url;

/// The base URLs of an upstream's replicas, in the order given, each without a trailing `/`.
/// Never empty, and never more than [`BaseUrls::MAX`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrls(Vec<String>);

impl BaseUrls {
    /// A single replica at `url`, which the caller knows to be a valid base URL.
    pub fn single(url: impl Into<String>) -> Self {
        Self(vec![url.into().trim_end_matches('/').to_owned()])
    }

    /// The client keeps which replicas seem to be leaving in one 64-bit word per call; a
    /// pool larger than that belongs behind a load balancer, named as one URL.
    pub const MAX: usize = 64;

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(String::as_str)
    }
}

impl FromStr for BaseUrls {
    type Err = String;

    /// Refuses an empty entry, anything but an absolute `http`/`https` URL, a replica
    /// listed twice (it would take two turns in the rotation), and more than [`Self::MAX`].
    fn from_str(list: &str) -> Result<Self, String> {
        let mut urls: Vec<String> = Vec::new();
        for (index, entry) in list.split(',').map(str::trim).enumerate() {
            let position = index + 1;
            if entry.is_empty() {
                return Err(format!(
                    "entry {position} is empty: give one base URL, or several separated by \
                     commas (http://host:port,http://host:port)"
                ));
            }
            let url = Url::parse(entry)
                .map_err(|err| format!("entry {position} `{entry}` is not a URL: {err}"))?;
            if !matches!(url.scheme(), "http" | "https") || !url.has_host() {
                return Err(format!(
                    "entry {position} `{entry}` is not an http:// or https:// base URL"
                ));
            }
            let base = entry.trim_end_matches('/').to_owned();
            if urls.contains(&base) {
                return Err(format!("entry {position} `{entry}` is listed twice"));
            }
            if position > Self::MAX {
                return Err(format!(
                    "more than {} replicas: put a larger pool behind a load balancer and \
                     give its URL",
                    Self::MAX
                ));
            }
            urls.push(base);
        }
        Ok(Self(urls))
    }
}

impl fmt::Display for BaseUrls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(list: &str) -> Vec<String> {
        let parsed: BaseUrls = list.parse().unwrap();
        parsed.iter().map(str::to_owned).collect()
    }

    fn refusal(list: &str) -> String {
        list.parse::<BaseUrls>().expect_err(list)
    }

    #[test]
    fn one_url_or_several() {
        assert_eq!(urls("http://127.0.0.1:8000"), ["http://127.0.0.1:8000"]);
        assert_eq!(
            urls("http://127.0.0.1:8000/, http://127.0.0.1:8010"),
            ["http://127.0.0.1:8000", "http://127.0.0.1:8010"]
        );
        let list = "http://a:1,https://b/prefix";
        assert_eq!(list.parse::<BaseUrls>().unwrap().to_string(), list);
    }

    #[test]
    fn bad_entries_are_refused_by_position() {
        assert!(refusal("").starts_with("entry 1 is empty"));
        assert!(refusal("http://a:1,,http://b:2").starts_with("entry 2 is empty"));
        assert!(refusal("http://a:1,").starts_with("entry 2 is empty"));
        assert!(refusal("http://a:1,127.0.0.1:8010").contains("entry 2 `127.0.0.1:8010`"));
        assert!(refusal("backend").contains("is not a URL"));
        assert!(refusal("ftp://a:1").contains("not an http:// or https://"));
        assert!(
            refusal("http://a:1,http://a:1/").contains("entry 2 `http://a:1/` is listed twice")
        );
    }

    #[test]
    fn a_pool_up_to_the_maximum_is_taken_and_a_larger_one_refused() {
        let pool = |size: usize| -> String {
            (0..size)
                .map(|port| format!("http://127.0.0.1:{}", 9000 + port))
                .collect::<Vec<_>>()
                .join(",")
        };
        assert_eq!(urls(&pool(BaseUrls::MAX)).len(), BaseUrls::MAX);
        assert!(refusal(&pool(BaseUrls::MAX + 1)).starts_with("more than 64 replicas"));
    }
}
