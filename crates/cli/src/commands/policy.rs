//! `arflow policy validate|set|list|show|assign|unassign`.

use anyhow::{Context as _, Result, bail};
use arflow_domain::dunning::planner::describe_step;
use arflow_domain::dunning::records::AssignmentScope;
use arflow_domain::dunning::{Policy, parse_policy};

use crate::args::{AssignScopeArgs, PolicyArgs, PolicyCommand};
use crate::context::Context;
use crate::output::Table;

/// Reads and validates a policy file; every error is printed with its location.
fn read_policy(path: &std::path::Path) -> Result<Policy, Vec<String>> {
    let shown = path.display().to_string();
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return Err(vec![format!("{shown}: cannot read the file: {e}")]),
    };
    parse_policy(&text, &shown).map_err(|errors| errors.iter().map(ToString::to_string).collect())
}

fn scope(a: &AssignScopeArgs) -> Result<AssignmentScope> {
    match (&a.invoice, &a.customer, &a.segment) {
        (Some(i), None, None) => Ok(AssignmentScope::Invoice(i.clone())),
        (None, Some(c), None) => Ok(AssignmentScope::Customer(c.clone())),
        (None, None, Some(s)) => Ok(AssignmentScope::Segment(s.clone())),
        _ => bail!("give exactly one of --invoice, --customer or --segment"),
    }
}

fn scope_text(s: &AssignmentScope) -> String {
    match s {
        AssignmentScope::Invoice(k) => format!("invoice {k}"),
        AssignmentScope::Customer(k) => format!("customer {k}"),
        AssignmentScope::Segment(k) => format!("segment {k}"),
    }
}

pub fn validate(files: &[std::path::PathBuf]) -> Result<()> {
    let mut failed = 0;
    for f in files {
        match read_policy(f) {
            Ok(p) => println!(
                "{}: ok: policy '{}', {} steps{}",
                f.display(),
                p.name,
                p.steps.len(),
                p.repeat
                    .map(|r| format!(", repeating the last every {} days", r.every_days))
                    .unwrap_or_default()
            ),
            Err(errors) => {
                failed += 1;
                for e in errors {
                    eprintln!("{e}");
                }
            }
        }
    }
    if failed > 0 {
        bail!("{failed} of {} policy files are invalid", files.len());
    }
    Ok(())
}

pub fn run(ctx: &Context, args: &PolicyArgs) -> Result<()> {
    let org = ctx.org.id;
    match &args.command {
        PolicyCommand::Validate { files } => validate(files),
        PolicyCommand::Set { file } => {
            let policy = match read_policy(file) {
                Ok(p) => p,
                Err(errors) => {
                    for e in &errors {
                        eprintln!("{e}");
                    }
                    bail!(
                        "{} is invalid ({} errors); nothing was stored",
                        file.display(),
                        errors.len()
                    );
                }
            };
            let source = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            ctx.store
                .put_policy(org, &policy.name, &source, &ctx.actor(), ctx.clock.now())?;
            println!(
                "Stored policy '{}' ({} steps).",
                policy.name,
                policy.steps.len()
            );
            Ok(())
        }
        PolicyCommand::List => {
            let policies = arflow_dunning::snapshot::load_policies(ctx.store.as_ref(), org)?;
            let stored: Vec<String> = ctx
                .store
                .policies(org)?
                .into_iter()
                .map(|p| p.name)
                .collect();
            let default = ctx.store.dunning_settings(org)?.default_policy;
            let mut names: Vec<&String> = policies.keys().collect();
            names.sort();
            let mut t = Table::new(&["policy", "steps", "consolidation", "source"]);
            for n in names {
                let p = &policies[n];
                let steps: Vec<String> = p
                    .steps
                    .iter()
                    .map(|s| format!("{} {} ({})", s.channel, s.template, describe_step(s)))
                    .collect();
                let mut source = if stored.contains(n) {
                    "stored"
                } else {
                    "shipped default"
                }
                .to_string();
                if *n == default {
                    source.push_str(", organization default");
                }
                t.row(vec![
                    n.clone(),
                    steps.join("\n"),
                    p.consolidation.to_string(),
                    source,
                ]);
            }
            t.print();
            let assignments = ctx.store.policy_assignments(org)?;
            if !assignments.is_empty() {
                let mut t = Table::new(&["assigned to", "policy"]);
                for a in assignments {
                    t.row(vec![scope_text(&a.scope), a.policy]);
                }
                t.print();
            }
            Ok(())
        }
        PolicyCommand::Show { name } => {
            match ctx
                .store
                .policies(org)?
                .into_iter()
                .find(|p| &p.name == name)
            {
                Some(p) => print!("{}", p.source),
                None if name == "default" => {
                    print!("{}", arflow_domain::dunning::DEFAULT_POLICY_TOML)
                }
                None => bail!("no policy named '{name}' is stored"),
            }
            Ok(())
        }
        PolicyCommand::Assign { policy, scope: s } => {
            let s = scope(s)?;
            if policy == "default" && !ctx.store.policies(org)?.iter().any(|p| p.name == "default")
            {
                // The shipped default is not stored until someone stores it; store it
                // so the assignment refers to a real row.
                ctx.store.put_policy(
                    org,
                    "default",
                    arflow_domain::dunning::DEFAULT_POLICY_TOML,
                    &ctx.actor(),
                    ctx.clock.now(),
                )?;
            }
            ctx.store
                .assign_policy(org, &s, Some(policy), &ctx.actor(), ctx.clock.now())?;
            println!("{} now uses policy '{policy}'.", scope_text(&s));
            Ok(())
        }
        PolicyCommand::Unassign { scope: s } => {
            let s = scope(s)?;
            ctx.store
                .assign_policy(org, &s, None, &ctx.actor(), ctx.clock.now())?;
            println!("{} no longer has its own policy.", scope_text(&s));
            Ok(())
        }
    }
}
