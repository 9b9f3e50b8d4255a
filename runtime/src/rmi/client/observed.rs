//! What every stub call passes through before its target: its span and
//! metrics, the trace context it carries (feature `otel`), and the node's
//! outgoing interceptors.

use std::time::Instant;

use serde::Serialize;

use super::{Answer, Expect, Site, StubCore};
use crate::observe::{CallInfo, Interceptors, Observed, Side};
use crate::rmi::error::RemoteError;
use crate::wire::Fault;

impl StubCore {
    pub(super) async fn invoke_observed<A>(
        &self,
        site: Site,
        expect: Expect,
        args: &A,
    ) -> Result<Answer, RemoteError>
    where
        A: Serialize + ?Sized,
    {
        let node = self.node();
        let outgoing = node
            .as_ref()
            .and_then(|n| n.outgoing_interceptors().0.clone());
        let peer = self.connection().map(|c| c.peer_id());
        let observed = Observed::start(Side::Client, site.interface, site.name, self.object, peer);
        let work = async {
            // This core, or a copy with what interceptors and the trace
            // context changed.
            let mut own: Option<StubCore> = None;
            let mut info = None;
            if let Some(list) = &outgoing {
                let mut i = CallInfo {
                    side: Side::Client,
                    interface: site.interface,
                    method: site.name,
                    object: self.object,
                    peer,
                    principal: None,
                    metadata: self.metadata().clone(),
                    one_way: matches!(expect, Expect::Nothing),
                };
                Interceptors::run(list, &mut i)
                    .await
                    .map_err(|f| RemoteError::from_fault(f, site.name))?;
                own = Some(self.with_metadata(i.metadata.clone()));
                info = Some(i);
            }
            #[cfg(feature = "otel")]
            if observed.span().is_some_and(|s| !s.is_disabled()) {
                let core = own.as_ref().unwrap_or(self);
                let mut metadata = core.metadata().clone();
                crate::observe::otel::inject(&observed, &mut metadata);
                own = Some(core.with_metadata(metadata));
            }
            let core = own.as_ref().unwrap_or(self);
            let started = Instant::now();
            let answer = core.invoke_here(site.method, site.name, expect, args).await;
            if let (Some(list), Some(info)) = (&outgoing, &info)
                && !info.one_way
            {
                let fault = answer.as_ref().err().map(as_fault);
                Interceptors::finished(
                    list,
                    info,
                    fault.as_ref().map_or(Ok(()), Err),
                    started.elapsed(),
                );
            }
            answer
        };
        let answer = observed.instrument(work).await;
        match &answer {
            Ok(_) => observed.finish(Ok(())),
            Err(e) => observed.finish(Err(&as_fault(e))),
        }
        answer
    }
}

/// The fault a failed call is counted and reported under; errors of the
/// caller's side alone (the owner unreachable, an argument that does not
/// encode) as `Rejected` with their message.
fn as_fault(e: &RemoteError) -> Fault {
    e.fault().unwrap_or_else(|| Fault::Rejected(e.to_string()))
}
