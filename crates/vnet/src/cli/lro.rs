//! Following ARM long-running operations to their end, the way `az` (azure-core's ARM polling)
//! does.
//!
//! An operation answers its first request with either the final result (200/201/204 without
//! polling headers) or a promise: `Azure-AsyncOperation` names an operation-status URL whose body
//! says `InProgress | Succeeded | Failed | Canceled`; `Location` names a URL that answers 202
//! while the operation runs and the result (for POST actions) when it is done. Which one decides
//! depends on the verb:
//!
//! * PUT: poll `Azure-AsyncOperation` (else a 202's `Location`, else the resource's own
//!   `provisioningState`), then GET the resource: the printed result is always the stored state.
//! * DELETE: poll whichever header is present; nothing to print.
//! * POST (`final-state-via: location`): poll `Azure-AsyncOperation` if present, then GET
//!   `Location` until it stops answering 202; its body is the result.
//!
//! Waits honour `Retry-After` (and the millisecond variants azure-core reads); without one the
//! client's default interval applies. A `Failed`/`Canceled` status becomes its `error` object.

use super::error::CliError;
use super::http::{ArmClient, HttpResponse, Method};
use serde_json::Value;
use std::time::Duration;

/// The longest single wait, whatever `Retry-After` says.
const MAX_DELAY: Duration = Duration::from_secs(60);
/// Give up waiting (the operation goes on on the server) after this much polling.
const MAX_POLLING: Duration = Duration::from_secs(3600);

/// The verb that started the operation; it decides where the result comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Put,
    Delete,
    Post,
}

/// Follows the operation started by `initial` (the answer to the first request on
/// `resource_path`) and returns its result.
pub fn complete(
    client: &ArmClient,
    op: Operation,
    resource_path: &str,
    initial: HttpResponse,
) -> Result<Option<Value>, CliError> {
    let mut poller = Poller::new(client, &initial);
    let async_url = initial.header("azure-asyncoperation").map(str::to_owned);
    let location = initial.header("location").map(str::to_owned);
    match op {
        Operation::Put => {
            if let Some(url) = async_url {
                let status = poller.poll_status(&url)?;
                let target = status
                    .get("resourceLocation")
                    .and_then(Value::as_str)
                    .unwrap_or(resource_path)
                    .to_owned();
                return client.get(&target).map(Some);
            }
            if initial.status == 202 {
                if let Some(url) = location {
                    poller.poll_location(&url, op)?;
                    return client.get(resource_path).map(Some);
                }
            }
            match initial.json()? {
                Some(body) if is_terminal(provisioning_state(&body)) => {
                    check_provisioning(&body, resource_path)?;
                    Ok(Some(body))
                }
                Some(_) => poller.poll_provisioning(resource_path).map(Some),
                None => client.get(resource_path).map(Some),
            }
        }
        Operation::Delete => {
            if let Some(url) = async_url {
                poller.poll_status(&url)?;
            } else if initial.status == 202 {
                if let Some(url) = location {
                    poller.poll_location(&url, op)?;
                }
            }
            Ok(None)
        }
        Operation::Post => {
            if let Some(url) = async_url {
                let status = poller.poll_status(&url)?;
                if let Some(location) = location {
                    return poller.fetch_location(&location, op);
                }
                if initial.status != 202 {
                    if let Some(body) = initial.json()? {
                        return Ok(Some(body));
                    }
                }
                return Ok(status.get("properties").cloned());
            }
            if initial.status == 202 {
                if let Some(url) = location {
                    return poller.poll_location(&url, op);
                }
            }
            initial.json()
        }
    }
}

/// Polling state: the next wait and the time spent so far.
struct Poller<'a> {
    client: &'a ArmClient,
    delay: Duration,
    waited: Duration,
}

impl<'a> Poller<'a> {
    fn new(client: &'a ArmClient, initial: &HttpResponse) -> Self {
        Poller {
            client,
            delay: retry_after(initial).unwrap_or(client.default_poll_interval),
            waited: Duration::ZERO,
        }
    }

