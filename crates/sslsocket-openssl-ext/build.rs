//! Records the OpenSSL version the crate is built against (openssl-sys's `links`
//! metadata, `DEP_OPENSSL_VERSION_NUMBER`, hex), for Qt's `sslLibraryBuildVersion*`.
fn main() {
    println!("cargo:rerun-if-env-changed=DEP_OPENSSL_VERSION_NUMBER");
    let number = std::env::var("DEP_OPENSSL_VERSION_NUMBER").unwrap_or_default();
    println!("cargo:rustc-env=SSLSOCKET_OPENSSL_BUILD_VERSION_NUMBER={number}");
}
