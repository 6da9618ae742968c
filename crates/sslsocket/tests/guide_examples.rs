//! The guide's examples (crates/sslsocket/examples), run as tests: each talks to itself on
//! 127.0.0.1 with certificates made at start and returns an error when what it shows does
//! not happen (a refused client accepted, a pause that never comes, ...). Their own code
//! runs here (included, not copied), so CI proves that what the guide shows works.
// Each example includes the examples' `common` module itself (it must run on its own), so
// including several loads that file several times; the copies are independent.
#![allow(clippy::duplicate_mod)]

#[path = "../examples/accept_one_self_signed.rs"]
mod accept_one_self_signed;
#[path = "../examples/mutual_tls.rs"]
mod mutual_tls;
#[path = "../examples/pause_and_decide.rs"]
mod pause_and_decide;
#[path = "../examples/pinning.rs"]
mod pinning;
#[path = "../examples/starttls.rs"]
mod starttls;
#[allow(dead_code)]
#[path = "../examples/tokio_server.rs"]
mod tokio_server;

#[test]
fn starttls_upgrades_a_plain_conversation() -> Result<(), starttls::common::BoxError> {
    starttls::main()
}

#[test]
fn mutual_tls_accepts_a_client_certificate_and_refuses_none(
) -> Result<(), starttls::common::BoxError> {
    mutual_tls::main()
}

#[test]
fn one_self_signed_certificate_is_accepted_and_no_other() -> Result<(), starttls::common::BoxError>
{
    accept_one_self_signed::main()
}

#[test]
fn a_paused_handshake_resumes_and_a_hook_decides() -> Result<(), starttls::common::BoxError> {
    pause_and_decide::main()
}

#[test]
fn a_pin_off_the_verified_path_refuses_a_valid_chain() -> Result<(), starttls::common::BoxError> {
    pinning::main()
}

#[tokio::test]
async fn the_tokio_server_echoes_each_client() -> Result<(), starttls::common::BoxError> {
    let replies = tokio_server::run(3).await?;
    assert_eq!(replies, ["echo: hello 0", "echo: hello 1", "echo: hello 2"]);
    Ok(())
}
