//! The database away at start-up: the backend starts anyway, says it is not ready, answers
//! 503 problems, and recovers by itself once the database is reachable.

use std::time::Duration;

use clap::Parser;
use shop_common::cql::StorageKind;
use shop_common::testing::{TestKeyspace, cassandra_available, contact_point};
use tokio::net::{TcpListener, TcpStream};

async fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    listener.local_addr().unwrap().port()
}

/// Stands in for the database's address: nothing answers there until it is started, then
/// every connection is relayed to the real Cassandra.
async fn relay_to_cassandra(port: u16) {
    let listener = TcpListener::bind(("127.0.0.1", port)).await.unwrap();
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            tokio::spawn(async move {
                if let Ok(mut outbound) = TcpStream::connect(contact_point()).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
}

async fn serve_backend(database_port: u16, keyspace: &TestKeyspace) -> String {
    let mut config = backend::Config::try_parse_from(["backend"]).unwrap();
    config.auth.set_client_secret("test-secret-0123456789");
    config.storage.storage = StorageKind::Cql;
    config.storage.cql_contact_points = vec![format!("127.0.0.1:{database_port}")];
    config.storage.cql_keyspace = Some(keyspace.name().to_owned());
    let router = backend::app(&config, &shop_common::background::Background::default())
        .await
        .unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(axum::serve(listener, router).into_future());
    format!("http://{address}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_without_its_database_answers_503_and_recovers_when_it_appears() {
    let database_port = free_port().await;
    let keyspace = TestKeyspace::new("test_faults");
    let base = serve_backend(database_port, &keyspace).await;
    let http = reqwest::Client::new();

    let ready = http
        .get(format!("{base}/api/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 503);
    let report: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(
        report["checks"]["store"]["status"], "unavailable",
        "{report}"
    );

    let products = http
        .get(format!("{base}/api/products/"))
        .send()
        .await
        .unwrap();
    assert_eq!(products.status(), 503);
    assert_eq!(
        products.headers()["content-type"],
        "application/problem+json"
    );
    let problem: serde_json::Value = products.json().await.unwrap();
    assert!(
        !problem["detail"]
            .as_str()
            .unwrap()
            .contains(&database_port.to_string()),
        "no internal detail leaks: {problem}"
    );

    if !cassandra_available().await {
        return;
    }
    relay_to_cassandra(database_port).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let status = http
            .get(format!("{base}/api/products/"))
            .send()
            .await
            .unwrap()
            .status();
        if status == 200 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the backend did not recover"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let ready = http
        .get(format!("{base}/api/health/ready"))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
}
