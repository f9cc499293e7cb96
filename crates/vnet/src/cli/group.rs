//! `vnet group ...`: resource groups (Microsoft.Resources, api-version 2021-04-01).
//!
//! Also home of [`location_or_group`], the default every `create` uses when `-l` is omitted:
//! the resource group's location, as in az.

use super::error::CliError;
use super::http::Wait;
use super::ids;
use super::output::Reply;
use super::table::{Column, TableStyle};
use super::Ctx;
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use std::io::IsTerminal;

#[derive(Debug, Subcommand)]
pub enum GroupCommand {
    /// Create (or update) a resource group.
    Create(CreateArgs),
    /// Show a resource group.
    Show(GroupName),
    /// List resource groups.
    List,
    /// Delete a resource group and everything in it.
    Delete(DeleteArgs),
}

/// `-n/--name` (also `-g/--resource-group`, as az accepts both).
#[derive(Debug, Clone, Args)]
pub struct GroupName {
    /// Resource group name.
    #[arg(
        short = 'n',
        long = "name",
        visible_short_alias = 'g',
        visible_alias = "resource-group"
    )]
    pub name: String,
}

#[derive(Debug, Clone, Args)]
pub struct CreateArgs {
    #[command(flatten)]
    pub group: GroupName,
    /// Location, e.g. westus.
    #[arg(short = 'l', long)]
    pub location: String,
}

#[derive(Debug, Clone, Args)]
pub struct DeleteArgs {
    #[command(flatten)]
    pub group: GroupName,
    /// Do not ask for confirmation.
    #[arg(short = 'y', long)]
    pub yes: bool,
    /// Do not wait for the operation to finish.
    #[arg(long)]
    pub no_wait: bool,
}

static COLUMNS: &[Column] = &[
    Column::new("Name", "/name"),
    Column::new("Location", "/location"),
    Column::new("Status", "/properties/provisioningState"),
];

pub fn run(ctx: &Ctx, cmd: GroupCommand) -> Result<Reply, CliError> {
    let table = TableStyle::columns(COLUMNS);
    let reply = match cmd {
        GroupCommand::Create(args) => {
            let url = ids::group_url(&ctx.subscription, &args.group.name);
            let value = ctx
                .client
                .put(&url, &json!({ "location": args.location }), Wait::Yes)?;
            Reply::value(value, table)
        }
        GroupCommand::Show(args) => {
            let url = ids::group_url(&ctx.subscription, &args.name);
            Reply::value(Some(ctx.client.get(&url)?), table)
        }
        GroupCommand::List => {
            let items = ctx.client.list(&ids::groups_url(&ctx.subscription))?;
            Reply::list(items, table)
        }
        GroupCommand::Delete(args) => {
            confirm(args.yes, std::io::stdin().is_terminal(), ask_y_n)?;
            let url = ids::group_url(&ctx.subscription, &args.group.name);
            ctx.client.delete(&url, Wait::from_no_wait(args.no_wait))?;
            Reply::none()
        }
    };
    Ok(reply.unflattened())
}

/// Deleting a group deletes everything in it, so, as az does, it needs `--yes` or a "y" typed
/// at a terminal; without a terminal to ask on, it is refused rather than assumed.
fn confirm(yes: bool, interactive: bool, ask: impl FnOnce() -> bool) -> Result<(), CliError> {
    if yes {
        return Ok(());
    }
    if !interactive {
        return Err(CliError::validation(
            "Unable to prompt for confirmation as no tty available. Use --yes.",
        ));
    }
    if ask() {
        Ok(())
    } else {
        Err(CliError::new(
            "OperationCancelled",
            "the resource group was not deleted",
        ))
    }
}

