//! The gateway's static answer, the cheapest request there is (for the bench).

use super::*;

/// The body of the gateway's `location = /static-ok`.
pub(super) const STATIC_BODY: &str = "ok\n";

pub(super) async fn static_ok(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    let mut answer = send(
        ctx,
        user,
        Call::new(STATIC, "static ok", Method::GET, "/static-ok".into()),
    )
    .await?;
    if answer.body == STATIC_BODY {
        return Ok(());
    }
    let why = format!("the static answer was {:?}", answer.body);
    Err(answer.fail(ctx, user, &why))
}
