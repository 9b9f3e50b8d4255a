//! Chapter: remote method invocation, early binding: remote objects
//! (`farcall::Remote<dyn Trait>`).
//!
//! A canvas server holds shapes that its clients create. A client exports
//! its own `Circle` and `Square` objects and hands the canvas references to
//! them (`Remote<dyn Shape>`); the canvas calls `area()` on each, which is a
//! call back into the client. A client also subscribes a listener, which
//! the canvas calls on every change. References travel as arguments and
//! results like any other value: `canvas.largest()` returns a
//! `Remote<dyn Shape>`, and the client finds out at run time what it really
//! is by narrowing it to `Remote<dyn Circle>` or `Remote<dyn Square>`.
//!
//! The canvas also streams its changes (`farcall::Stream<CanvasEvent>`,
//! server streaming): it keeps the producing end of every stream it hands
//! out (a `StreamSender`) and sends each change to all of them. The client
//! opens a stream, adds two shapes, reads their two events with
//! `next().await` at its own pace, and drops the stream, which cancels it:
//! at the next change the canvas's send on that sender fails, and the
//! canvas forgets the sender.
//!
//! The client does not listen: every callback comes to it over the one
//! connection it dialed. A second client that does listen shows a
//! third-party reference: the first client gets a reference to the second
//! one's circle from the canvas, and dials its owner directly. That second
//! client keeps no handle on its circle: the canvas's reference holds a
//! lease on it, and the lease keeps it exported.
//!
//! Included with `#[path]` by `examples/rmi_shapes.rs` and
//! `examples/tour.rs`.

use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use farcall::node::{Address, NodeId};
use farcall::rmi::StreamSender;
use farcall::rpc::CallContext;
use farcall::{Node, Remote, RemoteError, Stream};
use serde::{Deserialize, Serialize};

// The interfaces ------------------------------------------------------------

/// Anything that can be drawn on the canvas.
#[farcall::remote]
pub(crate) trait Shape {
    /// Its area.
    async fn area(&self) -> Result<f64, RemoteError>;
    /// What its creator calls it.
    async fn name(&self) -> Result<String, RemoteError>;
}

/// A shape with a radius. A `Remote<dyn Circle>` upcasts to a
/// `Remote<dyn Shape>`, and a `Remote<dyn Shape>` narrows back to a
/// `Remote<dyn Circle>` exactly when the object is a circle.
#[farcall::remote]
pub(crate) trait Circle: Shape {
    /// Its radius.
    async fn radius(&self) -> Result<f64, RemoteError>;
}

/// A shape with a side.
#[farcall::remote]
pub(crate) trait Square: Shape {
    /// The length of its side.
    async fn side(&self) -> Result<f64, RemoteError>;
}

/// A change on the canvas, as its listeners hear of it.
#[derive(Clone, Debug, Serialize, Deserialize, farcall::Schema)]
pub(crate) enum CanvasEvent {
    /// A shape was added.
    Added {
        /// The shape's name.
        name: String,
        /// Its area, as its owner reported it.
        area: f64,
        /// Shapes on the canvas now.
        shapes: usize,
    },
    /// A shape was dropped because its owner could not be reached.
    Dropped {
        /// The shape's name.
        name: String,
        /// Shapes on the canvas now.
        shapes: usize,
    },
}

impl fmt::Display for CanvasEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CanvasEvent::Added { name, area, shapes } => {
                write!(f, "{name} added (area {area:.2}), {shapes} shape(s) now")
            }
            CanvasEvent::Dropped { name, shapes } => {
                write!(f, "{name} dropped (owner gone), {shapes} shape(s) now")
            }
        }
    }
}

/// Told of every change on the canvas: a callback, served by the client.
#[farcall::remote]
pub(crate) trait CanvasListener {
    /// Something changed.
    async fn changed(&self, event: CanvasEvent) -> Result<(), RemoteError>;
}