fn ask_y_n() -> bool {
    use std::io::Write;
    eprint!("Are you sure you want to perform this operation? (y/n): ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin().read_line(&mut answer).is_ok()
        && matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// `-l` if given, else the resource group's location (which also checks that the group exists
/// before anything is created in it).
pub fn location_or_group(
    ctx: &Ctx,
    resource_group: &str,
    location: Option<&str>,
) -> Result<String, CliError> {
    if let Some(location) = location {
        return Ok(location.to_owned());
    }
    let group = ctx
        .client
        .get(&ids::group_url(&ctx.subscription, resource_group))?;
    group
        .get("location")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            CliError::bad_response(format!("resource group {resource_group} has no location"))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::http::Method;
    use crate::cli::testing::{ctx, group, reply, reply_with, run_line};

    #[test]
    fn create_puts_the_location() {
        let (ctx, fake) = ctx(vec![reply(201, group("rg1", "westus"))]);
        let out = run_line(&ctx, "group create -n rg1 -l westus").unwrap();
        let req = &fake.requests()[0];
        assert_eq!(req.method, Method::Put);
        assert_eq!(
            req.url,
            "http://vnet.test:7380/subscriptions/sub1/resourcegroups/rg1?api-version=2021-04-01"
        );
        assert_eq!(req.body, Some(json!({"location": "westus"})));
        assert!(
            out.contains("\"properties\": {\n    \"provisioningState\": \"Succeeded\""),
            "{out}"
        );
    }

    #[test]
    fn list_as_table() {
        let (ctx, _fake) = ctx(vec![reply(
            200,
            json!({"value": [group("a", "westus"), group("bb", "westus")]}),
        )]);
        let out = run_line(&ctx, "group list -o table").unwrap();
        assert_eq!(
            out,
            "Name    Location    Status\n------  ----------  ---------\na       westus      Succeeded\nbb      westus      Succeeded\n"
        );
    }

    #[test]
    fn show_accepts_g_as_well() {
        let (ctx, fake) = ctx(vec![reply(200, group("rg1", "westus"))]);
        run_line(&ctx, "group show -g rg1").unwrap();
        assert!(fake.requests()[0]
            .url
            .ends_with("/resourcegroups/rg1?api-version=2021-04-01"));
    }

    #[test]
    fn delete_waits_and_prints_nothing() {
        let (ctx, fake) = ctx(vec![
            reply_with(
                202,
                &[("Location", "/subscriptions/sub1/operationresults/x")],
                None,
            ),
            reply_with(200, &[], None),
        ]);
        assert_eq!(run_line(&ctx, "group delete -n rg1 --yes").unwrap(), "");
        assert_eq!(fake.requests()[0].method, Method::Delete);
        assert_eq!(fake.remaining(), 0);
    }

    #[test]
    fn delete_needs_yes_or_a_terminal_answer() {
        assert!(confirm(true, false, || panic!("not asked")).is_ok());
        assert_eq!(
            confirm(false, false, || panic!("not asked"))
                .unwrap_err()
                .code,
            "ValidationError"
        );
        assert!(confirm(false, true, || true).is_ok());
        assert_eq!(
            confirm(false, true, || false).unwrap_err().code,
            "OperationCancelled"
        );
    }

    #[test]
    fn location_defaults_to_the_group() {
        let (ctx, fake) = ctx(vec![reply(200, group("rg1", "westus"))]);
        assert_eq!(location_or_group(&ctx, "rg1", None).unwrap(), "westus");
        assert_eq!(
            location_or_group(&ctx, "rg1", Some("eastus")).unwrap(),
            "eastus"
        );
        assert_eq!(fake.requests().len(), 1);
    }

    #[test]
    fn missing_group_is_reported() {
        let (ctx, _fake) = ctx(vec![reply(
            404,
            json!({"error": {"code": "ResourceGroupNotFound", "message": "Resource group 'rg9' could not be found."}}),
        )]);
        let err = location_or_group(&ctx, "rg9", None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "ResourceGroupNotFound: Resource group 'rg9' could not be found."
        );
    }
}
