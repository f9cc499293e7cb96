//! A scripted transport for unit tests: it answers requests from a list, records what it was
//! asked and how long the client wanted to sleep, and never touches a socket or the clock.

use super::http::{ArmClient, HttpRequest, HttpResponse, Transport, TransportError};
use serde_json::Value;
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

/// One scripted answer.
pub enum Scripted {
    Reply(HttpResponse),
    Unreachable,
}

/// A JSON answer with no headers.
pub fn reply(status: u16, body: Value) -> Scripted {
    reply_with(status, &[], Some(body))
}

/// An answer with headers and an optional JSON body.
pub fn reply_with(status: u16, headers: &[(&str, &str)], body: Option<Value>) -> Scripted {
    Scripted::Reply(HttpResponse {
        status,
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        body: body.map(|b| b.to_string().into_bytes()).unwrap_or_default(),
    })
}

/// "Connection refused".
pub fn unreachable() -> Scripted {
    Scripted::Unreachable
}

#[derive(Default)]
struct State {
    script: VecDeque<Scripted>,
    requests: Vec<HttpRequest>,
    sleeps: Vec<Duration>,
}

/// The test's handle on the fake: what was requested, what was slept.
#[derive(Clone)]
pub struct FakeServer {
    state: Rc<RefCell<State>>,
}

struct FakeTransport {
    state: Rc<RefCell<State>>,
}

impl Transport for FakeTransport {
    fn send(&self, request: &HttpRequest) -> Result<HttpResponse, TransportError> {
        let mut state = self.state.borrow_mut();
        state.requests.push(request.clone());
        match state.script.pop_front() {
            Some(Scripted::Reply(r)) => Ok(r),
            Some(Scripted::Unreachable) => Err(TransportError::Unreachable(
                "Connection refused (os error 111)".into(),
            )),
            None => panic!(
                "unexpected request {} {} {:?}",
                request.method.as_str(),
                request.url,
                request.body
            ),
        }
    }
}

impl FakeServer {
    /// A client at `http://vnet.test:7380` that gets its answers from `script`, in order.
    pub fn client(script: Vec<Scripted>) -> (ArmClient, FakeServer) {
        let state = Rc::new(RefCell::new(State {
            script: script.into(),
            ..State::default()
        }));
        let sleeps = state.clone();
        let client = ArmClient::with_transport(
            reqwest::Url::parse("http://vnet.test:7380").unwrap(),
            Box::new(FakeTransport {
                state: state.clone(),
            }),
            Box::new(move |d| sleeps.borrow_mut().sleeps.push(d)),
        );
        (client, FakeServer { state })
    }

    pub fn requests(&self) -> Vec<HttpRequest> {
        self.state.borrow().requests.clone()
    }

    pub fn sleeps(&self) -> Vec<Duration> {
        self.state.borrow().sleeps.clone()
    }

    /// Answers not yet used; a test that scripted exactly what a command needs expects zero.
    pub fn remaining(&self) -> usize {
        self.state.borrow().script.len()
    }
}

/// A command context over a fake server, in subscription `sub1`.
pub fn ctx(script: Vec<Scripted>) -> (super::Ctx, FakeServer) {
    let (client, fake) = FakeServer::client(script);
    (
        super::Ctx {
            client,
            subscription: "sub1".into(),
        },
        fake,
    )
}

/// Parses a whitespace-separated command line (`network vnet create -g rg1 ...`, without the
/// program name) and runs it against `ctx`; returns what would be printed.
pub fn run_line(ctx: &super::Ctx, line: &str) -> Result<String, super::CliError> {
    run_args(ctx, &line.split_whitespace().collect::<Vec<_>>())
}

/// [`run_line`] with the arguments already split (for values such as "").
pub fn run_args(ctx: &super::Ctx, args: &[&str]) -> Result<String, super::CliError> {
    use super::args::{Cli, Command};
    use clap::Parser;
    let cli = Cli::try_parse_from(std::iter::once(&"vnet").chain(args))
        .unwrap_or_else(|e| panic!("{args:?}: {e}"));
    let reply = match cli.command {
        Command::Group(cmd) => super::group::run(ctx, cmd)?,
        Command::Network(cmd) => super::network::run(ctx, cmd)?,
        other => panic!("run_args drives group and network commands only, not {other:?}"),
    };
    Ok(reply.render(cli.client.output))
}

/// A resource group as the server returns it.
pub fn group(name: &str, location: &str) -> Value {
    serde_json::json!({
        "id": format!("/subscriptions/sub1/resourceGroups/{name}"),
        "name": name,
        "location": location,
        "properties": {"provisioningState": "Succeeded"}
    })
}