/// The canvas, served by name by the server.
#[farcall::remote]
pub(crate) trait Canvas {
    /// Puts a shape on the canvas: the canvas keeps the reference and asks
    /// the shape for its area. Returns how many shapes there are.
    async fn add(&self, shape: Remote<dyn Shape>) -> Result<usize, RemoteError>;
    /// Calls `listener` on every change from now on.
    async fn subscribe(&self, listener: Remote<dyn CanvasListener>) -> Result<(), RemoteError>;
    /// Stops calling `listener` (references compare by object identity).
    async fn unsubscribe(&self, listener: Remote<dyn CanvasListener>) -> Result<bool, RemoteError>;
    /// The sum of the shapes' areas, each asked of its owner.
    async fn total_area(&self) -> Result<f64, RemoteError>;
    /// The shape with the largest area, as a plain `Shape`.
    async fn largest(&self) -> Result<Option<Remote<dyn Shape>>, RemoteError>;
    /// Every shape on the canvas, whoever owns it.
    async fn shapes(&self) -> Result<Vec<Remote<dyn Shape>>, RemoteError>;

    /// Every change from now on, as a stream (server streaming): the
    /// client reads it at its own pace, the canvas never gets more than the
    /// stream's window ahead, and dropping it cancels it (the canvas's next
    /// send to it fails, and the canvas forgets it).
    async fn events(&self) -> Result<Stream<CanvasEvent>, RemoteError>;
}

// The server: the canvas ----------------------------------------------------

/// The name the canvas is served under.
pub(crate) const SERVICE: &str = "canvas";

/// How long the canvas waits for a call back into a client.
const CALLBACK_DEADLINE: Duration = Duration::from_secs(5);

/// A shape on the canvas: the reference, and the name it came with (to
/// report the shape once its owner has gone).
#[derive(Clone)]
struct Placed {
    shape: Remote<dyn Shape>,
    name: String,
}

/// The producing end of an event stream, and who opened it.
struct Feed {
    opened_by: String,
    tx: StreamSender<CanvasEvent>,
}

/// The canvas: references to shapes and listeners that live elsewhere, and
/// the producing ends of its event streams.
#[derive(Default)]
struct Board {
    shapes: Mutex<Vec<Placed>>,
    listeners: Mutex<Vec<Remote<dyn CanvasListener>>>,
    /// Held across sends, so every stream sees the changes in one order.
    streams: tokio::sync::Mutex<Vec<Feed>>,
}

fn caller() -> String {
    CallContext::current().map_or_else(|| "?".into(), |cx| cx.caller.to_string())
}

impl Board {
    /// Calls every listener and feeds every event stream; forgets the
    /// listeners that cannot be reached and the streams whose consumer has
    /// gone.
    async fn notify(&self, event: CanvasEvent) {
        let mut streams = self.streams.lock().await;
        let (mut open, mut gone) = (Vec::with_capacity(streams.len()), Vec::new());
        for feed in streams.drain(..) {
            // Waits while the consumer has no credit left (back-pressure);
            // fails once the consumer has dropped the stream or its
            // connection has died.
            match feed.tx.send(event.clone()).await {
                Ok(()) => open.push(feed),
                Err(e) => gone.push((feed.opened_by, e)),
            }
        }
        *streams = open;
        for (node, e) in gone {
            let why = match e {
                RemoteError::Closed => "its reader dropped it".to_owned(),
                e => e.to_string(),
            };
            println!(
                "  server | send on node {node}'s event stream failed ({why}): sender removed, {} stream(s) left",
                streams.len()
            );
        }
        drop(streams);

        let listeners = self.listeners.lock().unwrap().clone();
        for listener in listeners {
            let call = listener.with_deadline(CALLBACK_DEADLINE);
            if let Err(e) = call.changed(event.clone()).await {
                println!(
                    "  server | listener on node {} unreachable ({e}): unsubscribed",
                    listener.owner()
                );
                self.listeners.lock().unwrap().retain(|l| l != &listener);
            }
        }
    }

