//! Calls to an object of this very node: through its dispatcher, under
//! the panic guard, without a socket.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use super::{Answer, Expect, Failed, StubCore};
use crate::node::Node;
use crate::rmi::error::RemoteError;
use crate::rmi::scope::encode_for;
use crate::service::{CallContext, Service, call_guarded};

/// One call or message to `service`, an object of `node`.
pub(super) async fn invoke<A>(
    core: &StubCore,
    service: &Arc<dyn Service>,
    node: &Node,
    method: u64,
    name: &'static str,
    expect: Expect,
    args: &A,
) -> Result<Answer, Failed>
where
    A: Serialize + ?Sized,
{
    let deadline = core.effective_deadline(Some(node));
    let metadata = core.metadata();
    let payload = encode_for(None, args).map_err(Failed::unsent)?;
    let one_way = matches!(expect, Expect::Nothing);
    let cx = CallContext {
        caller: node.id(),
        deadline: if one_way {
            None
        } else {
            Instant::now().checked_add(deadline)
        },
        connection: None,
        node: Some(node.clone()),
        one_way,
        carried: false,
        metadata: metadata.clone(),
    };
    let call = call_guarded(&**service, cx, method, payload);
    if one_way {
        tokio::spawn(call);
        return Ok(Answer::none());
    }
    let bytes = match tokio::time::timeout(deadline, call).await {
        Ok(r) => r.map_err(|f| Failed::after(RemoteError::from_fault(f, name)))?,
        Err(_) => return Err(Failed::after(RemoteError::DeadlineExceeded)),
    };
    Ok(Answer {
        bytes,
        node: Some(node.clone()),
        conn: None,
    })
}
