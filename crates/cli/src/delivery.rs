//! Builds the template renderer and the courier (email + SMS) from the
//! config file: the only place that knows which transports are configured.

use anyhow::{Context as _, Result};
use arflow_domain::dunning::Channel;
use arflow_domain::dunning::records::OutboxMessage;
use arflow_dunning::render::TemplateRenderer;
use arflow_dunning::{Courier, Renderer};
use arflow_notify::email::{EmailInput, EmailSettings, Mailer, Recipient, Sender};
use arflow_notify::sms::{SmsProvider, TwilioSms, with_opt_out_line};
use arflow_notify::{SendError, Templates};

use crate::context::Context;

pub fn templates(ctx: &Context) -> Result<Templates> {
    match &ctx.config.templates_dir {
        Some(dir) => Templates::with_overrides(dir)
            .with_context(|| format!("could not load the templates in {}", dir.display())),
        None => Ok(Templates::builtin()),
    }
}

pub fn renderer(ctx: &Context) -> Result<Box<dyn Renderer>> {
    let email = ctx.config.email.as_ref();
    Ok(Box::new(TemplateRenderer {
        templates: templates(ctx)?,
        sender_email: ctx
            .config
            .sender
            .email
            .clone()
            .or_else(|| email.map(|e| e.from.address.clone())),
        sender_phone: ctx.config.sender.phone.clone(),
        unsubscribe_base_url: email.and_then(|e| e.unsubscribe_base_url.clone()),
    }))
}

/// Email through the configured mailer, SMS through the configured provider.
pub struct ConfiguredCourier {
    mailer: Box<dyn Mailer>,
    sms: Option<Box<dyn SmsProvider>>,
    description: String,
}

impl ConfiguredCourier {
    pub fn describe(&self) -> &str {
        &self.description
    }
}

impl Courier for ConfiguredCourier {
    fn send(&self, m: &OutboxMessage) -> Result<String, SendError> {
        match m.channel {
            Channel::Email => self.mailer.send(&EmailInput {
                to: Recipient {
                    name: None,
                    address: m.recipient.clone(),
                },
                subject: m.subject.clone(),
                text: m.body_text.clone(),
                html: m.body_html.clone(),
                token: m.token.clone(),
                message_key: m.key.clone(),
            }),
            Channel::Sms => match &self.sms {
                Some(p) => p.send(&m.recipient, &with_opt_out_line(&m.body_text, &m.locale)),
                None => Err(SendError::permanent(
                    "no SMS provider is configured ([sms.twilio] in arflow.toml)",
                )),
            },
            Channel::Task => Err(SendError::permanent(
                "a task is not delivered by a provider",
            )),
        }
    }
}

pub fn courier(ctx: &Context) -> Result<Box<ConfiguredCourier>> {
    let mail_dir = ctx.data_dir.join("mail");
    let fallback;
    let settings = match &ctx.config.email {
        Some(s) => s,
        None => {
            // No [email] section: messages go to .eml files a new user can read.
            fallback = EmailSettings {
                from: Sender {
                    name: Some(ctx.org.name.clone()),
                    address: "arflow@localhost".to_string(),
                },
                reply_to: None,
                reply_to_domain: None,
                bounce_domain: None,
                unsubscribe_base_url: None,
                unsubscribe_mailto: None,
                dkim: None,
                smtp: None,
            };
            &fallback
        }
    };
    let mailer = settings
        .mailer(&mail_dir)
        .context("the [email] settings in arflow.toml are not usable")?;
    let sms: Option<Box<dyn SmsProvider>> =
        match ctx.config.sms.as_ref().and_then(|s| s.twilio.as_ref()) {
            Some(t) => Some(Box::new(
                TwilioSms::new(t)
                    .context("the [sms.twilio] settings in arflow.toml are not usable")?,
            )),
            None => None,
        };
    let email_desc = match &settings.smtp {
        Some(s) => format!("email over SMTP to {}", s.host),
        None => format!("email to files in {}", mail_dir.display()),
    };
    let sms_desc = if sms.is_some() {
        "SMS through Twilio"
    } else {
        "no SMS provider"
    };
    Ok(Box::new(ConfiguredCourier {
        mailer,
        sms,
        description: format!("{email_desc}, {sms_desc}"),
    }))
}