    /// Every shape with its area, asked of its owner. A shape whose owner
    /// cannot be reached is dropped. (Leases free an owner's objects when
    /// their holders go; a holder learns that an owner has gone by calling.)
    async fn measured(&self) -> Vec<(Remote<dyn Shape>, f64)> {
        let placed = self.shapes.lock().unwrap().clone();
        let mut measured = Vec::with_capacity(placed.len());
        for p in placed {
            match p.shape.with_deadline(CALLBACK_DEADLINE).area().await {
                Ok(area) => measured.push((p.shape, area)),
                Err(e) => {
                    let left = {
                        let mut shapes = self.shapes.lock().unwrap();
                        shapes.retain(|q| q.shape != p.shape);
                        shapes.len()
                    };
                    println!("  server | shape {:?} unreachable ({e}): dropped", p.name);
                    self.notify(CanvasEvent::Dropped {
                        name: p.name,
                        shapes: left,
                    })
                    .await;
                }
            }
        }
        measured
    }
}

#[farcall::remote]
impl Canvas for Board {
    async fn add(&self, shape: Remote<dyn Shape>) -> Result<usize, RemoteError> {
        // Two calls back into the shape's owner, before answering its call.
        let call = shape.with_deadline(CALLBACK_DEADLINE);
        let name = call.name().await?;
        let area = call.area().await?;
        println!(
            "  server | add from node {}: {name:?}, a {} owned by node {}; area (asked of it) {area:.2}",
            caller(),
            shape.interface_name().unwrap_or("shape"),
            shape.owner(),
        );
        let shapes = {
            let mut shapes = self.shapes.lock().unwrap();
            shapes.push(Placed {
                shape,
                name: name.clone(),
            });
            shapes.len()
        };
        self.notify(CanvasEvent::Added { name, area, shapes }).await;
        Ok(shapes)
    }

    async fn subscribe(&self, listener: Remote<dyn CanvasListener>) -> Result<(), RemoteError> {
        println!("  server | node {} subscribes a listener", caller());
        self.listeners.lock().unwrap().push(listener);
        Ok(())
    }

    async fn unsubscribe(&self, listener: Remote<dyn CanvasListener>) -> Result<bool, RemoteError> {
        let mut listeners = self.listeners.lock().unwrap();
        let before = listeners.len();
        listeners.retain(|l| l != &listener);
        println!("  server | node {} unsubscribes its listener", caller());
        Ok(listeners.len() < before)
    }

    async fn total_area(&self) -> Result<f64, RemoteError> {
        let measured = self.measured().await;
        println!("  server | total area of {} shape(s)", measured.len());
        Ok(measured.iter().map(|(_, area)| area).sum())
    }

    async fn largest(&self) -> Result<Option<Remote<dyn Shape>>, RemoteError> {
        let measured = self.measured().await;
        println!("  server | largest of {} shape(s)", measured.len());
        Ok(measured
            .into_iter()
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map(|(shape, _)| shape))
    }

    async fn events(&self) -> Result<Stream<CanvasEvent>, RemoteError> {
        let opened_by = caller();
        let (tx, events) = Stream::channel(16);
        let mut streams = self.streams.lock().await;
        streams.push(Feed {
            opened_by: opened_by.clone(),
            tx,
        });
        println!(
            "  server | node {opened_by} opens a stream of events ({} stream(s) open)",
            streams.len()
        );
        Ok(events)
    }

    async fn shapes(&self) -> Result<Vec<Remote<dyn Shape>>, RemoteError> {
        let shapes = self.shapes.lock().unwrap();
        println!("  server | the list of {} shape(s)", shapes.len());
        Ok(shapes.iter().map(|p| p.shape.clone()).collect())
    }
}

/// Starts a node on `addr` serving the canvas.
pub(crate) async fn start_server(addr: Address) -> farcall::Result<Node> {
    let node = Node::listen(addr).await?;
    let _: Remote<dyn Canvas> = node.serve(SERVICE, Board::default());
    println!(
        "  server | node {} listening on {}; service {SERVICE:?}",
        node.id(),
        node.local_addr().expect("listening")
    );
    Ok(node)
}

