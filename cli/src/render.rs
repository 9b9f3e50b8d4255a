//! What the commands print: tables and JSON.

use std::fmt::Write as _;

use farcall::directory::{Entry, InterfaceInfo};
use farcall::mme::Stats;
use serde_json::{Value, json};

use crate::Fail;

/// `ls` as a table: name, members, interfaces.
pub(crate) fn entries_table(entries: &[Entry]) -> String {
    if entries.is_empty() {
        return "no bindings\n".to_owned();
    }
    let width = entries
        .iter()
        .map(|e| e.name.len())
        .max()
        .unwrap_or(0)
        .max("NAME".len());
    let mut out = String::new();
    let _ = writeln!(out, "{:<width$}  MEMBERS  INTERFACES", "NAME");
    for e in entries {
        let _ = writeln!(
            out,
            "{:<width$}  {:>7}  {}",
            e.name,
            e.members,
            e.interfaces.join(", ")
        );
    }
    out
}

pub(crate) fn entries_json(entries: &[Entry]) -> Value {
    Value::Array(
        entries
            .iter()
            .map(|e| {
                json!({
                    "name": e.name,
                    "interfaces": e.interfaces,
                    "members": e.members,
                })
            })
            .collect(),
    )
}

/// `describe` as Rust-like trait declarations.
pub(crate) fn interfaces_text(infos: &[InterfaceInfo]) -> String {
    let mut out = String::new();
    for (i, info) in infos.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "// interface id {:016x}", info.id);
        if !info.known {
            let _ = writeln!(
                out,
                "// {}: neither the directory nor this program links this interface; \
                 its methods are unknown",
                info.name
            );
            continue;
        }
        let supers = if info.supertraits.is_empty() {
            String::new()
        } else {
            format!(": {}", info.supertraits.join(" + "))
        };
        if info.methods.is_empty() {
            let _ = writeln!(out, "trait {}{supers} {{}}", info.name);
            continue;
        }
        let _ = writeln!(out, "trait {}{supers} {{", info.name);
        for m in &info.methods {
            let mut marks = Vec::new();
            if m.oneway {
                marks.push("oneway");
            }
            if m.idempotent {
                marks.push("idempotent");
            }
            if !marks.is_empty() {
                let _ = writeln!(out, "    #[remote({})]", marks.join(", "));
            }
            let mut args = String::from("&self");
            for a in &m.args {
                let _ = write!(args, ", {}: {}", a.name, a.ty);
            }
            let _ = writeln!(out, "    async fn {}({args}) -> {};", m.name, m.result);
        }
        out.push_str("}\n");
        for t in &info.types {
            let _ = writeln!(out, "{t}");
        }
    }
    out
}

pub(crate) fn interfaces_json(infos: &[InterfaceInfo]) -> Value {
    Value::Array(
        infos
            .iter()
            .map(|i| {
                json!({
                    "name": i.name,
                    "id": format!("{:016x}", i.id),
                    "known": i.known,
                    "supertraits": i.supertraits,
                    "types": i.types,
                    "methods": i.methods.iter().map(|m| json!({
                        "name": m.name,
                        "args": m.args.iter().map(|a| json!({"name": a.name, "type": a.ty})).collect::<Vec<_>>(),
                        "result": m.result,
                        "oneway": m.oneway,
                        "idempotent": m.idempotent,
                    })).collect::<Vec<_>>(),
                })
            })
            .collect(),
    )
}

/// The message argument: checked to be JSON, as compact text.
pub(crate) fn json_argument(text: &str) -> Result<Vec<u8>, Fail> {
    serde_json::from_str::<Value>(text).map_err(|e| {
        Fail::usage(format!(
            "the message is not JSON ({e}); quote it for the shell, e.g. '{{\"n\": 1}}' or '\"text\"'"
        ))
    })?;
    Ok(compact_json(text).into_bytes())
}

