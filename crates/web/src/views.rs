//! Server-side HTML: MiniJinja templates embedded in the binary
//! (`crates/web/templates/`), autoescaped, with a few filters for money and
//! dates. No template contains a script or a style attribute: the CSP
//! allows only `/assets/app.js` and `/assets/app.css`.

use arflow_domain::money::{Currency, format_minor_grouped};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use minijinja::{Environment, Value};

use crate::problem::AppError;

/// Every template, embedded at build time. A new page adds its line here.
const TEMPLATES: &[(&str, &str)] = &[
    ("base.html", include_str!("../templates/base.html")),
    ("macros.html", include_str!("../templates/macros.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("overview.html", include_str!("../templates/overview.html")),
    ("invoices.html", include_str!("../templates/invoices.html")),
    (
        "customers.html",
        include_str!("../templates/customers.html"),
    ),
    ("customer.html", include_str!("../templates/customer.html")),
    ("worklist.html", include_str!("../templates/worklist.html")),
    ("dunning.html", include_str!("../templates/dunning.html")),
    ("policy.html", include_str!("../templates/policy.html")),
    ("plan.html", include_str!("../templates/plan.html")),
    ("outbox.html", include_str!("../templates/outbox.html")),
    ("message.html", include_str!("../templates/message.html")),
    ("import.html", include_str!("../templates/import.html")),
    ("settings.html", include_str!("../templates/settings.html")),
    ("audit.html", include_str!("../templates/audit.html")),
];

pub struct Views {
    env: Environment<'static>,
}

impl Default for Views {
    fn default() -> Self {
        Views::new()
    }
}

impl Views {
    pub fn new() -> Views {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|name| {
            if name.ends_with(".html") {
                minijinja::AutoEscape::Html
            } else {
                minijinja::AutoEscape::None
            }
        });
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        for (name, source) in TEMPLATES {
            // The templates are part of the binary; a syntax error is a
            // build defect caught by the tests (`all_templates_parse`).
            if let Err(e) = env.add_template(name, source) {
                tracing::error!(template = name, error = %e, "template does not parse");
            }
        }
        env.add_filter("money", money_filter);
        env.add_filter("pct", pct_filter);
        env.add_filter("days", days_filter);
        Views { env }
    }

    /// Renders a template to a complete HTML response.
    pub fn render(&self, name: &str, ctx: Value) -> Result<Response, AppError> {
        let html = self
            .env
            .get_template(name)
            .and_then(|t| t.render(ctx))
            .map_err(|e| AppError::Internal(format!("template {name}: {e:#}")))?;
        Ok(Html(html).into_response())
    }
}

/// `{{ minor|money(currency) }}`: grouped decimal amount with its currency code.
fn money_filter(minor: i64, currency: String) -> Result<String, minijinja::Error> {
    let c = Currency::parse(&currency).map_err(|e| {
        minijinja::Error::new(minijinja::ErrorKind::InvalidOperation, e.to_string())
    })?;
    Ok(format!("{} {}", format_minor_grouped(minor, c), c.code()))
}

/// `{{ ratio|pct }}`: a ratio already in percent (e.g. CEI 87.3) → "87.3 %"; none → "—".
fn pct_filter(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.1} %"),
        _ => "—".to_string(),
    }
}

/// `{{ days|days }}`: "12.3 days"; none → "—".
fn days_filter(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v:.1} days"),
        _ => "—".to_string(),
    }
}

/// HTML-escapes text for element content and quoted attributes (for the
/// few responses built without a template: error and unsubscribe pages).
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A complete page without navigation (errors, unsubscribe). `body` is HTML.
pub fn bare_page(status: StatusCode, title: &str, body: &str) -> Response {
    let title = escape(title);
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <link rel=\"stylesheet\" href=\"/assets/app.css\">\
         <title>{title}</title></head><body class=\"bare\"><main><h1>{title}</h1>{body}</main></body></html>\n"
    );
    (
        status,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        html,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_templates_parse() {
        let mut env = Environment::new();
        for (name, source) in TEMPLATES {
            env.add_template(name, source)
                .unwrap_or_else(|e| panic!("{name}: {e:#}"));
        }
    }

    #[test]
    fn no_template_has_inline_script_or_style() {
        for (name, source) in TEMPLATES {
            let lower = source.to_lowercase();
            assert!(!lower.contains("<script>"), "{name} has an inline script");
            assert!(!lower.contains("style="), "{name} has a style attribute");
            assert!(!lower.contains("<style"), "{name} has a style element");
            // on<event>= attributes: " onclick=", " onsubmit=" ...
            for (i, _) in lower.match_indices(" on") {
                let rest = &lower[i + 3..];
                let word: String = rest
                    .chars()
                    .take_while(|c| c.is_ascii_lowercase())
                    .collect();
                assert!(
                    word.is_empty() || !rest[word.len()..].starts_with('='),
                    "{name} has an inline handler on{word}="
                );
            }
        }
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<a href="x">O'Brien & co</a>"#),
            "&lt;a href=&quot;x&quot;&gt;O&#39;Brien &amp; co&lt;/a&gt;"
        );
    }

    #[test]
    fn money_is_grouped_with_its_currency() {
        assert_eq!(
            money_filter(123456789, "USD".into()).unwrap(),
            "1,234,567.89 USD"
        );
        assert_eq!(money_filter(-500, "JPY".into()).unwrap(), "-500 JPY");
    }
}
