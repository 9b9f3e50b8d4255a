//! The farcall columns: `farcall_embedded`, the broker in this process,
//! and `farcall_standalone`, the same broker served on a node over TCP
//! with every client on a node of its own (as nats clients each have
//! their connection). Both keep durable queues in a temporary directory
//! with the broker's default fsync policy. `farcall_nats` is the same API
//! on the `nats` column's server (`Broker::connect("nats://...")`).
//! Messages are typed `Bytes` (postcard: a length and the bytes), the
//! typed API's cheapest type for opaque payloads, as the nats column
//! moves bytes.

use std::sync::Arc;

use bytes::Bytes;

use farcall::Node;
use farcall::mme::{Broker, BrokerConfig, QueueConfig};
use farcall::node::Address;

use super::{Calc, Calculator, Column, Flow, Op, PAYLOAD, PREFETCH, Running, TempDir, op};

/// One farcall broker, and how its clients reach it.
#[derive(Debug)]
pub(super) struct Farcall {
    system: &'static str,
    transport: &'static str,
    broker: Broker,
    /// Where the broker is served (standalone), with the node serving it.
    served: Option<(Node, Address)>,
    /// The NATS server the broker runs on (`farcall_nats`).
    nats: Option<String>,
    _data: TempDir,
}

impl Farcall {
    fn open(data: &TempDir) -> Broker {
        Broker::open(BrokerConfig {
            data: Some(data.path().to_path_buf()),
            ..Default::default()
        })
        .expect("open broker")
    }

    /// The broker in this process: every client is the broker itself.
    pub(super) async fn embedded() -> Farcall {
        let data = TempDir::new("broker-embedded");
        Farcall {
            system: "farcall_embedded",
            transport: "local",
            broker: Farcall::open(&data),
            served: None,
            nats: None,
            _data: data,
        }
    }

    /// The broker served on a node over TCP loopback; clients connect.
    pub(super) async fn standalone() -> Farcall {
        let data = TempDir::new("broker-standalone");
        let broker = Farcall::open(&data);
        let node = Node::listen("tcp://127.0.0.1:0").await.expect("listen");
        broker.expose(&node).expect("expose");
        let addr = node.local_addr().expect("addr");
        Farcall {
            system: "farcall_standalone",
            transport: "tcp",
            broker,
            served: Some((node, addr)),
            nats: None,
            _data: data,
        }
    }

    /// farcall's broker API on a NATS server (`nats://` address): every
    /// client connects to it, as the `nats` column's clients do.
    pub(super) async fn on_nats(url: &str) -> Farcall {
        let broker = Broker::connect(url).await.expect("connect to nats");
        Farcall {
            system: "farcall_nats",
            transport: "tcp",
            broker,
            served: None,
            nats: Some(url.to_owned()),
            _data: TempDir::new("broker-nats"),
        }
    }

    /// A client of the broker: a new connection from a node of its own
    /// when the broker is served, else the broker itself.
    async fn client(&self) -> Broker {
        if let Some(url) = &self.nats {
            return Broker::connect(url.as_str()).await.expect("connect");
        }
        match &self.served {
            Some((_, addr)) => Broker::connect(addr.clone()).await.expect("connect"),
            None => self.broker.clone(),
        }
    }

    /// Closes the broker and stops serving it.
    pub(super) async fn close(self) {
        self.broker.close().await.expect("close broker");
        if let Some((node, _)) = self.served {
            node.shutdown().await;
        }
    }
}

impl Column for Farcall {
    fn system(&self) -> &'static str {
        self.system
    }

    fn transport(&self) -> &'static str {
        self.transport
    }

    async fn topic(
        &self,
        subject: &str,
        filter: &str,
        subscribers: usize,
        flow: &Arc<Flow>,
    ) -> (Op, Running) {
        let mut running = Running::default();
        for i in 0..subscribers {
            let client = self.client().await;
            let mut sub = client.subscribe::<Bytes>(filter).await.expect("subscribe");
            let flow = flow.clone();
            running.spawn(async move {
                while let Some(m) = sub.next().await {
                    m.expect("message");
                    flow.receive(i);
                }
            });
            running.keep(client);
        }
        let publisher = self.client().await;
        let subject: Arc<str> = subject.into();
        let msg = Arc::new(Bytes::from(vec![0x5a_u8; PAYLOAD]));
        let publish = op(move || {
            let (b, s, m) = (publisher.clone(), subject.clone(), msg.clone());
            async move {
                b.publish(&s, &*m).await.expect("publish");
            }
        });
        (publish, running)
    }

    async fn queue(&self, name: &str, durable: bool, flow: &Arc<Flow>) -> (Op, Running) {
        let mut running = Running::default();
        let config = if durable {
            QueueConfig::durable()
        } else {
            QueueConfig::default()
        };
        let consuming = self.client().await;
        let mut consumer = consuming
            .queue_with::<Bytes>(name, config.clone())
            .await
            .expect("queue")
            .consume_with(PREFETCH)
            .await
            .expect("consume");
        let flow = flow.clone();
        running.spawn(async move {
            // Acks are confirmed (a round trip to a remote broker): they
            // go concurrently, as the nats column's go without waiting.
            while let Some(d) = consumer.next().await {
                let d = d.expect("delivery");
                tokio::spawn(async move { d.ack().await.expect("ack") });
                flow.receive(0);
            }
        });
        running.keep(consuming);
        let q = self
            .client()
            .await
            .queue_with::<Bytes>(name, config)
            .await
            .expect("queue");
        let msg = Arc::new(Bytes::from(vec![0x5a_u8; PAYLOAD]));
        let send = op(move || {
            let (q, m) = (q.clone(), msg.clone());
            async move {
                q.send(&m).await.expect("send");
            }
        });
        (send, running)
    }

    async fn rpc(&self) -> (Op, Running) {
        let mut running = Running::default();
        let server = self.client().await;
        let serving = server
            .serve::<dyn Calculator, _>("calc", Calc)
            .await
            .expect("serve");
        running.keep(serving);
        running.keep(server);
        let calc: Arc<dyn Calculator> = self
            .client()
            .await
            .stub::<dyn Calculator>("calc")
            .await
            .expect("stub")
            .into_arc();
        let call = op(move || {
            let c = calc.clone();
            async move {
                assert_eq!(c.add(1, 2).await.expect("call"), 3);
            }
        });
        (call, running)
    }
}