    fn wait(&mut self, what: &str) -> Result<(), CliError> {
        if self.waited >= MAX_POLLING {
            return Err(CliError::new(
                "PollingTimeout",
                format!(
                    "{what} was still running after {} s; it goes on on the server, check it later with `show`",
                    self.waited.as_secs()
                ),
            ));
        }
        self.client.sleep(self.delay);
        self.waited += self.delay;
        Ok(())
    }

    fn after(&mut self, response: &HttpResponse) {
        self.delay = retry_after(response).unwrap_or(self.client.default_poll_interval);
    }

    /// Polls an operation-status URL until a terminal status; returns the final status body.
    fn poll_status(&mut self, url: &str) -> Result<Value, CliError> {
        loop {
            self.wait("the operation")?;
            let response = self.client.send(Method::Get, url, None)?;
            self.after(&response);
            let body = response.json()?.ok_or_else(|| {
                CliError::bad_response(format!("the operation status at {url} has no body"))
            })?;
            let status = body.get("status").and_then(Value::as_str).ok_or_else(|| {
                CliError::bad_response(format!("no status found in the operation status at {url}"))
            })?;
            match status.to_ascii_lowercase().as_str() {
                "succeeded" => return Ok(body),
                "failed" | "canceled" | "cancelled" => {
                    return Err(body
                        .get("error")
                        .and_then(CliError::from_error_object)
                        .unwrap_or_else(|| {
                            CliError::new(
                                "OperationFailed",
                                format!("the long-running operation ended with status {status}"),
                            )
                        }))
                }
                _ => continue,
            }
        }
    }

    /// Polls a `Location` URL until it stops answering 202; returns its final body.
    fn poll_location(&mut self, url: &str, op: Operation) -> Result<Option<Value>, CliError> {
        loop {
            self.wait("the operation")?;
            let response = self.client.send_raw(Method::Get, url, None)?;
            if response.status == 202 {
                self.after(&response);
                continue;
            }
            return finished_location(response, op);
        }
    }

    /// GETs a `Location` URL after the status already said Succeeded (it may still say 202 for
    /// a moment; then keep polling it).
    fn fetch_location(&mut self, url: &str, op: Operation) -> Result<Option<Value>, CliError> {
        let response = self.client.send_raw(Method::Get, url, None)?;
        if response.status == 202 {
            self.after(&response);
            return self.poll_location(url, op);
        }
        finished_location(response, op)
    }

    /// Re-reads a resource until its `provisioningState` settles (ARM's fallback when an
    /// unfinished PUT sends no polling header).
    fn poll_provisioning(&mut self, resource_path: &str) -> Result<Value, CliError> {
        loop {
            self.wait("the operation")?;
            let response = self.client.send(Method::Get, resource_path, None)?;
            self.after(&response);
            let body = response.json()?.ok_or_else(|| {
                CliError::bad_response(format!("GET {resource_path} returned an empty body"))
            })?;
            if is_terminal(provisioning_state(&body)) {
                check_provisioning(&body, resource_path)?;
                return Ok(body);
            }
        }
    }
}

/// The end of `Location` polling: a success carries the result; a DELETE whose `Location` is
/// the resource itself ends in 404, which means the resource is gone, which is success.
fn finished_location(response: HttpResponse, op: Operation) -> Result<Option<Value>, CliError> {
    if response.is_success() {
        response.json()
    } else if response.status == 404 && op == Operation::Delete {
        Ok(None)
    } else {
        Err(CliError::from_response(response.status, &response.body))
    }
}

fn provisioning_state(body: &Value) -> Option<&str> {
    body.pointer("/properties/provisioningState")
        .or_else(|| body.get("provisioningState"))
        .and_then(Value::as_str)
}

/// A resource with no `provisioningState` is as done as it will get.
fn is_terminal(state: Option<&str>) -> bool {
    match state {
        None => true,
        Some(s) => ["succeeded", "failed", "canceled"]
            .iter()
            .any(|t| s.eq_ignore_ascii_case(t)),
    }
}

