//! Authentication in the handshake and authorization before decode, over
//! real sockets on loopback: tokens (none, wrong, right), a mutual-TLS
//! allow-list, the principal a handler sees, and denied methods that get
//! `Unauthorized` while the same connection goes on serving the allowed
//! ones. No token ever shows in an error.
//!
//! Time-outs here only keep a broken build from hanging; nothing asserts
//! speed.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use farcall::auth::{AccessRules, Request, Tokens};
use farcall::rpc::{CallContext, Fault};
use farcall::{Node, Remote, RemoteError};

use common::wait::within;

/// An account: anyone may read it, only its owner and ops may move money.
#[farcall::remote]
pub trait Account {
    /// The balance.
    async fn balance(&self) -> Result<u64, RemoteError>;
    /// Adds `amount`; the new balance.
    async fn deposit(&self, amount: u64) -> Result<u64, RemoteError>;
    /// Who the server says is calling.
    async fn caller(&self) -> Result<String, RemoteError>;
    /// Empties the account: for administrators.
    #[remote(role = "admin")]
    async fn wipe(&self) -> Result<(), RemoteError>;
}

#[derive(Default)]
struct Ledger {
    balance: AtomicU64,
    /// Every deposit that ran (a denied one must not).
    deposits: AtomicU64,
}

#[farcall::remote]
impl Account for Arc<Ledger> {
    async fn balance(&self) -> Result<u64, RemoteError> {
        Ok(self.balance.load(Ordering::SeqCst))
    }
    async fn deposit(&self, amount: u64) -> Result<u64, RemoteError> {
        self.deposits.fetch_add(1, Ordering::SeqCst);
        Ok(self.balance.fetch_add(amount, Ordering::SeqCst) + amount)
    }
    async fn wipe(&self) -> Result<(), RemoteError> {
        self.balance.store(0, Ordering::SeqCst);
        Ok(())
    }
    async fn caller(&self) -> Result<String, RemoteError> {
        let cx = CallContext::current().expect("a call's context");
        Ok(cx
            .principal()
            .map_or_else(|| "nobody".to_owned(), |p| p.name.clone()))
    }
}

const ALICE_TOKEN: &str = "alice-0f3a9c-very-secret";
const OPS_TOKEN: &str = "ops-77d1e2-very-secret";

async fn bank(ledger: Arc<Ledger>) -> Node {
    let node = Node::builder()
        .authenticator(
            Tokens::new()
                .allow(ALICE_TOKEN, "alice")
                .allow(OPS_TOKEN, "ops"),
        )
        .authorizer(
            AccessRules::new()
                .allow("*", "Account", "balance")
                .allow("*", "Account", "caller")
                .allow("ops", "Account", "*"),
        )
        .listen("tcp://127.0.0.1:0")
        .await
        .unwrap();
    let _: Remote<dyn Account> = node.serve("account", ledger);
    node
}