// The clients: their shapes and their listener ---------------------------

/// A circle, exported by the client that creates it.
struct Disc {
    name: String,
    radius: f64,
}

#[farcall::remote]
impl Shape for Disc {
    async fn area(&self) -> Result<f64, RemoteError> {
        Ok(std::f64::consts::PI * self.radius * self.radius)
    }
    async fn name(&self) -> Result<String, RemoteError> {
        Ok(self.name.clone())
    }
}

#[farcall::remote]
impl Circle for Disc {
    async fn radius(&self) -> Result<f64, RemoteError> {
        Ok(self.radius)
    }
}

/// A square, exported by the client that creates it.
struct Tile {
    name: String,
    side: f64,
}

#[farcall::remote]
impl Shape for Tile {
    async fn area(&self) -> Result<f64, RemoteError> {
        Ok(self.side * self.side)
    }
    async fn name(&self) -> Result<String, RemoteError> {
        Ok(self.name.clone())
    }
}

#[farcall::remote]
impl Square for Tile {
    async fn side(&self) -> Result<f64, RemoteError> {
        Ok(self.side)
    }
}

/// The client's listener: prints what the canvas tells it.
struct Printer;

#[farcall::remote]
impl CanvasListener for Printer {
    async fn changed(&self, event: CanvasEvent) -> Result<(), RemoteError> {
        println!("  client | listener called back: {event}");
        Ok(())
    }
}

/// What a shape really is, found out at run time by narrowing the
/// reference (no call is needed to narrow; the calls then go to the
/// object's owner, wherever it is).
async fn describe(shape: &Remote<dyn Shape>) -> Result<String, RemoteError> {
    let name = shape.name().await?;
    if let Some(c) = shape.narrow::<dyn Circle>() {
        Ok(format!(
            "{name:?}, a circle of radius {}",
            c.radius().await?
        ))
    } else if let Some(s) = shape.narrow::<dyn Square>() {
        Ok(format!("{name:?}, a square of side {}", s.side().await?))
    } else {
        Ok(format!(
            "{name:?}, a shape of area {:.2}",
            shape.area().await?
        ))
    }
}

/// Who owns `shape`, as `me` sees it.
fn whose(shape: &Remote<dyn Shape>, me: NodeId) -> String {
    if shape.owner() == me {
        "this client's own".into()
    } else {
        let at: Vec<String> = shape.owner_addrs().iter().map(|a| a.to_string()).collect();
        format!(
            "node {}'s, a third party dialed directly at {}",
            shape.owner(),
            at.join(", ")
        )
    }
}

/// Another client, which listens on `listen` and puts a circle of its own
/// on the canvas. It keeps no handle on the circle: the canvas's reference
/// holds a lease on it, which keeps it exported while the canvas has it.
pub(crate) async fn start_other(
    canvas_addr: &Address,
    listen: Address,
) -> Result<Node, Box<dyn std::error::Error>> {
    let node = Node::listen(listen).await?;
    let canvas: Remote<dyn Canvas> = node.connect_service(canvas_addr, SERVICE).await?;
    let circle: Remote<dyn Circle> = node.export(Disc {
        name: format!("circle of {}", node.id()),
        radius: 1.0,
    });
    println!(
        "  other  | node {} listening on {} adds a circle and drops its own handle on it",
        node.id(),
        node.local_addr().expect("listening")
    );
    canvas.add(circle.upcast()).await?;
    Ok(node)
}

