//! The one HTTP client every arrival of the open model shares.
//!
//! Its connections are pooled and kept alive across arrivals, as a browser's are across
//! page loads. A server may close an idle kept-alive connection just as the client sends
//! on it: nginx does so for every idle connection when it reloads its configuration. The
//! request then ends without any answer, and the server never saw it. Browsers send such a request again on a fresh
//! connection when its method is idempotent (RFC 9110, section 9.2.2), and so does this
//! client, once: without it a load test would count the client's own race as the shop's
//! failure. A timed-out request is not repeated (the server may be working on it), nor is
//! a request whose method is not idempotent.

use std::time::Duration;

use goose::config::GooseConfiguration;
use reqwest::retry;
use reqwest::{Client, Method, Url};

/// goose's own default, used when `--timeout` is not given.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The client for the arrivals to `host`, with goose's `--timeout`.
pub fn arrivals_client(config: &GooseConfiguration, host: &Url) -> anyhow::Result<Client> {
    let timeout = match config.timeout.as_deref() {
        None => DEFAULT_TIMEOUT,
        Some(seconds) => seconds
            .parse()
            .ok()
            .and_then(|seconds: f64| Duration::try_from_secs_f64(seconds).ok())
            .ok_or_else(|| anyhow::anyhow!("--timeout {seconds}: not a number of seconds"))?,
    };
    let host = host.host_str().unwrap_or_default().to_owned();
    Ok(Client::builder()
        .user_agent(concat!("shop-loadtester/", env!("CARGO_PKG_VERSION")))
        .timeout(timeout)
        .retry(
            retry::for_host(host)
                .max_retries_per_request(1)
                .classify_fn(|attempt| {
                    let unanswered = attempt
                        .error()
                        .and_then(|err| err.downcast_ref::<reqwest::Error>())
                        .is_some_and(|err| !err.is_timeout());
                    if unanswered && is_idempotent(attempt.method()) {
                        attempt.retryable()
                    } else {
                        attempt.success()
                    }
                }),
        )
        .build()?)
}

fn is_idempotent(method: &Method) -> bool {
    matches!(
        *method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::PUT | Method::DELETE
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    /// A server that reads the first connection's request and closes it unanswered, as an
    /// nginx worker leaving on a reload does, and answers 200 on every later connection.
    /// Returns its address and how many requests it read.
    async fn closes_the_first_connection() -> (Url, tokio::task::JoinHandle<usize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
        let server = tokio::spawn(async move {
            let mut requests = 0;
            while let Ok(Ok((mut stream, _))) =
                tokio::time::timeout(Duration::from_millis(500), listener.accept()).await
            {
                let mut buffer = [0u8; 4096];
                if stream.read(&mut buffer).await.unwrap_or(0) == 0 {
                    continue;
                }
                requests += 1;
                if requests > 1 {
                    let answer =
                        b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
                    let _ = stream.write_all(answer).await;
                }
            }
            requests
        });
        (url, server)
    }

    fn client(url: &Url) -> Client {
        arrivals_client(&GooseConfiguration::default(), url).unwrap()
    }

    #[tokio::test]
    async fn an_idempotent_request_closed_unanswered_is_sent_once_more() {
        let (url, server) = closes_the_first_connection().await;
        let response = client(&url).get(url.clone()).send().await.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.text().await.unwrap(), "ok");
        assert_eq!(server.await.unwrap(), 2);
    }

    #[tokio::test]
    async fn a_post_closed_unanswered_fails_without_being_sent_again() {
        let (url, server) = closes_the_first_connection().await;
        let result = client(&url).post(url.clone()).body("{}").send().await;
        assert!(result.is_err(), "{result:?}");
        assert_eq!(server.await.unwrap(), 1);
    }

    #[test]
    fn a_timeout_that_is_not_a_number_is_refused() {
        let mut config = GooseConfiguration::default();
        config.timeout = Some("soon".into());
        let url = Url::parse("http://127.0.0.1/").unwrap();
        let err = arrivals_client(&config, &url).unwrap_err();
        assert!(err.to_string().contains("--timeout soon"), "{err}");
    }
}
