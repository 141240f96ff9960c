//! Rendering planned actions into message text, behind a trait so the run
//! does not depend on how templates are found.

use arflow_domain::dunning::planner::PlannedAction;
use arflow_domain::model::{Customer, Organization};
use arflow_notify::Rendered;

/// What a template needs to render one action.
pub struct RenderRequest<'a> {
    pub org: &'a Organization,
    pub customer: &'a Customer,
    pub action: &'a PlannedAction,
    /// The message's secret token (reply threading, one-click unsubscribe).
    pub token: &'a str,
}

pub trait Renderer: Send + Sync {
    /// Subject, text and HTML of an email; for SMS only `text` is used.
    fn render_message(&self, req: &RenderRequest<'_>) -> Result<Rendered, String>;
    /// Title and description of a task for a person.
    fn render_task(&self, req: &RenderRequest<'_>) -> Result<(String, String), String>;
}

/// The shipped (or a user's) MiniJinja templates.
pub struct TemplateRenderer {
    pub templates: arflow_notify::Templates,
    /// How the organization can be reached, shown in messages.
    pub sender_email: Option<String>,
    pub sender_phone: Option<String>,
    /// Base of the one-click unsubscribe link (`BASE/u/TOKEN`), when the web
    /// server that answers it is configured.
    pub unsubscribe_base_url: Option<String>,
}

impl TemplateRenderer {
    fn context(&self, req: &RenderRequest<'_>) -> Result<arflow_notify::MessageContext, String> {
        use arflow_notify::templates::{Contact, ContextInput, Customer, Links, Organization};
        arflow_notify::MessageContext::new(ContextInput {
            organization: Organization {
                name: req.org.name.clone(),
                email: self.sender_email.clone(),
                phone: self.sender_phone.clone(),
            },
            customer: Customer {
                name: req.customer.name.clone(),
                external_id: req.customer.external_id.clone(),
            },
            contact: Contact {
                name: req.action.contact_name.clone(),
            },
            currency: req.action.currency,
            locale: &req.action.locale,
            today: req.action.local_date,
            invoices: &req.action.invoices,
            links: Links {
                pay_url: None,
                portal_url: None,
                unsubscribe_url: self
                    .unsubscribe_base_url
                    .as_ref()
                    .map(|b| format!("{}/u/{}", b.trim_end_matches('/'), req.token)),
            },
        })
        .map_err(|e| e.to_string())
    }
}

impl Renderer for TemplateRenderer {
    fn render_message(&self, req: &RenderRequest<'_>) -> Result<Rendered, String> {
        let ctx = self.context(req)?;
        match req.action.channel {
            arflow_domain::dunning::Channel::Sms => {
                let text = self
                    .templates
                    .render_sms(&req.action.template, &req.action.locale, &ctx)
                    .map_err(|e| e.to_string())?;
                Ok(Rendered {
                    subject: String::new(),
                    text,
                    html: None,
                })
            }
            _ => self
                .templates
                .render_email(&req.action.template, &req.action.locale, &ctx)
                .map_err(|e| e.to_string()),
        }
    }

    fn render_task(&self, req: &RenderRequest<'_>) -> Result<(String, String), String> {
        let ctx = self.context(req)?;
        let t = self
            .templates
            .render_task(&req.action.template, &req.action.locale, &ctx)
            .map_err(|e| e.to_string())?;
        Ok((t.title, t.detail))
    }
}
