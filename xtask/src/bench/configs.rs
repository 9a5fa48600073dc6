//! Bench copies of the repository's gateway and Jaeger configurations: the files themselves,
//! with only their ports replaced, so that the gateway measured is the real one.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result, bail};
use shop_topology as topology;

use super::ports;

/// Writes nginx.conf and the upstreams it includes into `dir` (includes resolve relative to
/// the configuration's directory) and returns the configuration's path.
pub fn write_nginx(root: &Path, dir: &Path) -> Result<std::path::PathBuf> {
    let source = root.join("observability/nginx");
    fs::create_dir_all(dir.join("logs"))?;
    let conf = read(&source.join("nginx.conf"))?;
    fs::write(dir.join("nginx.conf"), nginx_conf(&conf)?)?;
    let upstreams = read(&source.join("upstreams.native.conf"))?;
    fs::write(
        dir.join("upstreams.native.conf"),
        upstreams_conf(&upstreams)?,
    )?;
    Ok(dir.join("nginx.conf"))
}

/// Writes the Jaeger configuration into `path`.
pub fn write_jaeger(root: &Path, path: &Path) -> Result<()> {
    let conf = read(&root.join("observability/jaeger/config.yaml"))?;
    fs::write(path, jaeger_conf(&conf)?)?;
    Ok(())
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))
}

pub fn nginx_conf(text: &str) -> Result<String> {
    substitute(
        text,
        "observability/nginx/nginx.conf",
        &[
            ("listen 127.0.0.1:{port};", 8080, ports::GATEWAY),
            ("listen 127.0.0.1:{port};", 8081, ports::STUB_STATUS),
        ],
    )
}

pub fn upstreams_conf(text: &str) -> Result<String> {
    // The services' lines go on with their passive-health settings.
    let service = "server 127.0.0.1:{port} ";
    substitute(
        text,
        "observability/nginx/upstreams.native.conf",
        &[
            (service, topology::BACKEND.port, ports::BACKEND),
            (service, topology::CART.port, ports::CART),
            (service, topology::ORDER.port, ports::ORDER),
            (service, topology::USER.port, ports::USER),
            ("server 127.0.0.1:{port};", 8004, ports::DOCS),
        ],
    )
}

pub fn jaeger_conf(text: &str) -> Result<String> {
    substitute(
        text,
        "observability/jaeger/config.yaml",
        &[
            // After `${env:JAEGER_LISTEN_HOST:-127.0.0.1}`.
            ("}:{port}", 4317, ports::OTLP_GRPC),
            ("}:{port}", 4318, ports::OTLP_HTTP),
            ("}:{port}", 16686, ports::JAEGER_QUERY),
            ("}:{port}", 16685, ports::JAEGER_QUERY_GRPC),
            ("port: {port}", 8888, ports::JAEGER_METRICS),
        ],
    )
}

/// In `text`, each `template` (with `{port}`) at its stack port becomes the same text at the
/// bench port. A template that is not found means the original changed: an error, rather than
/// a bench config that silently keeps a stack port.
fn substitute(text: &str, origin: &str, swaps: &[(&str, u16, u16)]) -> Result<String> {
    let mut out = text.to_owned();
    for (template, stack_port, bench_port) in swaps {
        let from = template.replace("{port}", &stack_port.to_string());
        if !out.contains(&from) {
            bail!(
                "{origin} no longer contains `{from}`; update xtask/src/bench/configs.rs to match it"
            );
        }
        out = out.replace(&from, &template.replace("{port}", &bench_port.to_string()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ports_are_replaced_and_nothing_else() {
        let conf = "server {\n    listen 127.0.0.1:8080;   # compose: listen 8080;\n}\n\
                    server {\n    listen 127.0.0.1:8081;\n}\n";
        let out = nginx_conf(conf).unwrap();
        assert_eq!(
            out,
            "server {\n    listen 127.0.0.1:18380;   # compose: listen 8080;\n}\n\
             server {\n    listen 127.0.0.1:18381;\n}\n"
        );
    }

    #[test]
    fn a_changed_original_is_an_error() {
        let err = nginx_conf("listen 127.0.0.1:9999;").unwrap_err();
        assert!(err.to_string().contains("listen 127.0.0.1:8080;"), "{err}");
    }

    #[test]
    fn jaeger_ports_move_into_the_bench_range() {
        let conf = "grpc:\n  endpoint: ${env:H:-127.0.0.1}:4317\nhttp:\n  endpoint: ${env:H:-127.0.0.1}:4318\n\
                    query: ${env:H:-127.0.0.1}:16686 ${env:H:-127.0.0.1}:16685\nport: 8888\n";
        let out = jaeger_conf(conf).unwrap();
        for port in ["18310", "18311", "18312", "18313", "port: 18314"] {
            assert!(out.contains(port), "{port} missing in {out}");
        }
        for old in [":4317", ":4318", ":16686", ":16685", "8888"] {
            assert!(!out.contains(old), "{old} left in {out}");
        }
    }

    #[test]
    fn the_repository_files_still_match() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let obs = root.join("observability");
        nginx_conf(&read(&obs.join("nginx/nginx.conf")).unwrap()).unwrap();
        upstreams_conf(&read(&obs.join("nginx/upstreams.native.conf")).unwrap()).unwrap();
        jaeger_conf(&read(&obs.join("jaeger/config.yaml")).unwrap()).unwrap();
    }
}
