//! `broker serve`, `broker stats`, `pub`, `sub`, `send` and `recv` (the
//! `queue` commands are in `queue.rs`).

use farcall::Node;
use farcall::mme::{Broker, BrokerConfig, BrokerError, Fsync, QueueConfig, SubscribeOptions};
use serde_json::Value;

use crate::args::{BrokerArg, BrokerServeArgs, PubArgs, RecvArgs, SendArgs, StatsArgs, SubArgs};
use crate::render::{json_argument, message_line, stats_text};
use crate::security;
use crate::{CALL_DEADLINE, Fail, one_line, print_out, reach, target_address};

/// The environment variable that names the broker when `--broker` is not
/// given.
pub(crate) const BROKER_ENV: &str = "FARCALL_BROKER";

/// The most messages `recv` holds unacknowledged (the broker's largest
/// prefetch over a connection).
pub(crate) const RECV_MAX_HELD: u64 = 1024;

/// The broker named by `--broker` or `FARCALL_BROKER`, from a node of this
/// process that only dials. Close both ([`Broker::close`],
/// [`Node::shutdown`]) before exiting: that sends what is still queued (a
/// publish is one-way).
pub(crate) async fn connect_broker(target: &BrokerArg) -> Result<(Node, Broker), Fail> {
    let addr = target_address(
        &target.broker,
        "--broker",
        BROKER_ENV,
        "broker",
        "tcp://127.0.0.1:7500",
    )?;
    let node = security::node().build();
    let broker = reach("the broker", &addr, Broker::connect_on(&node, &addr)).await?;
    Ok((node, broker))
}

/// Runs `work` with the broker, then closes the node gracefully whatever
/// the outcome.
pub(crate) async fn with_broker<F, Fut>(target: &BrokerArg, work: F) -> Result<(), Fail>
where
    F: FnOnce(Broker) -> Fut,
    Fut: Future<Output = Result<(), Fail>>,
{
    let (node, broker) = connect_broker(target).await?;
    let result = work(broker.clone()).await;
    // A client's close flushes what it still holds (NATS); then the
    // node's connections close gracefully, sending what is queued.
    let closed = call(broker.close()).await;
    node.shutdown().await;
    result.and(closed)
}

/// A call to the broker, within [`CALL_DEADLINE`].
pub(crate) async fn call<T>(f: impl Future<Output = Result<T, BrokerError>>) -> Result<T, Fail> {
    match tokio::time::timeout(CALL_DEADLINE, f).await {
        Ok(r) => r.map_err(broker_failure),
        Err(_) => Err(Fail::new(format!(
            "the broker gave no answer within {} s",
            CALL_DEADLINE.as_secs()
        ))),
    }
}

pub(crate) async fn publish(args: PubArgs) -> Result<(), Fail> {
    let payload = json_argument(&args.json)?;
    // The publish is one-way: the graceful close in `with_broker` sends
    // it before the process exits.
    with_broker(&args.target, |broker| async move {
        call(broker.publish_raw(&args.subject, payload.into())).await
    })
    .await
}

pub(crate) async fn subscribe(args: SubArgs) -> Result<(), Fail> {
    with_broker(&args.target, |broker| async move {
        let mut sub =
            call(broker.subscribe_raw(&args.pattern, SubscribeOptions::default())).await?;
        eprintln!("subscribed to {}", args.pattern);
        let mut seen = 0u64;
        while args.count.is_none_or(|n| seen < n) {
            let msg = match sub.next().await {
                Some(Ok(m)) => m,
                Some(Err(e)) => return Err(broker_failure(e)),
                None => {
                    return Err(Fail::new(format!(
                        "the subscription to {} ended: the broker closed",
                        args.pattern
                    )));
                }
            };
            print_out(&message_line(
                args.json,
                "subject",
                &msg.subject,
                &msg.body,
                &[],
            ))?;
            seen += 1;
        }
        Ok(())
    })
    .await
}

pub(crate) async fn send(args: SendArgs) -> Result<(), Fail> {
    let payload = json_argument(&args.json)?;
    let args = &args;
    with_broker(&args.target, |broker| async move {
        call(send_to(&broker, args, payload)).await
    })
    .await
}

/// Sends `payload` to the queue of `args`: created with the
/// configuration its flags give if it does not exist; an existing one
/// must agree with the flags given (its other settings are whatever they
/// are).
async fn send_to(broker: &Broker, args: &SendArgs, payload: Vec<u8>) -> Result<(), BrokerError> {
    let given = |mut c: QueueConfig| {
        if args.durable {
            c.durable = true;
        }
        if let Some(d) = args.ack_wait {
            c.ack_wait = d;
        }
        if let Some(n) = args.max_deliver {
            c.max_deliver = n;
        }
        if let Some(n) = args.max_depth {
            c.max_depth = n;
        }
        c
    };
    let flags = args.durable
        || args.ack_wait.is_some()
        || args.max_deliver.is_some()
        || args.max_depth.is_some();
    let queue = if !flags {
        broker.queue_raw(&args.queue, None).await?
    } else {
        match broker.existing_queue_raw(&args.queue).await {
            Ok(q) => {
                let asked = given(q.config().clone());
                if asked != *q.config() {
                    return Err(BrokerError::QueueConfigMismatch {
                        name: args.queue.clone(),
                        existing: q.config().clone(),
                        asked,
                    });
                }
                q
            }
            Err(BrokerError::NoSuchQueue { .. }) => {
                let config = given(QueueConfig::default());
                broker.queue_raw(&args.queue, Some(config)).await?
            }
            Err(e) => return Err(e),
        }
    };
    queue.send(&payload.into()).await
}

