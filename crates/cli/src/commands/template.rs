//! `arflow template preview|list`.

use anyhow::{Result, bail};
use arflow_domain::dunning::planner::PlannedAction;
use arflow_domain::dunning::policy::{Channel, Tone};
use arflow_domain::dunning::records::{MessageInvoice, StepKey};
use arflow_domain::model::InvoiceStatus;
use arflow_dunning::{RenderRequest, Snapshot};

use crate::args::{PreviewChannel, TemplateArgs, TemplateCommand};
use crate::context::Context;
use crate::delivery;

pub fn run(ctx: &Context, args: &TemplateArgs) -> Result<()> {
    match &args.command {
        TemplateCommand::List => {
            let templates = delivery::templates(ctx)?;
            for name in templates.names() {
                println!("{name}");
            }
            Ok(())
        }
        TemplateCommand::Preview {
            name,
            customer,
            locale,
            channel,
            html,
        } => preview(ctx, name, customer, locale.as_deref(), *channel, *html),
    }
}

fn preview(
    ctx: &Context,
    name: &str,
    customer: &str,
    locale: Option<&str>,
    channel: PreviewChannel,
    html: bool,
) -> Result<()> {
    let now = ctx.clock.now();
    let snapshot = Snapshot::load(ctx.store.as_ref(), &ctx.org, now)?;
    let Some(c) = snapshot.customer(customer) else {
        bail!("unknown customer '{customer}'");
    };
    let tz = c
        .time_zone
        .as_deref()
        .and_then(|z| jiff::tz::TimeZone::get(z).ok())
        .unwrap_or_else(|| snapshot.org_tz.clone());
    let today = now.to_zoned_datetime(tz.clone()).date();
    // The customer's open invoices in their main currency (else the first found).
    let open: Vec<(usize, &arflow_domain::model::Invoice)> = snapshot
        .invoices
        .iter()
        .enumerate()
        .filter(|(i, inv)| {
            inv.customer == customer && inv.status == InvoiceStatus::Open && snapshot.open[*i] > 0
        })
        .collect();
    let currency = if open.iter().any(|(_, i)| i.currency == c.currency) {
        c.currency
    } else if let Some((_, i)) = open.first() {
        i.currency
    } else {
        bail!("customer '{customer}' has no open invoices to preview a reminder with");
    };
    let invoices: Vec<MessageInvoice> = open
        .iter()
        .filter(|(_, inv)| inv.currency == currency)
        .map(|(i, inv)| MessageInvoice {
            number: inv.number.clone(),
            issue_date: inv.issue_date,
            due_date: inv.due_date,
            open: snapshot.open[*i],
            days_overdue: i64::from((today - inv.due_date).get_days()),
            fee: 0,
            interest: 0,
            compensation: 0,
        })
        .collect();
    let contact = snapshot
        .contacts
        .iter()
        .filter(|k| k.customer == customer)
        .min_by_key(|k| (!k.is_primary, k.external_id.clone()));
    let channel = match channel {
        PreviewChannel::Email => Channel::Email,
        PreviewChannel::Sms => Channel::Sms,
        PreviewChannel::Task => Channel::Task,
    };
    let action = PlannedAction {
        key: "preview".into(),
        customer: customer.to_string(),
        currency,
        policy: "preview".into(),
        step: StepKey::Sequence { step: 0 },
        template: name.to_string(),
        tone: Tone::Neutral,
        requested_channel: channel,
        channel,
        fallback_reason: None,
        contact: contact.map(|k| k.external_id.clone()),
        contact_name: contact.map(|k| k.name.clone()),
        recipient: contact.and_then(|k| match channel {
            Channel::Sms => k.phone.clone(),
            _ => k.email.clone(),
        }),
        locale: locale
            .map(str::to_string)
            .or_else(|| c.locale.clone())
            .unwrap_or_else(|| "en".into()),
        time_zone: tz.iana_name().unwrap_or("UTC").to_string(),
        send_at: now,
        local_date: today,
        invoices,
        steps: Vec::new(),
        charges: Vec::new(),
    };
    let renderer = delivery::renderer(ctx)?;
    let req = RenderRequest {
        org: &ctx.org,
        customer: c,
        action: &action,
        token: "preview-token",
    };
    if channel == Channel::Task {
        let (title, detail) = renderer
            .render_task(&req)
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        println!("{title}\n\n{detail}");
        return Ok(());
    }
    let r = renderer
        .render_message(&req)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    if html {
        match r.html {
            Some(h) => println!("{h}"),
            None => bail!("template '{name}' has no HTML part"),
        }
    } else {
        if !r.subject.is_empty() {
            println!("Subject: {}\n", r.subject);
        }
        println!("{}", r.text);
    }
    Ok(())
}
