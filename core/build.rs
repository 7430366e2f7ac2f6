//! Compiles libtomcrypt for SQLCipher when the `encryption-tomcrypt` feature
//! is on; does nothing otherwise.
//!
//! libsqlite3-sys compiles SQLCipher itself and knows only OpenSSL and
//! CommonCrypto, so the provider switch reaches it through its environment
//! (`LIBSQLITE3_FLAGS=-DSQLCIPHER_CRYPTO_LIBTOMCRYPT`, with the libtomcrypt
//! headers as `OPENSSL_INCLUDE_DIR`). `scripts/cargo-tomcrypt` sets all of it.
//! A build that turned the feature on but left the environment unset would
//! quietly link OpenSSL instead, so this script stops it with the reason.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "encryption-tomcrypt")]
    tomcrypt::build();
}

#[cfg(feature = "encryption-tomcrypt")]
mod tomcrypt {
    use std::env;

    pub fn build() {
        for name in ["LIBSQLITE3_FLAGS", "OPENSSL_INCLUDE_DIR", "OPENSSL_LIB_DIR"] {
            println!("cargo:rerun-if-env-changed={name}");
        }
        let flags = env::var("LIBSQLITE3_FLAGS").unwrap_or_default();
        if !flags.split_whitespace().any(|f| f == "-DSQLCIPHER_CRYPTO_LIBTOMCRYPT") {
            panic!(
                "the `encryption-tomcrypt` feature needs SQLCipher compiled with libtomcrypt, and \
                 libsqlite3-sys learns that only from its environment: build through \
                 `scripts/cargo-tomcrypt` (or set LIBSQLITE3_FLAGS=-DSQLCIPHER_CRYPTO_LIBTOMCRYPT, \
                 OPENSSL_INCLUDE_DIR=<sqlcipher-src>/sqlcipher/libtomcrypt/headers and \
                 OPENSSL_LIB_DIR=<a folder holding an empty libcrypto.a> as it does)"
            );
        }

        let dir = sqlcipher_src::source_dir();
        let mut build = cc::Build::new();
        build
            .include(dir.join(sqlcipher_src::LIBTOMCRYPT_INCLUDE_DIR))
            .warnings(false)
            .opt_level_str("s");
        // libtomcrypt's default configuration, the one SQLCipher's provider
        // (compiled by libsqlite3-sys) also sees: its structs' layout depends
        // on the LTC_* switches, so both sides must agree. The linker drops
        // the algorithms nobody registers.
        build.define("LTC_SOURCE", None);
        for source in sqlcipher_src::LIBTOMCRYPT_SOURCES {
            build.file(dir.join(source));
        }
        build.compile("mpaka_tomcrypt");
    }
}