pub(crate) async fn recv(args: RecvArgs) -> Result<(), Fail> {
    let count = args.count.unwrap_or(1);
    if !args.ack && count > RECV_MAX_HELD {
        return Err(Fail::usage(format!(
            "--count {count}: without --ack, recv holds at most {RECV_MAX_HELD} messages"
        )));
    }
    with_broker(&args.target, |broker| async move {
        // Never created here: a queue that is not there is an error.
        let queue = call(broker.existing_queue_raw(&args.queue)).await?;
        // A consumer the broker hands exactly `count` deliveries: the
        // message after them is not delivered here (not taken, no attempt
        // counted). Without --ack they are held until the consumer goes,
        // which gives them back (a nack would have them delivered to this
        // consumer again, counting an attempt each time).
        let mut consumer = call(queue.consume_up_to(count)).await?;
        let deadline = args.timeout.map(|t| tokio::time::Instant::now() + t);
        let mut got = 0u64;
        while got < count {
            let next = match deadline {
                Some(d) => match tokio::time::timeout_at(d, consumer.next()).await {
                    Ok(next) => next,
                    Err(_) => {
                        let secs = args.timeout.unwrap_or_default().as_secs_f64();
                        return Err(Fail::new(if got == 0 {
                            format!("no message on queue {:?} within {secs} s", args.queue)
                        } else {
                            format!(
                                "only {got} of {count} messages on queue {:?} within {secs} s",
                                args.queue
                            )
                        }));
                    }
                },
                None => consumer.next().await,
            };
            let delivery = match next {
                Some(Ok(d)) => d,
                Some(Err(e)) => return Err(broker_failure(e)),
                None => {
                    return Err(Fail::new(format!(
                        "the broker closed while receiving from queue {:?}",
                        args.queue
                    )));
                }
            };
            print_out(&message_line(
                args.json,
                "queue",
                &args.queue,
                delivery.body(),
                &[("attempt", Value::from(delivery.attempt()))],
            ))?;
            if args.ack {
                call(delivery.ack()).await?;
            }
            got += 1;
        }
        drop(consumer);
        Ok(())
    })
    .await
}

pub(crate) async fn broker_stats(args: StatsArgs) -> Result<(), Fail> {
    with_broker(&args.target, |broker| async move {
        let stats = call(broker.stats()).await?;
        let out = if args.json {
            let v = serde_json::to_value(&stats)
                .map_err(|e| Fail::new(format!("cannot write the figures as JSON: {e}")))?;
            format!("{v}\n")
        } else {
            stats_text(&stats)
        };
        print_out(&out)
    })
    .await
}

pub(crate) fn broker_failure(e: BrokerError) -> Fail {
    Fail::new(one_line(&e.to_string()))
}

pub(crate) async fn broker_serve(args: BrokerServeArgs) -> Result<(), Fail> {
    let mut config = BrokerConfig {
        data: args.data.clone(),
        ..BrokerConfig::default()
    };
    if let Some(fsync) = args.fsync {
        config.fsync = fsync;
    }
    if let Some(max) = args.max_message {
        config.max_message = max;
    }
    let broker = Broker::open(config).map_err(|e| match &args.data {
        Some(dir) => Fail::new(format!(
            "--data {}: {}",
            dir.display(),
            one_line(&e.to_string())
        )),
        None => broker_failure(e),
    })?;
    let node = match &args.policy {
        None => {
            let node = security::node().build();
            broker.expose(&node).map_err(broker_failure)?;
            node
        }
        Some(file) => {
            let policy = security::Policy::read(file)?;
            let node = policy.authenticate(security::node()).build();
            broker
                .expose_with(&node, policy.permissions())
                .map_err(broker_failure)?;
            node
        }
    };
    let addr = node.add_listener(args.listen.clone()).await.map_err(|e| {
        Fail::new(format!(
            "cannot listen on {}: {}",
            args.listen,
            one_line(&e.to_string())
        ))
    })?;
    // Caught before the address is printed: whoever reads it may stop
    // the broker at once.
    let stopped = stop_signals()?;
    print_out(&format!("listening on {addr}\n"))?;
    tracing::info!(
        address = %addr,
        data = %args.data.as_ref().map_or_else(|| "none (no durable queues)".to_owned(), |d| d.display().to_string()),
        fsync = %match args.fsync.unwrap_or_default() {
            Fsync::Always => "before each confirmation".to_owned(),
            Fsync::Every(d) => format!("every {} ms", d.as_millis()),
        },
        max_message = broker.max_message(),
        policy = args.policy.is_some(),
        "the broker serves"
    );
    stopped.await;
    tracing::info!("stopping: the broker closes, its durable queues reach the disk");
    // Close the broker first: it takes no more messages and its durable
    // queues reach the disk; then the connections go.
    let closed = broker.close().await;
    node.shutdown().await;
    closed.map_err(broker_failure)
}

/// SIGTERM and ctrl-c (SIGINT), caught from now on; the future ends at
/// the first.
#[cfg(unix)]
pub(crate) fn stop_signals() -> Result<impl Future<Output = ()>, Fail> {
    use tokio::signal::unix::{SignalKind, signal};
    let catch = |kind: SignalKind, name: &str| {
        signal(kind).map_err(|e| Fail::new(format!("cannot catch {name}: {e}")))
    };
    let mut term = catch(SignalKind::terminate(), "SIGTERM")?;
    let mut int = catch(SignalKind::interrupt(), "SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}

/// Ctrl-c, caught from the first poll on.
#[cfg(not(unix))]
pub(crate) fn stop_signals() -> Result<impl Future<Output = ()>, Fail> {
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}