/// `text`, valid JSON, without whitespace between tokens: one line, with
/// keys in their order and numbers as written (a round trip through
/// [`Value`] would sort keys and round large numbers).
pub(crate) fn compact_json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    for c in text.chars() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !matches!(c, ' ' | '\t' | '\n' | '\r') {
            out.push(c);
        }
    }
    out
}

/// A payload as one line of JSON: itself if it is JSON text, else
/// {"bytes_hex": "..."}.
pub(crate) fn payload_json(payload: &[u8]) -> String {
    match std::str::from_utf8(payload) {
        Ok(text) if serde_json::from_str::<Value>(text).is_ok() => compact_json(text),
        _ => {
            let mut hex = String::with_capacity(payload.len() * 2);
            for b in payload {
                let _ = write!(hex, "{b:02x}");
            }
            json!({ "bytes_hex": hex }).to_string()
        }
    }
}

/// One message as `sub` and `recv` print it: `WHERE BODY`, or with
/// `json` an object {"<key>": WHERE, "body": BODY, ...more}.
pub(crate) fn message_line(
    json: bool,
    key: &str,
    place: &str,
    payload: &[u8],
    more: &[(&str, Value)],
) -> String {
    let body = payload_json(payload);
    if !json {
        return format!("{place} {body}\n");
    }
    // Built by hand so that the body keeps its keys' order.
    let mut line = format!(
        "{{{}:{},\"body\":{body}",
        Value::from(key),
        Value::from(place)
    );
    for (k, v) in more {
        let _ = write!(line, ",{}:{v}", Value::from(*k));
    }
    line.push_str("}\n");
    line
}

/// Rows as columns: each as wide as its widest cell, the first one to the
/// left and the others to the right.
pub(crate) fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut text = String::new();
        for (i, (cell, w)) in cells.zip(&widths).enumerate() {
            if i == 0 {
                let _ = write!(text, "{cell:<w$}");
            } else {
                let _ = write!(text, "  {cell:>w$}");
            }
        }
        out.push_str(text.trim_end());
        out.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
}

