//! A calculator behind mutual TLS, tokens and per-method rules.
//!
//! ```text
//! cargo run --example secure_calculator     # server and clients, one process
//! ```
//!
//! In one process it makes a certificate authority and the certificates of
//! a server and two clients (rcgen, in memory), then shows who gets in and
//! what each may call:
//!
//! - the server listens on `tls://127.0.0.1:0` and requires client
//!   certificates from its CA (mutual TLS);
//! - an authenticator admits a client by its certificate (`alice`) or by
//!   a token (`ops`), and refuses anyone else in the handshake;
//! - an authorizer lets everyone `add`, and only `ops` `reset`, before any
//!   argument is decoded; a denied call is `Unauthorized` and the
//!   connection goes on.

#[path = "chapters/cli.rs"]
mod cli;
#[path = "chapters/pki.rs"]
mod pki;

use std::process::ExitCode;
use std::sync::atomic::{AtomicI64, Ordering};

use farcall::auth::{AccessRules, AnyOf, CertificateNames, Tokens};
use farcall::rpc::CallContext;
use farcall::tls::{ClientAuth, TlsConfig};
use farcall::{Node, Remote, RemoteError};

use cli::Outcome;
use pki::{Issued, Pki};

/// A running total.
#[farcall::remote]
pub trait Totals {
    /// Adds `n`; the new total.
    async fn add(&self, n: i64) -> Result<i64, RemoteError>;
    /// Back to zero.
    async fn reset(&self) -> Result<(), RemoteError>;
}

struct Total(AtomicI64);

#[farcall::remote]
impl Totals for Total {
    async fn add(&self, n: i64) -> Result<i64, RemoteError> {
        let who = CallContext::current()
            .and_then(|cx| cx.principal().map(|p| p.name.clone()))
            .unwrap_or_default();
        let total = self.0.fetch_add(n, Ordering::SeqCst) + n;
        println!("  server | {who} adds {n}: total {total}");
        Ok(total)
    }
    async fn reset(&self) -> Result<(), RemoteError> {
        self.0.store(0, Ordering::SeqCst);
        println!("  server | reset");
        Ok(())
    }
}

/// The token of the operator (a real one comes from a secret store).
const OPS_TOKEN: &str = "ops-token-made-up-for-this-example";

fn tls(pki: &Pki, me: &Issued, auth: ClientAuth) -> Result<TlsConfig, farcall::tls::TlsError> {
    TlsConfig::builder()
        .identity_pem(me.chain.as_bytes(), me.key.as_bytes())
        .trust_pem(pki.ca_pem.as_bytes())
        .client_auth(auth)
        .build()
}

fn main() -> ExitCode {
    cli::main(run)
}

async fn run(args: Vec<String>) -> Outcome {
    if !args.is_empty() {
        return Err("usage: secure_calculator (it takes no arguments)".into());
    }
    println!("a server and three clients in one process, over TLS on a free port");
    let pki = Pki::new("secure calculator CA");
    let loopback = ["localhost", "127.0.0.1"];

    let server = Node::builder()
        .tls(tls(
            &pki,
            &pki.issue("calculator", &loopback),
            ClientAuth::Required,
        )?)
        .authenticator(
            AnyOf::new()
                .or(CertificateNames::allow(["alice.example"]))
                .or(Tokens::new().allow(OPS_TOKEN, "ops")),
        )
        .authorizer(
            AccessRules::new()
                .allow("*", "Totals", "add")
                .allow("ops", "Totals", "*"),
        )
        .listen("tls://127.0.0.1:0")
        .await?;
    let _totals: Remote<dyn Totals> = server.serve("totals", Total(AtomicI64::new(0)));
    let addr = server.local_addr().ok_or("the server listens nowhere")?;
    println!("  server | listening on {addr}, client certificates required");

    // Alice: admitted by her certificate; may add, may not reset.
    let alice = Node::builder()
        .tls(tls(
            &pki,
            &pki.issue("alice", &["alice.example"]),
            ClientAuth::None,
        )?)
        .build();
    let totals = alice.connect_service::<dyn Totals>(&addr, "totals").await?;
    println!("  alice  | add(2) = {}", totals.add(2).await?);
    match totals.reset().await {
        Err(RemoteError::Unauthorized(why)) => println!("  alice  | reset refused: {why}"),
        other => return Err(format!("alice's reset should be refused, got {other:?}").into()),
    }
    println!(
        "  alice  | add(3) = {} (the same connection)",
        totals.add(3).await?
    );

    // The operator: a certificate of the CA (mutual TLS wants one) that is
    // not on the list, and the token that names it.
    let ops = Node::builder()
        .tls(tls(
            &pki,
            &pki.issue("ops console", &["ops.example"]),
            ClientAuth::None,
        )?)
        .credentials(OPS_TOKEN)
        .build();
    let as_ops = ops.connect_service::<dyn Totals>(&addr, "totals").await?;
    as_ops.reset().await?;
    println!("  ops    | reset: total {}", as_ops.add(0).await?);

    // Mallory: a certificate of the CA, neither listed nor with a token.
    let mallory = Node::builder()
        .tls(tls(
            &pki,
            &pki.issue("mallory", &["mallory.example"]),
            ClientAuth::None,
        )?)
        .build();
    match mallory.connect_service::<dyn Totals>(&addr, "totals").await {
        Err(e) => println!("  mallory| refused: {e}"),
        Ok(_) => return Err("mallory should be refused".into()),
    }

    for n in [alice, ops, mallory, server] {
        n.shutdown().await;
    }
    Ok(())
}
