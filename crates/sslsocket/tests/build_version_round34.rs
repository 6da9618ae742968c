//! Qt's `sslLibraryBuildVersion*` on the OpenSSL backend (round 34). A file of its own:
//! it makes the OpenSSL backend the process's active one.
/// Was a deviation (round 34, Qt review, no test then): `ssl_library_build_version_*`
/// gave the run-time version on the OpenSSL backend, which links the system's libssl
/// dynamically; now the headers' version (openssl-sys's build metadata). On this machine
/// both are the same release, so they must agree to the patch level.
#[test]
fn the_build_version_is_the_headers_version_on_openssl() {
    use sslsocket::backend;
    if !backend::available_backends().contains(&"openssl") {
        return;
    }
    let chosen = backend::set_active_backend("openssl").is_ok();
    let built = backend::ssl_library_build_version_string();
    let built_number = backend::ssl_library_build_version_number();
    let running = backend::ssl_library_version_string();
    let running_number = backend::ssl_library_version_number();
    assert!(chosen, "the openssl backend could not be chosen");
    assert!(
        built.starts_with("OpenSSL 3.") || built.starts_with("OpenSSL 1."),
        "{built}"
    );
    assert!(built_number > 0, "{built}");
    assert_eq!(built_number, running_number, "{built} / {running}");
    assert!(running.starts_with(&built), "{built} / {running}");
}
