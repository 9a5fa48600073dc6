//! The bench's own ports, all in 18300-18399, so that it never touches the stack's (8000-8081,
//! 4317/4318, 16686, ...) and can run while the stack is up.

pub const BACKEND: u16 = 18300;
pub const CART: u16 = 18301;
pub const ORDER: u16 = 18302;
pub const USER: u16 = 18303;
/// The gateway's `docs` upstream: nothing listens there, as nothing is measured there.
pub const DOCS: u16 = 18304;
/// The seed's stack as a peer (FastAPI on uvicorn), serving product by id.
pub const PEER: u16 = 18305;

/// The backends measured side by side, one per telemetry configuration.
pub const SIDE_BY_SIDE: [u16; 3] = [18320, 18321, 18322];

pub const OTLP_GRPC: u16 = 18310;
pub const OTLP_HTTP: u16 = 18311;
pub const JAEGER_QUERY: u16 = 18312;
pub const JAEGER_QUERY_GRPC: u16 = 18313;
pub const JAEGER_METRICS: u16 = 18314;

pub const GATEWAY: u16 = 18380;
pub const STUB_STATUS: u16 = 18381;

pub const LOADTESTER_METRICS: u16 = 18390;

/// Every port a bench process listens on, checked free before anything starts.
pub const ALL: &[u16] = &[
    BACKEND,
    CART,
    ORDER,
    USER,
    PEER,
    SIDE_BY_SIDE[0],
    SIDE_BY_SIDE[1],
    SIDE_BY_SIDE[2],
    OTLP_GRPC,
    OTLP_HTTP,
    JAEGER_QUERY,
    JAEGER_QUERY_GRPC,
    JAEGER_METRICS,
    GATEWAY,
    STUB_STATUS,
    LOADTESTER_METRICS,
];

pub fn url(port: u16) -> String {
    format!("http://127.0.0.1:{port}")
}
