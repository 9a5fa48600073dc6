//! The end-to-end suite against the running native stack. It stops and starts components
//! of that stack, so it runs only when asked: ignored by `cargo test`, and failing rather
//! than passing over when run without the stack's description in its environment, which
//! `cargo xtask e2e` gives it (`E2E_GATEWAY_URL` and the rest, see `harness::Stack`).

#[test]
#[ignore = "needs the running native stack (cargo xtask stack up), and disturbs it: run `cargo xtask e2e`"]
fn every_check_against_the_running_stack() {
    match shop_e2e::run() {
        Ok(passed) => assert!(
            passed,
            "some end-to-end checks failed: see the FAILED lines"
        ),
        Err(error) => panic!("{error:#}"),
    }
}
