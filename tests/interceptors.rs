//! Interceptors: a rate limiter and an auth check on the server, in a few
//! lines each; a client-side interceptor that adds metadata and one that
//! refuses before anything is sent; timing through `finished`.
//!
//! Time-outs here only keep a broken build from hanging; nothing asserts
//! speed.

mod common;

use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use farcall::observe::{CallInfo, InterceptFuture, Interceptor, Metadata, Side};
use farcall::rpc::{CallContext, Fault};
use farcall::{Node, RemoteError};

use common::wait::within;

/// A greeter.
#[farcall::remote]
pub trait Greet {
    /// Hello, with the caller's tenant if it sent one.
    async fn hello(&self) -> Result<String, RemoteError>;
}

struct Greeter;

#[farcall::remote]
impl Greet for Greeter {
    async fn hello(&self) -> Result<String, RemoteError> {
        let cx = CallContext::current().expect("inside a call");
        let who = cx
            .metadata()
            .get_str("user")
            .unwrap_or("stranger")
            .to_owned();
        Ok(format!("hello, {who}"))
    }
}

/// At most `max` calls, then `Rejected`.
struct RateLimit {
    max: u32,
    seen: AtomicU32,
}

impl Interceptor for RateLimit {
    fn intercept<'a>(&'a self, call: &'a mut CallInfo) -> InterceptFuture<'a> {
        Box::pin(async move {
            if self.seen.fetch_add(1, Ordering::AcqRel) >= self.max {
                return Err(Fault::Rejected(format!(
                    "rate limit reached for {}",
                    call.method
                )));
            }
            Ok(())
        })
    }
}

/// Lets through only calls whose metadata carries the right token; names
/// the user for the handler.
struct TokenCheck;

impl Interceptor for TokenCheck {
    fn intercept<'a>(&'a self, call: &'a mut CallInfo) -> InterceptFuture<'a> {
        Box::pin(async move {
            match call.metadata.get_str("authorization") {
                Some("Bearer open-sesame") => {
                    call.metadata.remove("authorization");
                    call.metadata
                        .insert("user", "ali")
                        .map_err(|e| Fault::Rejected(e.to_string()))?;
                    Ok(())
                }
                _ => Err(Fault::Unauthorized("a valid token is needed".into())),
            }
        })
    }
}

/// Adds the token to every outgoing call.
struct AddToken;

impl Interceptor for AddToken {
    fn intercept<'a>(&'a self, call: &'a mut CallInfo) -> InterceptFuture<'a> {
        Box::pin(async move {
            assert_eq!(call.side, Side::Client);
            call.metadata
                .insert("authorization", "Bearer open-sesame")
                .map_err(|e| Fault::Rejected(e.to_string()))?;
            Ok(())
        })
    }
}

/// Records what it timed.
#[derive(Default)]
struct Timer {
    timed: Mutex<Vec<(&'static str, &'static str, bool, Duration)>>,
}

impl Interceptor for &'static Timer {
    fn intercept<'a>(&'a self, _call: &'a mut CallInfo) -> InterceptFuture<'a> {
        Box::pin(async { Ok(()) })
    }
    fn finished(&self, call: &CallInfo, outcome: Result<(), &Fault>, elapsed: Duration) {
        self.timed
            .lock()
            .unwrap()
            .push((call.interface, call.method, outcome.is_ok(), elapsed));
    }
}

#[tokio::test]
async fn a_server_limits_and_checks_its_callers() {
    within(20, "the intercepted calls", async {
        let server = Node::builder()
            .intercept(TokenCheck)
            .intercept(RateLimit {
                max: 2,
                seen: AtomicU32::new(0),
            })
            .listen("tcp://127.0.0.1:0")
            .await
            .unwrap();
        server.serve::<dyn Greet, _>("greet", Greeter);
        let addr = server.local_addr().unwrap();

        // Without the token: refused by the first interceptor, which the
        // rate limiter never sees.
        let anonymous = Node::new();
        let stub = anonymous
            .connect_service::<dyn Greet>(addr.clone(), "greet")
            .await
            .unwrap();
        let e = stub.hello().await.unwrap_err();
        assert!(matches!(e, RemoteError::Unauthorized(_)), "{e}");
        assert!(e.to_string().contains("a valid token is needed"), "{e}");
        // A token in the stub's own metadata works.
        let with_token =
            stub.with_metadata(Metadata::new().with("authorization", "Bearer open-sesame"));
        assert_eq!(with_token.hello().await.unwrap(), "hello, ali");

        // A client whose interceptor adds the token.
        let client = Node::builder().intercept_outgoing(AddToken).build();
        let stub = client
            .connect_service::<dyn Greet>(addr, "greet")
            .await
            .unwrap();
        assert_eq!(stub.hello().await.unwrap(), "hello, ali");
        // Two calls were let through: the third is over the limit.
        let e = stub.hello().await.unwrap_err();
        assert!(
            e.to_string().contains("rate limit reached for hello"),
            "{e}"
        );
        anonymous.shutdown().await;
        client.shutdown().await;
        server.shutdown().await;
    })
    .await;
}

/// A client-side refusal: the call is never sent.
struct Offline;

impl Interceptor for Offline {
    fn intercept<'a>(&'a self, _call: &'a mut CallInfo) -> InterceptFuture<'a> {
        Box::pin(async { Err(Fault::Rejected("this client is offline".into())) })
    }
}

#[tokio::test]
async fn a_client_may_refuse_and_time_its_calls() {
    within(20, "the timed calls", async {
        static TIMER: std::sync::LazyLock<Timer> = std::sync::LazyLock::new(Timer::default);
        let server = Node::builder()
            .intercept(&*TIMER)
            .listen("tcp://127.0.0.1:0")
            .await
            .unwrap();
        server.serve::<dyn Greet, _>("greet", Greeter);
        let addr = server.local_addr().unwrap();

        let client = Node::builder().intercept_outgoing(&*TIMER).build();
        let stub = client
            .connect_service::<dyn Greet>(addr.clone(), "greet")
            .await
            .unwrap();
        assert_eq!(stub.hello().await.unwrap(), "hello, stranger");
        let timed = TIMER.timed.lock().unwrap().clone();
        // The server's record comes before the client's.
        assert_eq!(timed.len(), 2, "{timed:?}");
        for (interface, method, ok, _) in &timed {
            assert_eq!((*interface, *method, *ok), ("Greet", "hello", true));
        }

        let offline = Node::builder().intercept_outgoing(Offline).build();
        let stub = offline
            .connect_service::<dyn Greet>(addr, "greet")
            .await
            .unwrap();
        let e = stub.hello().await.unwrap_err();
        assert_eq!(e.to_string(), "rejected: this client is offline");
        // Nothing reached the server.
        assert_eq!(TIMER.timed.lock().unwrap().len(), 2);
        offline.shutdown().await;
        client.shutdown().await;
        server.shutdown().await;
    })
    .await;
}
