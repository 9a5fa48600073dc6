//! A credential stuffer: logins with wrong passwords against known accounts.

use super::*;

pub(super) async fn stuff_credentials(ctx: &Ctx, user: &mut GooseUser) -> TxResult {
    for _ in 0..5 {
        let victims = &ctx.catalogue.victims;
        let username = victims[fastrand::usize(..victims.len())].clone();
        let guess = format!("guess-{:08x}", fastrand::u32(..));
        debug_assert_ne!(guess, VICTIM_PASSWORD);
        let mut answer = send(
            ctx,
            user,
            Call::new(
                STUFFER,
                "wrong password",
                Method::POST,
                "/user-api/token".into(),
            )
            .form(&[("username", &username), ("password", &guess)])
            .accept(&[401]),
        )
        .await?;
        let content_type = answer.header("content-type").unwrap_or_default().to_owned();
        let problem: Problem = answer.json(ctx, user)?;
        answer.check(
            ctx,
            user,
            problem.status == 401 && content_type.starts_with("application/problem+json"),
            || format!("a refused login answered {content_type} {problem:?}"),
        )?;
    }
    Ok(())
}