fn with_token(token: &str) -> Node {
    Node::builder().credentials(token.to_owned()).build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_none_wrong_and_right() {
    let ledger = Arc::new(Ledger::default());
    let server = bank(ledger.clone()).await;
    let addr = server.local_addr().unwrap();

    // No token, and a wrong one: refused in the handshake, with a reason
    // that never repeats what was presented.
    for (client, expect) in [
        (Node::new(), "requires a token"),
        (with_token("guess-1234"), "not accepted"),
    ] {
        match within(20, "a refused dialer", client.connection(&addr)).await {
            Err(e) => {
                let why = e.to_string();
                assert!(why.contains(expect), "{why}");
                assert!(why.contains("refused by the peer"), "{why}");
                assert_eq!(why.matches("refused by the peer").count(), 1, "{why}");
                assert!(!why.contains("guess-1234"), "no token in errors: {why}");
            }
            Ok(_) => panic!("a dialer without the right token was accepted"),
        }
    }

    // The right token: the handler sees the principal.
    let alice = with_token(ALICE_TOKEN);
    let account = alice
        .connect_service::<dyn Account>(&addr, "account")
        .await
        .unwrap();
    assert_eq!(account.caller().await.unwrap(), "alice");
    let conn = alice.connection(&addr).await.unwrap();
    assert_eq!(conn.principal(), None, "the dialer's side has no principal");
    let served = server.connections();
    assert!(
        served
            .iter()
            .any(|c| c.principal().is_some_and(|p| p.name == "alice")),
        "the server's side names alice"
    );
    for n in [alice, server] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_denied_method_is_unauthorized_and_the_connection_goes_on() {
    let ledger = Arc::new(Ledger::default());
    let server = bank(ledger.clone()).await;
    let addr = server.local_addr().unwrap();

    let alice = with_token(ALICE_TOKEN);
    let account = alice
        .connect_service::<dyn Account>(&addr, "account")
        .await
        .unwrap();
    match account.deposit(100).await {
        Err(RemoteError::Unauthorized(why)) => {
            assert!(
                why.contains("`alice` may not call `Account::deposit`"),
                "{why}"
            );
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    assert_eq!(ledger.deposits.load(Ordering::SeqCst), 0, "it never ran");
    // The same connection serves what alice may call, at once.
    assert_eq!(account.balance().await.unwrap(), 0);
    let conn = alice.connection(&addr).await.unwrap();
    assert!(conn.is_open());

    // Refused before decoding: garbage arguments to a denied method are
    // Unauthorized, not a decode fault.
    let deposit = farcall::rmi::catalogue()
        .find(|d| d.name == "Account")
        .unwrap()
        .methods
        .iter()
        .find(|m| m.name == "deposit")
        .unwrap()
        .word();
    let object = farcall::rmi::ObjectId::for_service("account");
    match conn.call_bytes(object, deposit, &[0xff; 16], None).await {
        Err(farcall::Error::Remote(Fault::Unauthorized(_))) => {}
        other => panic!("expected Unauthorized before decoding, got {other:?}"),
    }
    assert!(conn.is_open());

    // Ops may.
    let ops = with_token(OPS_TOKEN);
    let as_ops = ops
        .connect_service::<dyn Account>(&addr, "account")
        .await
        .unwrap();
    assert_eq!(as_ops.deposit(100).await.unwrap(), 100);
    assert_eq!(account.balance().await.unwrap(), 100);
    for n in [alice, ops, server] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorizer_alone_sees_no_principal_and_a_closure_will_do() {
    let ledger = Arc::new(Ledger::default());
    let server = Node::builder()
        .authorizer(|r: &Request<'_>| {
            if r.principal.is_none() && r.method.is_some_and(|m| m.name == "deposit") {
                Err("deposits need a signed-in caller".to_owned())
            } else {
                Ok(())
            }
        })
        .listen("tcp://127.0.0.1:0")
        .await
        .unwrap();
    let _: Remote<dyn Account> = server.serve("account", ledger.clone());
    let client = Node::new();
    let account = client
        .connect_service::<dyn Account>(server.local_addr().unwrap(), "account")
        .await
        .unwrap();
    assert_eq!(account.caller().await.unwrap(), "nobody");
    match account.deposit(5).await {
        Err(RemoteError::Unauthorized(why)) => assert_eq!(why, "deposits need a signed-in caller"),
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    // A call inside the node comes on no connection: not checked.
    let local = server
        .connect_service::<dyn Account>(server.local_addr().unwrap(), "account")
        .await
        .unwrap();
    assert_eq!(local.deposit(5).await.unwrap(), 5);
    assert_eq!(ledger.deposits.load(Ordering::SeqCst), 1);
    for n in [client, server] {
        n.shutdown().await;
    }
}

#[cfg(feature = "tls")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_allow_list_under_mutual_tls() {
    use common::pki::{Issued, Pki};
    use farcall::auth::CertificateNames;
    use farcall::tls::{ClientAuth, TlsConfig};

    let pki = Pki::new("test CA");
    let tls = |id: &Issued, auth| {
        TlsConfig::builder()
            .identity_pem(id.chain.as_bytes(), id.key.as_bytes())
            .trust_pem(pki.ca_pem.as_bytes())
            .client_auth(auth)
            .build()
            .unwrap()
    };
    let server = Node::builder()
        .tls(tls(
            &pki.issue("bank", &["localhost", "127.0.0.1"]),
            ClientAuth::Required,
        ))
        .authenticator(CertificateNames::allow(["alice.example"]))
        .listen("tls://127.0.0.1:0")
        .await
        .unwrap();
    let _: Remote<dyn Account> = server.serve("account", Arc::new(Ledger::default()));
    let addr = server.local_addr().unwrap();

    let alice = Node::builder()
        .tls(tls(
            &pki.issue("alice", &["alice.example"]),
            ClientAuth::None,
        ))
        .build();
    let account = alice
        .connect_service::<dyn Account>(&addr, "account")
        .await
        .unwrap();
    assert_eq!(account.caller().await.unwrap(), "alice.example");

    // A certificate from the same CA, but not on the list.
    let eve = Node::builder()
        .tls(tls(&pki.issue("eve", &["eve.example"]), ClientAuth::None))
        .build();
    match within(20, "a refused certificate", eve.connection(&addr)).await {
        Err(e) => assert!(
            e.to_string().contains("not on this node's allow-list"),
            "{e}"
        ),
        Ok(_) => panic!("a certificate off the list was accepted"),
    }
    for n in [alice, eve, server] {
        n.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_by_the_roles_the_trait_gives_its_methods() {
    let wipe = farcall::rmi::catalogue()
        .find(|d| d.name == "Account")
        .unwrap()
        .methods
        .iter()
        .find(|m| m.name == "wipe")
        .unwrap();
    assert_eq!(wipe.roles, ["admin"]);

    let ledger = Arc::new(Ledger::default());
    ledger.balance.store(50, Ordering::SeqCst);
    let server = Node::builder()
        .authenticator(
            Tokens::new()
                .allow(ALICE_TOKEN, "alice")
                .allow(OPS_TOKEN, "ops"),
        )
        .authorizer(
            AccessRules::new()
                .allow("*", "Account", "balance")
                .allow("ops", "*", "@admin"),
        )
        .listen("tcp://127.0.0.1:0")
        .await
        .unwrap();
    let _: Remote<dyn Account> = server.serve("account", ledger.clone());
    let addr = server.local_addr().unwrap();
    let alice = with_token(ALICE_TOKEN);
    let as_alice = alice
        .connect_service::<dyn Account>(&addr, "account")
        .await
        .unwrap();
    match as_alice.wipe().await {
        Err(RemoteError::Unauthorized(why)) => {
            assert_eq!(why, "`alice` may not call `Account::wipe`")
        }
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    let ops = with_token(OPS_TOKEN);
    let as_ops = ops
        .connect_service::<dyn Account>(&addr, "account")
        .await
        .unwrap();
    as_ops.wipe().await.unwrap();
    // `@admin` is not every method: ops may not deposit.
    assert!(matches!(
        as_ops.deposit(1).await,
        Err(RemoteError::Unauthorized(_))
    ));
    assert_eq!(as_alice.balance().await.unwrap(), 0);
    for n in [alice, ops, server] {
        n.shutdown().await;
    }
}
