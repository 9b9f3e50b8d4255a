//! `directory serve`, `ls`, `describe`, `watch` and `unbind`.

use std::path::Path;

use farcall::Node;
use farcall::directory::{Change, DirectoryClient, DirectoryError};
use farcall::directory::{
    DIRECTORY_ENV, DirectoryStore, DirectoryStoreError, WriteAccess, set_write_access,
};
use farcall::node::Limits;

use crate::args::{DescribeArgs, DirectoryArg, LsArgs, ServeArgs};
use crate::render::{entries_json, entries_table, interfaces_json, interfaces_text};
use crate::security;
use crate::{CALL_DEADLINE, Fail, one_line, print_out, reach, target_address};

/// The directory named by `--directory` or `FARCALL_DIRECTORY`, from a
/// node of this process that only dials.
pub(crate) async fn connect(target: &DirectoryArg) -> Result<(Node, DirectoryClient), Fail> {
    let addr = target_address(
        &target.directory,
        "--directory",
        DIRECTORY_ENV,
        "directory",
        "tcp://127.0.0.1:7400",
    )?;
    let node = security::node().build();
    let dir = reach(
        "the directory",
        &addr,
        DirectoryClient::connect_on(&node, &addr),
    )
    .await?;
    Ok((node, dir.with_deadline(CALL_DEADLINE)))
}

pub(crate) fn directory_failure(e: DirectoryError) -> Fail {
    Fail::new(one_line(&e.to_string()))
}

pub(crate) async fn ls(args: LsArgs) -> Result<(), Fail> {
    let (_node, dir) = connect(&args.target).await?;
    let prefix = args.prefix.as_deref().unwrap_or("");
    let entries = dir.list(prefix).await.map_err(directory_failure)?;
    let out = if args.target.json {
        format!("{}\n", entries_json(&entries))
    } else {
        entries_table(&entries)
    };
    print_out(&out)
}

pub(crate) async fn describe(args: DescribeArgs) -> Result<(), Fail> {
    let (_node, dir) = connect(&args.target).await?;
    let infos = dir.describe(&args.name).await.map_err(directory_failure)?;
    let out = if args.target.json {
        format!("{}\n", interfaces_json(&infos))
    } else {
        interfaces_text(&infos)
    };
    print_out(&out)
}

pub(crate) async fn watch(args: LsArgs) -> Result<(), Fail> {
    let (_node, dir) = connect(&args.target).await?;
    let prefix = args.prefix.as_deref().unwrap_or("");
    let mut changes = dir.watch(prefix).await.map_err(directory_failure)?;
    while let Some(change) = changes.next().await {
        let change = change.map_err(|e| Fail::new(format!("the watch ended: {e}")))?;
        let (what, name, owner, object) = match &change {
            Change::Bound {
                name,
                owner,
                object,
                ..
            } => ("bound", name, owner, object),
            Change::Unbound {
                name,
                owner,
                object,
            } => ("unbound", name, owner, object),
        };
        let line = if args.target.json {
            serde_json::json!({
                "change": what,
                "name": name,
                "owner": owner.to_string(),
                "object": object.to_string(),
            })
            .to_string()
        } else {
            format!("{what} {name} {owner} {object}")
        };
        print_out(&format!("{line}\n"))?;
    }
    Err(Fail::new("the directory ended the watch".to_owned()))
}

pub(crate) async fn unbind(args: DescribeArgs) -> Result<(), Fail> {
    let (_node, dir) = connect(&args.target).await?;
    dir.unbind(&args.name).await.map_err(directory_failure)?;
    print_out(&format!("unbound {}\n", args.name))
}

pub(crate) async fn serve(args: ServeArgs) -> Result<(), Fail> {
    let mut limits = Limits::default();
    if let Some(lease) = args.lease_time {
        limits.lease_time = lease;
    }
    // The token is read, and write access set, before the node listens:
    // no writer comes in under the default meanwhile.
    let access = match &args.write_token_file {
        Some(file) => {
            let token = read_token(file)?;
            Some(if args.token_only {
                WriteAccess::TokenOnly(token.into())
            } else {
                WriteAccess::SameHostOrToken(token.into())
            })
        }
        None => None,
    };
    let policy = args
        .policy
        .as_deref()
        .map(security::Policy::read)
        .transpose()?;
    let mut builder = security::node().limits(limits);
    if let Some(p) = &policy {
        builder = p.authenticate(builder);
    }
    let node = builder.build();
    if let Some(p) = &policy
        && !farcall::directory::set_permissions(&node, p.names())
    {
        return Err(Fail::new("this node has no directory to guard"));
    }
    if let Some(access) = access
        && !set_write_access(&node, access)
    {
        return Err(Fail::new("this node has no directory to guard"));
    }
    let addr = node.add_listener(args.listen.clone()).await.map_err(|e| {
        Fail::new(format!(
            "cannot listen on {}: {}",
            args.listen,
            one_line(&e.to_string())
        ))
    })?;
    // Kept until the process ends: saving stops when it drops.
    let _kept = match &args.data {
        Some(data) => {
            let store_failure = |e: DirectoryStoreError| Fail::new(one_line(&e.to_string()));
            let store = DirectoryStore::open(data).map_err(store_failure)?;
            let kept = store
                .keep(&node, |e| {
                    eprintln!("farcall: saving the bindings: {}", one_line(&e.to_string()));
                })
                .await
                .map_err(store_failure)?;
            for (name, why) in kept.not_restored() {
                eprintln!(
                    "farcall: not restoring a member of {name:?}: {}",
                    one_line(&why.to_string())
                );
            }
            Some(kept)
        }
        None => None,
    };
    // Caught before the address is printed: whoever reads it may stop
    // the directory at once.
    let stopped = crate::broker::stop_signals()?;
    print_out(&format!("listening on {addr}\n"))?;
    tracing::info!(
        address = %addr,
        data = %args.data.as_ref().map_or_else(|| "none (in memory)".to_owned(), |d| d.display().to_string()),
        lease_time_s = node.limits().lease_time.as_secs_f64(),
        policy = args.policy.is_some(),
        "the directory serves"
    );
    stopped.await;
    tracing::info!("stopping: the directory closes its connections");
    // The bindings on disk are saved after every change; the last save
    // completes before `_kept` drops.
    node.shutdown().await;
    drop(_kept);
    Ok(())
}

/// The token in `file`, without its final line break.
pub(crate) fn read_token(file: &Path) -> Result<Vec<u8>, Fail> {
    let mut token = std::fs::read(file)
        .map_err(|e| Fail::new(format!("--write-token-file {}: {e}", file.display())))?;
    while token.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        token.pop();
    }
    if token.is_empty() {
        return Err(Fail::new(format!(
            "--write-token-file {}: the file is empty",
            file.display()
        )));
    }
    Ok(token)
}
