//! Chapter: direct message exchange, asymmetric (`farcall::dme::{Server, Client}`).
//!
//! A server waits for requests and answers each; a client sends a request
//! and waits for the answer. The server here is a small key-value store.
//!
//! Included with `#[path]` by `examples/dme_client_server.rs` and
//! `examples/tour.rs`, so that the tour runs exactly what the example runs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use farcall::dme::{Client, Server};
use farcall::node::Address;
use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

/// What a client may ask the store. Any serde type will do.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Request {
    /// Stores `value` under `key`.
    Put { key: String, value: String },
    /// Reads the value under `key`.
    Get { key: String },
    /// Answers after `millis` milliseconds (shows requests in flight together).
    Sleep { millis: u64 },
}

/// What the store answers.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum Response {
    /// The value was stored; this was there before.
    Stored { previous: Option<String> },
    /// The value under the key, if any.
    Value(Option<String>),
    /// The sleep is over.
    Slept,
}

/// Starts the store on `addr` (port 0 picks a free port).
pub(crate) async fn start_server(addr: Address) -> farcall::Result<Server<Request, Response>> {
    let store: Arc<Mutex<BTreeMap<String, String>>> = Arc::default();
    // The handler runs once per request, concurrently for requests in flight.
    let server = Server::listen(addr, move |req: Request| {
        let store = store.clone();
        async move {
            println!("  server | <- {req:?}");
            match req {
                Request::Put { key, value } => Response::Stored {
                    previous: store.lock().unwrap().insert(key, value),
                },
                Request::Get { key } => Response::Value(store.lock().unwrap().get(&key).cloned()),
                Request::Sleep { millis } => {
                    tokio::time::sleep(Duration::from_millis(millis)).await;
                    Response::Slept
                }
            }
        }
    })
    .await?;
    println!("  server | listening on {}", server.local_addr());
    Ok(server)
}

/// Connects to the store at `addr` and walks through what a client can do.
pub(crate) async fn run_client(addr: Address) -> farcall::Result<()> {
    let client = Client::<Request, Response>::connect(&addr)
        .await?
        .with_deadline(Duration::from_secs(10));
    println!(
        "  client | connected to {addr}; the server's node id is {}",
        client.connection().peer_id()
    );

    println!("  client | one request at a time: send, then wait for the answer");
    let put = Request::Put {
        key: "colour".into(),
        value: "blue".into(),
    };
    println!("  client | -> {put:?}");
    println!("  client | <- {:?}", client.request(put).await?);
    let get = Request::Get {
        key: "colour".into(),
    };
    println!("  client | -> {get:?}");
    println!("  client | <- {:?}", client.request(get).await?);

    println!("  client | five requests in flight at once on one connection, 200 ms each");
    let started = Instant::now();
    let mut in_flight = JoinSet::new();
    for _ in 0..5 {
        let client = client.clone();
        in_flight.spawn(async move { client.request(Request::Sleep { millis: 200 }).await });
    }
    let mut answered = 0;
    while let Some(answer) = in_flight.join_next().await {
        answer.expect("the request task")?;
        answered += 1;
    }
    println!(
        "  client | <- {answered} answers after {} ms in all (one after another would take 1000 ms)",
        started.elapsed().as_millis()
    );

    println!("  client | a one-way message: `send` returns once it is queued; no answer");
    client
        .send(Request::Put {
            key: "note".into(),
            value: "sent one-way".into(),
        })
        .await?;
    let note = read_until_present(&client, "note").await?;
    println!("  client | the server applied it: note = {note:?}");

    println!("  client | a request whose deadline (100 ms) passes before the server answers");
    let slow = Request::Sleep { millis: 1000 };
    match client
        .request_within(slow, Some(Duration::from_millis(100)))
        .await
    {
        Err(e @ farcall::Error::DeadlineExceeded(_)) => {
            println!("  client | <- error, as expected: {e} (the server drops the handler)")
        }
        other => println!("  client | <- unexpected: {other:?}"),
    }

    client.close().await;
    println!("  client | closed the connection");
    Ok(())
}

/// Reads `key` until a value is there: a one-way message has no answer
/// that would say when it was handled.
async fn read_until_present(
    client: &Client<Request, Response>,
    key: &str,
) -> farcall::Result<Option<String>> {
    for _ in 0..100 {
        if let Response::Value(Some(v)) = client.request(Request::Get { key: key.into() }).await? {
            return Ok(Some(v));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Ok(None)
}

/// Server and client in one process, on `addr`.
pub(crate) async fn one_process(addr: Address) -> farcall::Result<()> {
    let server = start_server(addr).await?;
    run_client(server.local_addr().clone()).await?;
    server.shutdown().await;
    println!("  server | shut down");
    Ok(())
}
