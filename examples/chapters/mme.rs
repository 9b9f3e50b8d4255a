//! Chapter: mediated message exchange (`farcall::mme`: a broker between
//! the parties).
//!
//! A shop. A producer sends orders to the durable queue `orders`; nobody
//! takes them yet, and they wait. The broker restarts (closed and opened
//! again on its data directory): the orders are still there. A warehouse
//! answers stock requests through the queue `stock` (mediated RPC: a
//! `#[farcall::remote]` trait whose calls travel as messages), and a call
//! made before the warehouse is up waits in the queue until it is. Two
//! workers compete for the orders: each order goes to one of them, which
//! reserves its items through the warehouse and acknowledges it. An order
//! refused once (nack) is delivered again; one that can never be filled
//! is refused on every attempt and ends in the dead-letter queue
//! `orders.dlq`. Last, a price feed publishes on subjects such as
//! `prices.eu.acme`: a desk subscribed to `prices.eu.*` gets the European
//! prices, one subscribed to `prices.>` gets them all.
//!
//! Nobody here knows anybody else: producers, workers, the warehouse and
//! the desks know only the broker and the names of queues and subjects.
//!
//! Included with `#[path]` by `examples/mme_orders.rs` and
//! `examples/tour.rs`.

use std::collections::{BTreeMap, HashMap};
use std::error::Error;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use farcall::RemoteError;
use farcall::mme::{Broker, BrokerConfig, Queue, QueueConfig};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// The queue of orders.
pub(crate) const ORDERS: &str = "orders";
/// The queue the warehouse serves (mediated RPC).
pub(crate) const STOCK: &str = "stock";
/// Deliveries of an order before it moves to `orders.dlq`.
const MAX_DELIVER: u32 = 3;
/// How long a worker takes over an order (so that both get some).
const WORK: Duration = Duration::from_millis(20);
/// How long the chapter waits for anything before it gives up.
const PATIENCE: Duration = Duration::from_secs(10);

/// The configuration of the queue `orders`: on disk, three attempts.
fn orders_config() -> QueueConfig {
    QueueConfig::durable().max_deliver(MAX_DELIVER)
}

/// An order, as it travels in the queue.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Order {
    /// The order's number.
    pub(crate) no: u32,
    /// What is ordered.
    pub(crate) item: String,
    /// How many.
    pub(crate) qty: u32,
}

impl fmt::Display for Order {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "order #{} ({} x {})", self.no, self.qty, self.item)
    }
}

/// A price, as the feed publishes it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Price {
    /// The share.
    pub(crate) symbol: String,
    /// Its price, in cents.
    pub(crate) cents: u64,
}

/// Why the warehouse refused.
#[derive(Debug, Serialize, Deserialize, farcall::Schema)]
pub(crate) enum StockError {
    /// Not enough of the item.
    OutOfStock {
        /// The item.
        item: String,
        /// What is left of it.
        left: u32,
    },
    /// The call itself failed (deadline, broker gone, ...).
    Remote(RemoteError),
}

impl From<RemoteError> for StockError {
    fn from(e: RemoteError) -> Self {
        StockError::Remote(e)
    }
}

impl fmt::Display for StockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StockError::OutOfStock { item, left } => write!(f, "out of stock: {left} {item} left"),
            StockError::Remote(e) => write!(f, "stock call failed: {e}"),
        }
    }
}

impl Error for StockError {}

/// The warehouse's interface: an ordinary remote trait, served here
/// through a broker queue instead of a node.
#[farcall::remote]
pub(crate) trait Stock {
    /// How many of `item` are in stock.
    async fn level(&self, item: String) -> Result<u32, StockError>;
    /// Takes `qty` of `item` out of stock; returns what is left.
    async fn reserve(&self, item: String, qty: u32) -> Result<u32, StockError>;
}

/// The warehouse: a plain struct.
pub(crate) struct Warehouse {
    shelves: Mutex<HashMap<String, u32>>,
}

