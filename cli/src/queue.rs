//! `queue ls`, `queue info`, `queue purge`, `queue delete`, `queue peek`
//! and `queue move`: the broker's queues administered from the shell.
//! None of them creates a queue: a missing one fails, naming it.

use std::fmt::Write as _;
use std::time::Duration;

use farcall::mme::{PeekedMessage, QueueInfo};
use serde_json::{Value, json};

use crate::args::{QueueCommand, QueueLsArgs, QueueMoveArgs, QueueNameArgs, QueuePeekArgs};
use crate::broker::{call, with_broker};
use crate::render::{message_line, table};
use crate::{Fail, print_out};

/// How many messages `queue peek` shows without --count.
const PEEK_DEFAULT: u32 = 10;

pub(crate) async fn run(command: QueueCommand) -> Result<(), Fail> {
    match command {
        QueueCommand::Ls(args) => ls(args).await,
        QueueCommand::Info(args) => info(args).await,
        QueueCommand::Purge(args) => purge(args).await,
        QueueCommand::Delete(args) => delete(args).await,
        QueueCommand::Peek(args) => peek(args).await,
        QueueCommand::Move(args) => move_messages(args).await,
    }
}

async fn ls(args: QueueLsArgs) -> Result<(), Fail> {
    with_broker(&args.target, |broker| async move {
        let queues = call(broker.queues()).await?;
        print_out(&if args.json {
            let all: Vec<Value> = queues.iter().map(info_json).collect();
            format!("{}\n", Value::Array(all))
        } else {
            queues_table(&queues)
        })
    })
    .await
}

async fn info(args: QueueNameArgs) -> Result<(), Fail> {
    with_broker(&args.target, |broker| async move {
        let info = call(broker.queue_info(&args.queue)).await?;
        print_out(&if args.json {
            format!("{}\n", info_json(&info))
        } else {
            info_text(&info)
        })
    })
    .await
}

async fn purge(args: QueueNameArgs) -> Result<(), Fail> {
    with_broker(&args.target, |broker| async move {
        let n = call(broker.purge_queue(&args.queue)).await?;
        print_out(&if args.json {
            format!("{}\n", json!({ "purged": n }))
        } else {
            format!("purged {} from queue {}\n", messages(n), args.queue)
        })
    })
    .await
}

async fn delete(args: QueueNameArgs) -> Result<(), Fail> {
    with_broker(&args.target, |broker| async move {
        call(broker.delete_queue(&args.queue)).await?;
        print_out(&if args.json {
            format!("{}\n", json!({ "deleted": args.queue }))
        } else {
            format!("deleted queue {}\n", args.queue)
        })
    })
    .await
}

async fn peek(args: QueuePeekArgs) -> Result<(), Fail> {
    with_broker(&args.target, |broker| async move {
        let count = args.count.unwrap_or(PEEK_DEFAULT);
        let seen = call(broker.peek_queue(&args.queue, count)).await?;
        let mut out = String::new();
        for m in &seen {
            out.push_str(&peeked_line(args.json, &args.queue, m));
        }
        print_out(&out)
    })
    .await
}

async fn move_messages(args: QueueMoveArgs) -> Result<(), Fail> {
    with_broker(&args.target, |broker| async move {
        let n = call(broker.move_messages(&args.from, &args.to, args.count)).await?;
        print_out(&if args.json {
            format!("{}\n", json!({ "moved": n }))
        } else {
            format!(
                "moved {} from queue {} to queue {}\n",
                messages(n),
                args.from,
                args.to
            )
        })
    })
    .await
}

/// `1 message`, `3 messages`.
fn messages(n: u64) -> String {
    if n == 1 {
        "1 message".to_owned()
    } else {
        format!("{n} messages")
    }
}

/// A duration as people read it: `850 ms`, `12.5 s`, `3 min 20 s`,
/// `2 h 5 min`.
fn human(d: Duration) -> String {
    let ms = d.as_millis();
    let s = d.as_secs();
    if ms < 1000 {
        format!("{ms} ms")
    } else if s < 60 {
        format!("{:.1} s", d.as_secs_f64())
    } else if s < 3600 {
        format!("{} min {} s", s / 60, s % 60)
    } else {
        format!("{} h {} min", s / 3600, (s % 3600) / 60)
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// One queue as `queue info --json` (and each item of `queue ls --json`)
/// prints it.
fn info_json(i: &QueueInfo) -> Value {
    json!({
        "name": i.name,
        "durable": i.config.durable,
        "ack_wait_ms": millis(i.config.ack_wait),
        "max_deliver": i.config.max_deliver,
        "max_depth": i.config.max_depth,
        "depth": i.depth,
        "in_flight": i.in_flight,
        "consumers": i.consumers,
        "oldest_age_ms": i.oldest_age.map(millis),
    })
}

fn info_text(i: &QueueInfo) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "queue:      {}", i.name);
    let _ = writeln!(out, "config:     {}", i.config);
    let _ = writeln!(out, "depth:      {}", i.depth);
    let _ = writeln!(out, "in flight:  {}", i.in_flight);
    let _ = writeln!(out, "consumers:  {}", i.consumers);
    let _ = writeln!(
        out,
        "oldest:     {}",
        i.oldest_age
            .map_or_else(|| "none (empty)".to_owned(), human)
    );
    out
}

fn queues_table(queues: &[QueueInfo]) -> String {
    if queues.is_empty() {
        return "no queues\n".to_owned();
    }
    let rows: Vec<Vec<String>> = queues
        .iter()
        .map(|q| {
            vec![
                q.name.clone(),
                if q.config.durable { "yes" } else { "no" }.to_owned(),
                q.depth.to_string(),
                q.in_flight.to_string(),
                q.consumers.to_string(),
                q.oldest_age.map_or_else(|| "-".to_owned(), human),
            ]
        })
        .collect();
    let mut out = String::new();
    table(
        &mut out,
        &[
            "QUEUE",
            "DURABLE",
            "DEPTH",
            "IN FLIGHT",
            "CONSUMERS",
            "OLDEST",
        ],
        &rows,
    );
    out
}

/// One message as `queue peek` prints it: as `recv` does, with its
/// attempts so far and its age in JSON.
fn peeked_line(json: bool, queue: &str, m: &PeekedMessage) -> String {
    message_line(
        json,
        "queue",
        queue,
        &m.payload,
        &[
            ("attempts", m.attempts.map_or(Value::Null, Value::from)),
            ("age_ms", m.age.map(millis).map_or(Value::Null, Value::from)),
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(human(Duration::from_millis(850)), "850 ms");
        assert_eq!(human(Duration::from_millis(12_500)), "12.5 s");
        assert_eq!(human(Duration::from_secs(200)), "3 min 20 s");
        assert_eq!(human(Duration::from_secs(7500)), "2 h 5 min");
        assert_eq!(messages(1), "1 message");
        assert_eq!(messages(0), "0 messages");
    }
}
