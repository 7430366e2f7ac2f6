//! mpaka-ffi: the surface of the core that mobile apps call.
//!
//! For now it only reports versions; the uniffi objects (store, form
//! session, sync) arrive with the mobile-bindings issue. The core stays free
//! of uniffi: this crate wraps it.

/// The library's version and the store schema version it writes, so an app
/// can log what it embeds.
pub fn library_version() -> String {
    format!(
        "mpaka {} (store schema v{})",
        env!("CARGO_PKG_VERSION"),
        mpaka_core::SCHEMA_VERSION
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn version_names_the_schema() {
        let v = super::library_version();
        assert!(
            v.starts_with("mpaka 0.") && v.contains(&format!("schema v{}", mpaka_core::SCHEMA_VERSION)),
            "{v}"
        );
    }
}
