//! How the directory connects to NATS: credentials and TLS.

use farcall_runtime::NatsOptions;

/// The connect options of `options`: credentials and TLS.
pub(super) async fn connect_options(
    options: &NatsOptions,
) -> Result<async_nats::ConnectOptions, String> {
    use farcall_runtime::NatsAuth;
    let o = async_nats::ConnectOptions::new();
    let mut o = match &options.auth {
        NatsAuth::Token(t) => o.token(t.clone()),
        NatsAuth::UserPassword { user, password } => {
            o.user_and_password(user.clone(), password.clone())
        }
        NatsAuth::NKey(seed) => o.nkey(seed.clone()),
        NatsAuth::CredentialsFile(path) => o.credentials_file(path).await.map_err(|e| {
            format!(
                "cannot read the NATS credentials file {}: {e}",
                path.display()
            )
        })?,
        _ => o,
    };
    if options.tls.require {
        o = o.require_tls(true);
    }
    if let Some(roots) = &options.tls.roots {
        o = o.add_root_certificates(roots.clone());
    }
    if let Some((cert, key)) = &options.tls.client_cert {
        o = o.add_client_certificate(cert.clone(), key.clone());
    }
    Ok(o)
}