/// The client's side: exports shapes and a listener, hands them to the
/// canvas, and looks at what the canvas gives back.
pub(crate) async fn run_client(addr: Address) -> Result<(), Box<dyn std::error::Error>> {
    // This node does not listen: the canvas reaches its objects over the
    // connection the client dials.
    let node = Node::new();
    println!(
        "  client | node {} (not listening) connects to {addr}",
        node.id()
    );
    let canvas: Remote<dyn Canvas> = node.connect_service(&addr, SERVICE).await?;

    // A callback: a local object passed by reference.
    let listener: Remote<dyn CanvasListener> = node.export(Printer);
    canvas.subscribe(listener.clone()).await?;
    // The same changes as a stream (a result of a remote method): opened
    // now, read below. The canvas sends each change to it as it happens;
    // the items wait here, within the stream's credit window.
    let mut events: Stream<CanvasEvent> = canvas.events().await?;

    // Shapes created here, exported, and passed to the canvas as
    // `Remote<dyn Shape>`; the canvas calls them back to learn their area.
    let circle: Remote<dyn Circle> = node.export(Disc {
        name: format!("circle of {}", node.id()),
        radius: 2.0,
    });
    let square: Remote<dyn Square> = node.export(Tile {
        name: format!("square of {}", node.id()),
        side: 3.0,
    });
    let n = canvas.add(circle.clone().upcast::<dyn Shape>()).await?;
    println!("  client | add(circle) = {n} shape(s)");
    let n = canvas.add(square.clone().upcast::<dyn Shape>()).await?;
    println!("  client | add(square) = {n} shape(s)");

    // Two changes, two events: read them now, at this client's pace.
    for _ in 0..2 {
        match events.next().await {
            Some(event) => println!("  client | events.next() = {}", event?),
            None => return Err("the canvas ended the stream of events".into()),
        }
    }
    // Enough: dropping the stream cancels it. The canvas learns it at its
    // next change, when its send on this stream fails.
    drop(events);
    println!("  client | dropped the stream of events (cancelled)");
    let dot: Remote<dyn Circle> = node.export(Disc {
        name: format!("dot of {}", node.id()),
        radius: 0.5,
    });
    let n = canvas.add(dot.clone().upcast::<dyn Shape>()).await?;
    println!(
        "  client | add(dot) = {n} shape(s): told to the listener, no longer to the dropped stream"
    );
    println!(
        "  client | total_area() = {:.2} (the canvas asked every owner)",
        canvas.total_area().await?
    );

    // A reference as a result: the largest shape, typed only as a Shape.
    // Narrowing finds out at run time what it is.
    if let Some(s) = canvas.largest().await? {
        println!(
            "  client | largest() = a Remote<dyn Shape> to a {} object, {} (called without a socket: {})",
            s.interface_name().unwrap_or("unknown"),
            whose(&s, node.id()),
            s.is_local()
        );
        if let Some(c) = s.narrow::<dyn Circle>() {
            println!(
                "  client | narrow::<dyn Circle>() succeeds: radius {}",
                c.radius().await?
            );
        }
        println!(
            "  client | narrow::<dyn Square>() = {}; the same object as the circle exported here: {}",
            if s.narrow::<dyn Square>().is_some() {
                "Some"
            } else {
                "None"
            },
            s == circle.clone().upcast::<dyn Shape>()
        );
    }

    // Every shape on the canvas, whoever owns it. Another client's shape
    // is a third-party reference: this node dials its owner directly.
    for s in canvas.shapes().await? {
        match describe(&s).await {
            Ok(what) => println!("  client | shape: {what}; {}", whose(&s, node.id())),
            Err(e) => println!("  client | shape of node {}: unreachable ({e})", s.owner()),
        }
    }
    let open = node.connections().len();
    println!(
        "  client | connections open: {open}; every callback came over the one to the canvas{}",
        if open > 1 {
            ", the others reach third parties"
        } else {
            ""
        }
    );

    let removed = canvas.unsubscribe(listener).await?;
    println!("  client | unsubscribe(listener) = {removed}");
    node.shutdown().await;
    Ok(())
}

/// The canvas, another client that listens (at `other`), and the client,
/// all in one process.
pub(crate) async fn one_process(
    addr: Address,
    other: Address,
) -> Result<(), Box<dyn std::error::Error>> {
    let server = start_server(addr).await?;
    let addr = server.local_addr().expect("listening");
    let other = start_other(&addr, other).await?;
    run_client(addr).await?;
    other.shutdown().await;
    server.shutdown().await;
    Ok(())
}
