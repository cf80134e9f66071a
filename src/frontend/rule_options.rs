//! mvrewrite's settings in a DataFusion session's configuration (`mvrewrite.*`). They travel
//! with every plan Ballista ships to its scheduler (the client's settings are sent along), so
//! the scheduler's rule knows a plan it must leave as it is: the computation of an MV, which
//! reads its tables, never another MV (stale ones where tolerated would be recorded as fresh).

use std::any::Any;

use datafusion::common::config::{ConfigEntry, ConfigExtension, ExtensionOptions};
use datafusion::common::{DataFusionError, Result};
use datafusion::optimizer::OptimizerConfig;

/// The rule's settings. Written by hand rather than with DataFusion's `extensions_options!`,
/// whose entries leave out the `mvrewrite.` prefix, so that a scheduler setting them from a
/// client's entries would not find them.
#[derive(Clone, Debug)]
pub struct MvRewriteOptions {
    /// Whether the rule rewrites the session's plans (`mvrewrite.rewrite`, default true).
    pub rewrite: bool,
}

impl Default for MvRewriteOptions {
    fn default() -> Self {
        MvRewriteOptions { rewrite: true }
    }
}

impl ConfigExtension for MvRewriteOptions {
    const PREFIX: &'static str = "mvrewrite";
}

impl ExtensionOptions for MvRewriteOptions {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }

    fn cloned(&self) -> Box<dyn ExtensionOptions> {
        Box::new(self.clone())
    }

    fn set(&mut self, key: &str, value: &str) -> Result<()> {
        match key {
            "rewrite" => {
                self.rewrite = value.parse().map_err(|_| {
                    DataFusionError::Configuration(format!(
                        "mvrewrite.rewrite: {value} is not true or false"
                    ))
                })?;
                Ok(())
            }
            _ => Err(DataFusionError::Configuration(format!(
                "no setting mvrewrite.{key}"
            ))),
        }
    }

    fn entries(&self) -> Vec<ConfigEntry> {
        vec![ConfigEntry {
            key: format!("{}.rewrite", Self::PREFIX),
            value: Some(self.rewrite.to_string()),
            description: "Whether mvrewrite's rule rewrites the session's plans",
        }]
    }
}

/// Whether `config` turns rewriting off (`mvrewrite.rewrite = false`).
pub(crate) fn rewriting_off(config: &dyn OptimizerConfig) -> bool {
    config
        .options()
        .extensions
        .get::<MvRewriteOptions>()
        .is_some_and(|o| !o.rewrite)
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::SessionConfig;

    use super::*;

    /// A configuration's entries, set one by one on another's (what a Ballista scheduler does
    /// with a client's), carry the setting over.
    #[test]
    fn entries_set_again_carry_the_setting() {
        let mut sent = SessionConfig::new().with_option_extension(MvRewriteOptions::default());
        sent.options_mut()
            .set("mvrewrite.rewrite", "false")
            .unwrap();
        let mut received = SessionConfig::new().with_option_extension(MvRewriteOptions::default());
        for entry in sent.options().entries() {
            if let Some(value) = entry.value {
                let _ = received.options_mut().set(&entry.key, &value);
            }
        }
        let options = received.options().extensions.get::<MvRewriteOptions>();
        assert!(options.is_some_and(|o| !o.rewrite));
    }
}