impl Warehouse {
    /// A warehouse with a few widgets, gadgets and gizmos.
    pub(crate) fn new() -> Self {
        let shelves = [("widget", 10), ("gadget", 5), ("gizmo", 3)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        Warehouse {
            shelves: Mutex::new(shelves),
        }
    }
}

#[farcall::remote]
impl Stock for Warehouse {
    async fn level(&self, item: String) -> Result<u32, StockError> {
        let shelves = self.shelves.lock().unwrap();
        let left = shelves.get(&item).copied().unwrap_or(0);
        println!("  stock    | level({item:?}) = {left}");
        Ok(left)
    }

    async fn reserve(&self, item: String, qty: u32) -> Result<u32, StockError> {
        let mut shelves = self.shelves.lock().unwrap();
        let left = shelves.entry(item.clone()).or_insert(0);
        if *left < qty {
            println!("  stock    | reserve({qty} x {item}): only {left} left, refused");
            return Err(StockError::OutOfStock { item, left: *left });
        }
        *left -= qty;
        println!("  stock    | reserve({qty} x {item}): done, {left} left");
        Ok(*left)
    }
}

/// The orders the producer sends. #3 meets a busy payment service on its
/// first delivery; #4 asks for more gizmos than there will ever be.
fn orders() -> Vec<Order> {
    [
        (1, "widget", 2),
        (2, "gadget", 1),
        (3, "widget", 3),
        (4, "gizmo", 1000),
        (5, "gadget", 2),
        (6, "widget", 1),
    ]
    .into_iter()
    .map(|(no, item, qty)| Order {
        no,
        item: item.to_owned(),
        qty,
    })
    .collect()
}

/// A directory that is removed when dropped: the broker's data.
#[derive(Debug)]
pub(crate) struct DataDir(PathBuf);

impl DataDir {
    /// A new, empty directory under the system's temporary directory.
    pub(crate) fn new(tag: &str) -> std::io::Result<DataDir> {
        let dir = std::env::temp_dir().join(format!(
            "farcall-{tag}-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&dir)?;
        Ok(DataDir(dir))
    }

    /// Its path.
    pub(crate) fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for DataDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Opens an embedded broker whose durable queues live in `data`.
fn open(data: &Path) -> Result<Broker, Box<dyn Error>> {
    Ok(Broker::open(BrokerConfig {
        data: Some(data.to_owned()),
        ..BrokerConfig::default()
    })?)
}

/// Everything in one process, with a broker embedded in it whose durable
/// queues live in `data`.
pub(crate) async fn one_process(data: &Path) -> Result<(), Box<dyn Error>> {
    let broker = open(data)?;
    println!(
        "  broker   | embedded in this process, durable queues in {}",
        data.display()
    );
    run(broker, Some(data)).await
}

/// The whole chapter on `broker`. With `restart`, the broker's data
/// directory, the broker is embedded and restarts once the orders are in.
pub(crate) async fn run(broker: Broker, restart: Option<&Path>) -> Result<(), Box<dyn Error>> {
    produce(&broker).await?;
    let broker = match restart {
        Some(data) => {
            // The broker stops and starts again: what was on disk comes back.
            broker.close().await?;
            drop(broker);
            println!("  broker   | closed; opened again on the same directory");
            let broker = open(data)?;
            let waiting = depth(&broker, ORDERS).await?;
            println!("  broker   | {waiting} orders waiting in {ORDERS:?} after the restart");
            if waiting < orders().len() as u64 {
                return Err(format!("only {waiting} orders survived the restart").into());
            }
            broker
        }
        None => {
            println!(
                "  broker   | (were the broker restarted now, the orders would still be there: \
                 they are on its disk)"
            );
            broker
        }
    };
    rest(&broker).await?;
    // Flushes an embedded broker's queues; nothing for a client.
    broker.close().await?;
    Ok(())
}

/// The producer: sends the orders to the durable queue, while no worker
/// is attached.
async fn produce(broker: &Broker) -> Result<(), Box<dyn Error>> {
    let queue: Queue<Order> = broker.queue_with(ORDERS, orders_config()).await?;
    println!(
        "  producer | queue {ORDERS:?}: durable, {MAX_DELIVER} attempts per message, then {ORDERS}.dlq"
    );
    for order in orders() {
        // Returns once the broker has the order on disk (under its fsync
        // policy).
        queue.send(&order).await?;
        println!("  producer | sent {order}");
    }
    Ok(())
}

/// The queue's depth (messages waiting for a consumer).
async fn depth(broker: &Broker, queue: &str) -> Result<u64, Box<dyn Error>> {
    let stats = broker.stats().await?;
    Ok(stats
        .queues
        .iter()
        .find(|q| q.name == queue)
        .map_or(0, |q| q.depth))
}

/// An order a worker filled and acknowledged.
struct Filled {
    /// The worker.
    worker: &'static str,
    /// The order's number.
    no: u32,
}

/// The warehouse, the workers, the dead letters, the price feed.
async fn rest(broker: &Broker) -> Result<(), Box<dyn Error>> {
    // Mediated RPC: the stub's calls go to the queue `stock`; whoever
    // serves that queue answers. Nobody does yet: the call waits there.
    let stock: Arc<dyn Stock> = broker.stub::<dyn Stock>(STOCK).await?.into_arc();
    let early = {
        let stock = stock.clone();
        tokio::spawn(async move { stock.level("widget".into()).await })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    println!(
        "  client   | asked the stock of widgets; no warehouse serves {STOCK:?} yet, the call waits"
    );
    println!("  stock    | the warehouse starts serving the queue {STOCK:?}");
    let _warehouse = broker
        .serve::<dyn Stock, _>(STOCK, Warehouse::new())
        .await?;
    let level = tokio::time::timeout(PATIENCE, early).await???;
    println!("  client   | answered once the warehouse came: {level} widgets");

    // Two workers compete for the orders: each takes one at a time
    // (prefetch 1), so they alternate.
    let queue: Queue<Order> = broker.queue_with(ORDERS, orders_config()).await?;
    let (done_tx, mut done_rx) = mpsc::unbounded_channel();
    let workers: Vec<JoinHandle<()>> = ["worker-1", "worker-2"]
        .into_iter()
        .map(|name| {
            let queue = queue.clone();
            let stock = stock.clone();
            let done = done_tx.clone();
            tokio::spawn(async move {
                if let Err(e) = work(name, queue, stock, done).await {
                    println!("  {name} | stopped: {e}");
                }
            })
        })
        .collect();
    drop(done_tx);

    // The dead letters: what no worker could handle, for a human to see.
    let dlq_name = format!("{ORDERS}.dlq");
    let dlq: Queue<Order> = broker
        .queue_with(&dlq_name, orders_config().max_deliver(0))
        .await?;
    let mut dead = dlq.consume().await?;

    let expected = orders().len() - 1;
    let mut by_worker: BTreeMap<&str, Vec<u32>> = BTreeMap::new();
    for _ in 0..expected {
        let Some(Filled { worker, no }) = tokio::time::timeout(PATIENCE, done_rx.recv()).await?
        else {
            return Err("the workers stopped".into());
        };
        by_worker.entry(worker).or_default().push(no);
    }
    let letter = tokio::time::timeout(PATIENCE, dead.next())
        .await?
        .ok_or("the dead-letter queue closed")??;
    println!(
        "  operator | {dlq_name}: {} after {MAX_DELIVER} attempts; acknowledged, to be looked at",
        letter.body()
    );
    letter.ack().await?;
    for w in workers {
        w.abort();
    }
    for (worker, nos) in &by_worker {
        println!("  shop     | {worker} filled orders {nos:?}");
    }
    if by_worker.len() < 2 {
        println!("  shop     | (one worker was quicker this time and took them all)");
    }

    let stats = broker.stats().await?;
    if let Some(q) = stats.queues.iter().find(|q| q.name == ORDERS) {
        println!(
            "  broker   | {ORDERS} since the broker started: {} acknowledged, {} redelivered, {} dead-lettered; {} waiting",
            q.acked, q.redelivered, q.dead_lettered, q.depth
        );
    }

    price_feed(broker).await
}

/// A worker: takes orders one at a time, reserves their items through the
/// warehouse (a mediated call), and acknowledges them.
async fn work(
    name: &'static str,
    queue: Queue<Order>,
    stock: Arc<dyn Stock>,
    done: mpsc::UnboundedSender<Filled>,
) -> Result<(), Box<dyn Error + Send + Sync>> {
    let mut consumer = queue.consume_with(1).await?;
    while let Some(delivery) = consumer.next().await {
        let delivery = delivery?;
        let order = delivery.body().clone();
        let attempt = delivery.attempt();
        tokio::time::sleep(WORK).await;
        if order.no == 3 && attempt == 1 {
            println!("  {name} | {order}, attempt {attempt}: the payment service is busy; nack");
            delivery.nack().await?;
            continue;
        }
        match stock.reserve(order.item.clone(), order.qty).await {
            Ok(left) => {
                delivery.ack().await?;
                println!("  {name} | {order}, attempt {attempt}: reserved ({left} left); ack");
                let _ = done.send(Filled {
                    worker: name,
                    no: order.no,
                });
            }
            Err(StockError::OutOfStock { .. }) => {
                let then = if attempt >= MAX_DELIVER {
                    "to the dead-letter queue"
                } else {
                    "to be tried again"
                };
                println!("  {name} | {order}, attempt {attempt}: out of stock; nack, {then}");
                delivery.nack().await?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// The price feed: publishers and subscribers on subjects.
async fn price_feed(broker: &Broker) -> Result<(), Box<dyn Error>> {
    // Subscribers first: a topic keeps nothing for those who come later.
    let mut eu = broker.subscribe::<Price>("prices.eu.*").await?;
    let mut all = broker.subscribe::<Price>("prices.>").await?;
    println!("  eu-desk  | subscribed to prices.eu.*   (`*`: exactly one token)");
    println!("  all-desk | subscribed to prices.>      (`>`: all the tokens that follow)");

    let ticks = [
        ("prices.eu.acme", "ACME", 10_250),
        ("prices.us.acme", "ACME", 10_310),
        ("prices.eu.globex", "GLBX", 4_120),
        ("prices.asia.initech", "INTC", 880),
    ];
    for (subject, symbol, cents) in ticks {
        // A typed handle on one subject; `broker.publish(subject, &msg)`
        // does the same.
        let topic = broker.topic::<Price>(subject)?;
        topic
            .publish(&Price {
                symbol: symbol.to_owned(),
                cents,
            })
            .await?;
        println!("  feed     | {subject}: {symbol} {}", money(cents));
    }

    for _ in 0..2 {
        let m = tokio::time::timeout(PATIENCE, eu.next())
            .await?
            .ok_or("the subscription ended")??;
        println!(
            "  eu-desk  | {}: {} {}",
            m.subject,
            m.body.symbol,
            money(m.body.cents)
        );
    }
    for _ in 0..ticks.len() {
        let m = tokio::time::timeout(PATIENCE, all.next())
            .await?
            .ok_or("the subscription ended")??;
        println!(
            "  all-desk | {}: {} {}",
            m.subject,
            m.body.symbol,
            money(m.body.cents)
        );
    }
    Ok(())
}

/// Cents as dollars.
fn money(cents: u64) -> String {
    format!("${}.{:02}", cents / 100, cents % 100)
}