/// `broker stats` as text.
pub(crate) fn stats_text(stats: &Stats) -> String {
    let mut out = String::new();
    if stats.queues.is_empty() {
        out.push_str("no queues\n");
    } else {
        let rows: Vec<Vec<String>> = stats
            .queues
            .iter()
            .map(|q| {
                vec![
                    q.name.clone(),
                    if q.durable { "yes" } else { "no" }.to_owned(),
                    q.depth.to_string(),
                    q.in_flight.to_string(),
                    q.consumers.to_string(),
                    q.sent.to_string(),
                    q.acked.to_string(),
                    q.redelivered.to_string(),
                    q.dead_lettered.to_string(),
                ]
            })
            .collect();
        table(
            &mut out,
            &[
                "QUEUE",
                "DURABLE",
                "DEPTH",
                "IN FLIGHT",
                "CONSUMERS",
                "SENT",
                "ACKED",
                "REDELIVERED",
                "DEAD-LETTERED",
            ],
            &rows,
        );
    }
    out.push('\n');
    if stats.topics.is_empty() {
        out.push_str("no topics\n");
    } else {
        let rows: Vec<Vec<String>> = stats
            .topics
            .iter()
            .map(|t| {
                vec![
                    t.subject.clone(),
                    t.published.to_string(),
                    format!("{:.1}", t.rate),
                ]
            })
            .collect();
        table(&mut out, &["SUBJECT", "PUBLISHED", "MSGS/S"], &rows);
    }
    let _ = writeln!(
        out,
        "\nsubscriptions: {}, messages dropped from slow subscribers: {}",
        stats.subscriptions, stats.dropped
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use farcall::directory::{ArgInfo, MethodInfo};

    #[test]
    fn describe_text_shows_methods_and_supertraits() {
        let infos = vec![
            InterfaceInfo {
                name: "Circle".into(),
                id: 0xab,
                known: true,
                methods: vec![MethodInfo {
                    name: "scale".into(),
                    args: vec![
                        ArgInfo {
                            name: "k".into(),
                            ty: "f64".into(),
                        },
                        ArgInfo {
                            name: "center".into(),
                            ty: "(f64, f64)".into(),
                        },
                    ],
                    result: "Result<f64, RemoteError>".into(),
                    oneway: false,
                    idempotent: true,
                }],
                supertraits: vec!["Shape".into(), "Named".into()],
                types: vec!["struct Point { x: f64, y: f64 }".into()],
            },
            InterfaceInfo {
                name: "#00000000000000cd".into(),
                id: 0xcd,
                known: false,
                methods: vec![],
                supertraits: vec![],
                types: vec![],
            },
        ];
        let text = interfaces_text(&infos);
        assert!(text.contains("trait Circle: Shape + Named {"), "{text}");
        assert!(text.contains("    #[remote(idempotent)]\n"), "{text}");
        assert!(
            text.contains(
                "    async fn scale(&self, k: f64, center: (f64, f64)) -> Result<f64, RemoteError>;"
            ),
            "{text}"
        );
        assert!(
            text.contains("}\nstruct Point { x: f64, y: f64 }\n"),
            "{text}"
        );
        assert!(text.contains("#00000000000000cd: neither"), "{text}");
        let json = interfaces_json(&infos);
        assert_eq!(json[0]["supertraits"], json!(["Shape", "Named"]));
        assert_eq!(json[0]["methods"][0]["args"][1]["type"], "(f64, f64)");
        assert_eq!(json[0]["types"][0], "struct Point { x: f64, y: f64 }");
        assert_eq!(json[1]["known"], false);
    }

    #[test]
    fn messages_are_compact_json_or_hex() {
        assert_eq!(
            compact_json(" { \"b\" : [1, 2.50] ,\n\t\"a\": \"x \\\" y\" } "),
            r#"{"b":[1,2.50],"a":"x \" y"}"#
        );
        assert_eq!(compact_json(r#""a\\" "#), r#""a\\""#);
        assert_eq!(payload_json(b"[1, 2]"), "[1,2]");
        assert_eq!(payload_json(b"\xff\x00a"), r#"{"bytes_hex":"ff0061"}"#);
        assert_eq!(payload_json(b""), r#"{"bytes_hex":""}"#);
        assert_eq!(payload_json(b"1 2"), r#"{"bytes_hex":"312032"}"#);
        assert!(json_argument("{").is_err());
        assert_eq!(
            message_line(
                true,
                "queue",
                "q",
                b"{\"z\":1,\"a\":2}",
                &[("attempt", json!(3))]
            ),
            "{\"queue\":\"q\",\"body\":{\"z\":1,\"a\":2},\"attempt\":3}\n"
        );
        assert_eq!(
            message_line(false, "subject", "a.b", b"\"x\"", &[]),
            "a.b \"x\"\n"
        );
    }

    #[test]
    fn stats_are_a_table() {
        let stats = Stats {
            queues: vec![farcall::mme::QueueStats {
                name: "orders".into(),
                durable: true,
                depth: 12,
                sent: 30,
                ..Default::default()
            }],
            topics: vec![],
            subscriptions: 2,
            dropped: 1,
        };
        let text = stats_text(&stats);
        let mut lines = text.lines();
        let header = lines.next().unwrap();
        assert!(
            header.starts_with("QUEUE   DURABLE  DEPTH  IN FLIGHT"),
            "{text}"
        );
        let row = lines.next().unwrap();
        assert_eq!(row.len(), header.len(), "columns line up: {text}");
        assert!(row.starts_with("orders      yes     12"), "{text}");
        assert!(text.contains("no topics"), "{text}");
        assert!(text.contains("subscriptions: 2, messages dropped from slow subscribers: 1"));
    }
}