fn check_provisioning(body: &Value, resource_path: &str) -> Result<(), CliError> {
    match provisioning_state(body) {
        Some(s) if s.eq_ignore_ascii_case("failed") || s.eq_ignore_ascii_case("canceled") => {
            let id = body
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or(resource_path);
            Err(CliError::new(
                "ProvisioningFailed",
                format!("{id} ended in provisioningState {s}"),
            ))
        }
        _ => Ok(()),
    }
}

/// The wait a response asks for: `retry-after-ms` / `x-ms-retry-after-ms` in milliseconds, or
/// `Retry-After` in seconds. Zero, missing or unreadable means "no opinion".
pub fn retry_after(response: &HttpResponse) -> Option<Duration> {
    let ms = ["retry-after-ms", "x-ms-retry-after-ms"]
        .iter()
        .find_map(|h| response.header(h))
        .and_then(|v| v.trim().parse::<f64>().ok())
        .map(|ms| ms / 1000.0);
    let secs = ms.or_else(|| {
        response
            .header("retry-after")
            .and_then(|v| v.trim().parse::<f64>().ok())
    })?;
    if !secs.is_finite() || secs <= 0.0 {
        return None;
    }
    Some(Duration::from_secs_f64(secs).min(MAX_DELAY))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::http::Wait;
    use crate::cli::testing::{reply, reply_with, FakeServer};
    use serde_json::json;

    const RES: &str = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v?api-version=2025-07-01";
    const OP: &str = "http://0.0.0.0:1/subscriptions/s/providers/Microsoft.Network/locations/westus/operations/op1?api-version=2025-07-01";

    #[test]
    fn put_polls_async_operation_then_gets_the_resource() {
        let (client, fake) = FakeServer::client(vec![
            reply_with(
                201,
                &[("Azure-AsyncOperation", OP), ("Retry-After", "2")],
                Some(json!({"name": "v", "properties": {"provisioningState": "Updating"}})),
            ),
            reply_with(
                200,
                &[("Retry-After", "3")],
                Some(json!({"status": "InProgress"})),
            ),
            reply(200, json!({"status": "Succeeded"})),
            reply(
                200,
                json!({"name": "v", "properties": {"provisioningState": "Succeeded"}}),
            ),
        ]);
        let out = client.put(RES, &json!({}), Wait::Yes).unwrap();
        assert_eq!(
            out,
            Some(json!({"name": "v", "properties": {"provisioningState": "Succeeded"}}))
        );
        let reqs = fake.requests();
        assert_eq!(reqs.len(), 4);
        assert_eq!(reqs[1].method, Method::Get);
        assert_eq!(
            reqs[1].url,
            "http://vnet.test:7380/subscriptions/s/providers/Microsoft.Network/locations/westus/operations/op1?api-version=2025-07-01"
        );
        assert_eq!(reqs[3].url, format!("http://vnet.test:7380{RES}"));
        assert_eq!(
            fake.sleeps(),
            vec![Duration::from_secs(2), Duration::from_secs(3)]
        );
    }

    #[test]
    fn put_failure_prints_the_status_error() {
        let (client, _fake) = FakeServer::client(vec![
            reply_with(201, &[("Azure-AsyncOperation", OP)], None),
            reply(
                200,
                json!({"status": "Failed", "error": {"code": "InUseSubnetCannotBeDeleted", "message": "Subnet s is in use"}}),
            ),
        ]);
        let err = client.put(RES, &json!({}), Wait::Yes).unwrap_err();
        assert_eq!(
            err.to_string(),
            "InUseSubnetCannotBeDeleted: Subnet s is in use"
        );
    }

    #[test]
    fn canceled_without_error_object_still_fails() {
        let (client, _fake) = FakeServer::client(vec![
            reply_with(202, &[("Azure-AsyncOperation", OP)], None),
            reply(200, json!({"status": "Canceled"})),
        ]);
        let err = client.delete(RES, Wait::Yes).unwrap_err();
        assert_eq!(err.code, "OperationFailed");
        assert!(err.message.contains("Canceled"));
    }

    #[test]
    fn status_body_without_status_is_a_bad_response() {
        let (client, _fake) = FakeServer::client(vec![
            reply_with(201, &[("Azure-AsyncOperation", OP)], None),
            reply(200, json!({"percentComplete": 50})),
        ]);
        let err = client.put(RES, &json!({}), Wait::Yes).unwrap_err();
        assert_eq!(err.code, "BadResponse");
    }

    #[test]
    fn put_without_headers_that_is_done_returns_the_body() {
        let (client, fake) = FakeServer::client(vec![reply(
            200,
            json!({"name": "v", "properties": {"provisioningState": "Succeeded"}}),
        )]);
        let out = client.put(RES, &json!({}), Wait::Yes).unwrap().unwrap();
        assert_eq!(out["name"], "v");
        assert_eq!(fake.requests().len(), 1);
        assert!(fake.sleeps().is_empty());
    }

    #[test]
    fn put_without_headers_polls_provisioning_state() {
        let (client, fake) = FakeServer::client(vec![
            reply(
                201,
                json!({"properties": {"provisioningState": "Updating"}}),
            ),
            reply(
                200,
                json!({"properties": {"provisioningState": "Updating"}}),
            ),
            reply(
                200,
                json!({"properties": {"provisioningState": "Succeeded"}}),
            ),
        ]);
        let out = client.put(RES, &json!({}), Wait::Yes).unwrap().unwrap();
        assert_eq!(out["properties"]["provisioningState"], "Succeeded");
        assert_eq!(fake.sleeps(), vec![Duration::from_secs(1); 2]);
    }

    #[test]
    fn provisioning_failed_is_an_error() {
        let (client, _fake) = FakeServer::client(vec![reply(
            201,
            json!({"id": "/x", "properties": {"provisioningState": "Failed"}}),
        )]);
        let err = client.put(RES, &json!({}), Wait::Yes).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ProvisioningFailed: /x ended in provisioningState Failed"
        );
    }

    #[test]
    fn no_wait_sends_one_request_and_returns_nothing() {
        let (client, fake) = FakeServer::client(vec![reply_with(
            201,
            &[("Azure-AsyncOperation", OP)],
            Some(json!({"name": "v"})),
        )]);
        assert_eq!(client.put(RES, &json!({}), Wait::No).unwrap(), None);
        assert_eq!(fake.requests().len(), 1);
    }

    #[test]
    fn no_wait_still_reports_a_refused_request() {
        let (client, _fake) = FakeServer::client(vec![reply(
            400,
            json!({"error": {"code": "InvalidParameter", "message": "bad"}}),
        )]);
        let err = client.put(RES, &json!({}), Wait::No).unwrap_err();
        assert_eq!(err.to_string(), "InvalidParameter: bad");
    }

    #[test]
    fn delete_polls_location_until_not_202() {
        let (client, fake) = FakeServer::client(vec![
            reply_with(
                202,
                &[("Location", "/operationResults/1"), ("Retry-After", "1")],
                None,
            ),
            reply_with(202, &[("Retry-After", "0")], None),
            reply_with(204, &[], None),
        ]);
        client.delete(RES, Wait::Yes).unwrap();
        assert_eq!(fake.requests().len(), 3);
        assert_eq!(
            fake.requests()[2].url,
            "http://vnet.test:7380/operationResults/1"
        );
    }

    #[test]
    fn delete_whose_location_is_the_resource_ends_with_404() {
        let (client, _fake) = FakeServer::client(vec![
            reply_with(202, &[("Location", RES)], None),
            reply(
                404,
                json!({"error": {"code": "ResourceNotFound", "message": "gone"}}),
            ),
        ]);
        client.delete(RES, Wait::Yes).unwrap();
    }

    #[test]
    fn delete_answered_200_or_204_is_done() {
        let (client, fake) = FakeServer::client(vec![reply_with(204, &[], None)]);
        client.delete(RES, Wait::Yes).unwrap();
        assert_eq!(fake.requests().len(), 1);
    }

    #[test]
    fn post_polls_location_and_returns_its_body() {
        let routes = json!({"value": [{"source": "Default", "state": "Active"}]});
        let (client, fake) = FakeServer::client(vec![
            reply_with(
                202,
                &[("Location", "/nic1/operationResults/9?api-version=x")],
                None,
            ),
            reply_with(202, &[], None),
            reply(200, routes.clone()),
        ]);
        let out = client
            .post("/nic1/effectiveRouteTable", None, Wait::Yes)
            .unwrap();
        assert_eq!(out, Some(routes));
        assert_eq!(fake.requests()[0].method, Method::Post);
        assert_eq!(fake.requests()[0].body, None);
    }

    #[test]
    fn post_with_both_headers_polls_status_then_reads_location() {
        let (client, fake) = FakeServer::client(vec![
            reply_with(
                202,
                &[("Azure-AsyncOperation", OP), ("Location", "/result/1")],
                None,
            ),
            reply(200, json!({"status": "InProgress"})),
            reply(200, json!({"status": "Succeeded"})),
            reply(200, json!({"keyLength": 128})),
        ]);
        let out = client
            .post("/reset", Some(&json!({"keyLength": 128})), Wait::Yes)
            .unwrap();
        assert_eq!(out, Some(json!({"keyLength": 128})));
        assert_eq!(fake.requests()[3].url, "http://vnet.test:7380/result/1");
        assert_eq!(
            fake.sleeps().len(),
            2,
            "the Location GET follows Succeeded at once"
        );
    }

    #[test]
    fn post_location_error_is_reported() {
        let (client, _fake) = FakeServer::client(vec![
            reply_with(202, &[("Location", "/result/1")], None),
            reply(
                404,
                json!({"error": {"code": "NotFound", "message": "nic missing"}}),
            ),
        ]);
        let err = client.post("/x", None, Wait::Yes).unwrap_err();
        assert_eq!(err.to_string(), "NotFound: nic missing");
    }

    #[test]
    fn post_answered_200_returns_the_body_at_once() {
        let (client, fake) =
            FakeServer::client(vec![reply(200, json!({"nextHopType": "VnetLocal"}))]);
        let out = client
            .post("/nextHop", Some(&json!({})), Wait::Yes)
            .unwrap();
        assert_eq!(out, Some(json!({"nextHopType": "VnetLocal"})));
        assert!(fake.sleeps().is_empty());
    }

    #[test]
    fn retry_after_variants() {
        let r = |h: &[(&str, &str)]| HttpResponse {
            status: 202,
            headers: h
                .iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
            body: vec![],
        };
        assert_eq!(
            retry_after(&r(&[("Retry-After", "5")])),
            Some(Duration::from_secs(5))
        );
        assert_eq!(
            retry_after(&r(&[("retry-after-ms", "250"), ("Retry-After", "5")])),
            Some(Duration::from_millis(250))
        );
        assert_eq!(
            retry_after(&r(&[("x-ms-retry-after-ms", "100")])),
            Some(Duration::from_millis(100))
        );
        assert_eq!(retry_after(&r(&[("Retry-After", "0")])), None);
        assert_eq!(
            retry_after(&r(&[("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT")])),
            None
        );
        assert_eq!(
            retry_after(&r(&[("Retry-After", "100000")])),
            Some(MAX_DELAY)
        );
        assert_eq!(retry_after(&r(&[])), None);
    }

    #[test]
    fn endless_operation_times_out() {
        let mut script = vec![reply_with(
            201,
            &[("Azure-AsyncOperation", OP), ("Retry-After", "60")],
            None,
        )];
        for _ in 0..61 {
            script.push(reply_with(
                200,
                &[("Retry-After", "60")],
                Some(json!({"status": "InProgress"})),
            ));
        }
        let (client, _fake) = FakeServer::client(script);
        let err = client.put(RES, &json!({}), Wait::Yes).unwrap_err();
        assert_eq!(err.code, "PollingTimeout");
    }
}
