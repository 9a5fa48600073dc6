//! Stopping and starting a component of the shop (a service, an exporter) with the commands
//! the user's environment needs: the native stack's by default, Docker Compose's on request.

use std::process::Stdio;

use anyhow::{Context, bail};
use tokio::process::Command;

pub const DEFAULT_STOP: &str = "cargo xtask stack down {component}";
pub const DEFAULT_START: &str = "cargo xtask stack up {component}";

/// Runs `template` with `{component}` replaced, through `sh -c` so that users can write the
/// command as they would type it; the name is passed as an argument, never spliced in.
pub async fn run(template: &str, component: &str) -> anyhow::Result<()> {
    if !is_component_name(component) {
        bail!("{component:?} is not a component name");
    }
    let script = template.replace("{component}", "\"$1\"");
    let output = Command::new("sh")
        .args(["-c", &script, "sh", component])
        .stdin(Stdio::null())
        .output()
        .await
        .with_context(|| format!("cannot run `{template}`"))?;
    if !output.status.success() {
        bail!(
            "`{}` failed ({}): {}",
            template.replace("{component}", component),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(())
}

fn is_component_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_component_reaches_the_command_as_one_argument() {
        let out = std::env::temp_dir().join(format!("control-{}", std::process::id()));
        let template = format!("printf %s {{component}} > {}", out.display());
        run(&template, "order-service").await.unwrap();
        assert_eq!(std::fs::read_to_string(&out).unwrap(), "order-service");
        std::fs::remove_file(&out).unwrap();
    }

    #[tokio::test]
    async fn failures_and_odd_names_are_errors() {
        let err = run("exit 3", "backend").await.unwrap_err().to_string();
        assert!(err.contains("exit 3"), "{err}");
        assert!(run("true", "backend; rm -rf /").await.is_err());
    }
}
