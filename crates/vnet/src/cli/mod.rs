//! The `vnet` command line: `vnet serve` and the `az network`-like client commands.
//!
//! Layout: `args` (the top of the command tree and shared options), `http` (client, transport,
//! errors of requests), `auth` (CA trust and sign-in), `lro` (long-running operations), `ids`
//! (names to ids and URLs), `body` (request-body pieces), `output` and `table` (what is
//! printed), `group` and `network/*` (one module per resource type), `serve` (the server
//! command).

pub mod args;
mod auth;
mod body;
mod error;
mod group;
mod http;
mod ids;
mod ipsec;
mod lro;
mod network;
mod output;
mod serve;
mod table;
#[cfg(test)]
mod testing;
mod vm;

pub use error::CliError;

use args::{Cli, ClientOpts, Command};
use http::ArmClient;
use ids::Scope;
use output::Reply;
use std::io::Write;

/// What a client command needs: the server, and the subscription its ids live in.
pub struct Ctx {
    pub client: ArmClient,
    pub subscription: String,
}

impl Ctx {
    pub fn scope<'a>(&'a self, resource_group: &'a str) -> Scope<'a> {
        Scope::new(&self.subscription, resource_group)
    }
}

/// Runs one command line. Errors are returned for `main` to print as `code: message`.
pub fn run(cli: Cli) -> Result<(), CliError> {
    match cli.command {
        Command::Serve(args) => serve::run(args),
        Command::Group(cmd) => client_command(&cli.client, |ctx| group::run(ctx, cmd)),
        Command::Network(cmd) => client_command(&cli.client, |ctx| network::run(ctx, cmd)),
        Command::Vm(vm::VmCommand::Exec(a)) => vm::exec(a),
        Command::Vm(cmd) => client_command(&cli.client, |ctx| vm::run(ctx, cmd)),
        Command::Ipsec(ipsec::IpsecCommand::Up(a)) => ipsec::up(*a),
    }
}

fn client_command(
    opts: &ClientOpts,
    command: impl FnOnce(&Ctx) -> Result<Reply, CliError>,
) -> Result<(), CliError> {
    init_client_logging();
    let env = auth::Env::from_process();
    let https = opts.server.starts_with("https:");
    let ca = if https {
        auth::find_ca(opts, &env)?
    } else {
        None
    };
    let mut client = ArmClient::connect(&opts.server, ca.as_deref())?;
    let credentials = if client.is_https() {
        auth::find_credentials(opts, &env)?
    } else {
        None
    };
    if let Some(creds) = &credentials {
        let token = auth::fetch_token(&client, creds)?;
        client.set_bearer(token);
    }
    let ctx = Ctx {
        client,
        subscription: opts.subscription.clone(),
    };
    let reply = command(&ctx).map_err(|e| match credentials {
        None => auth::explain_missing_credentials(e),
        Some(_) => e,
    })?;
    let text = reply.render(opts.output);
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|_| stdout.flush())
    {
        // `vnet ... | head` closing the pipe early is not the command's failure.
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(CliError::new(
            "OutputError",
            format!("cannot write the result: {e}"),
        )),
        _ => Ok(()),
    }
}

/// Client commands log only warnings unless `RUST_LOG` asks for more (`RUST_LOG=vnet=debug`
/// shows every request), and always to stderr so that stdout stays parseable.
fn init_client_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
