//! Reminder templates: MiniJinja sources per language, shipped in the binary
//! and overridable from a directory with the same layout
//! (`LANG/NAME.subject.j2`, `.txt.j2`, `.html.j2`, `.sms.j2`; files whose
//! name starts with `_` are partials). `templates/README.md` lists the
//! variables templates see.

mod context;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};

pub use context::{
    Contact, ContextError, ContextInput, Customer, InvoiceLine, Links, MessageContext,
    Organization, Totals,
};

use crate::Rendered;
use crate::locale::Lang;

/// The part of a message a template file renders.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TemplateKind {
    Subject,
    Text,
    Html,
    Sms,
}

impl TemplateKind {
    pub const ALL: [TemplateKind; 4] = [
        TemplateKind::Subject,
        TemplateKind::Text,
        TemplateKind::Html,
        TemplateKind::Sms,
    ];

    /// The file extension before `.j2`.
    pub fn extension(self) -> &'static str {
        match self {
            TemplateKind::Subject => "subject",
            TemplateKind::Text => "txt",
            TemplateKind::Html => "html",
            TemplateKind::Sms => "sms",
        }
    }

    fn from_extension(ext: &str) -> Option<TemplateKind> {
        TemplateKind::ALL.into_iter().find(|k| k.extension() == ext)
    }
}

/// A rendered task for a collector (from `NAME.subject.j2` and `NAME.txt.j2`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedTask {
    pub title: String,
    pub detail: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    #[error("there is no {} template '{name}' for language {lang} nor for English", kind.extension())]
    NotFound {
        name: String,
        kind: TemplateKind,
        lang: Lang,
    },
    /// A syntax error, an undefined variable, a failing filter...
    #[error("{}{}: {message}", file.as_deref().map(|p| p.display().to_string()).unwrap_or_else(|| template.clone()), line.map(|l| format!(" line {l}")).unwrap_or_default())]
    Render {
        /// The template the error is in (`de/overdue_7.txt.j2`), which may be
        /// a partial included by the one being rendered.
        template: String,
        /// The override file, when the template came from the override directory.
        file: Option<PathBuf>,
        line: Option<usize>,
        message: String,
    },
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: {reason}", path.display())]
    Layout { path: PathBuf, reason: String },
}

/// The shipped template files, embedded; a missing file fails the build.
macro_rules! embed {
    ([$($lang:literal),*] $files:tt) => {
        &[$(embed!(@lang $lang $files)),*]
    };
    (@lang $lang:literal [$($file:literal),* $(,)?]) => {
        &[$((
            concat!($lang, "/", $file),
            include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/templates/", $lang, "/", $file)),
        )),*]
    };
}

const BUILTIN: &[&[(&str, &str)]] = embed!(["en", "de", "fr", "es"] [
    "_greeting.txt.j2",
    "_signature.txt.j2",
    "_invoices.txt.j2",
    "_links.txt.j2",
    "_layout.html.j2",
    "_invoices.html.j2",
    "upcoming.subject.j2",
    "upcoming.txt.j2",
    "upcoming.html.j2",
    "upcoming.sms.j2",
    "due_today.subject.j2",
    "due_today.txt.j2",
    "due_today.html.j2",
    "due_today.sms.j2",
    "overdue_7.subject.j2",
    "overdue_7.txt.j2",
    "overdue_7.html.j2",
    "overdue_7.sms.j2",
    "overdue_15.subject.j2",
    "overdue_15.txt.j2",
    "overdue_15.html.j2",
    "overdue_15.sms.j2",
    "overdue_30.subject.j2",
    "overdue_30.txt.j2",
    "overdue_30.html.j2",
    "overdue_30.sms.j2",
    "final_notice.subject.j2",
    "final_notice.txt.j2",
    "final_notice.html.j2",
    "final_notice.sms.j2",
    "call_customer.subject.j2",
    "call_customer.txt.j2",
]);

/// The template sources, keyed by id (`de/overdue_7.txt.j2`).
type Sources = BTreeMap<String, Cow<'static, str>>;

/// The reminder templates: shipped ones, possibly overridden by a user's.
pub struct Templates {
    env: Environment<'static>,
    sources: Arc<Sources>,
    /// Ids that came from the override directory, with their file.
    overrides: BTreeMap<String, PathBuf>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("templates", &self.sources.keys().collect::<Vec<_>>())
            .field("overrides", &self.overrides)
            .finish()
    }
}

impl Templates {
    /// The shipped templates.
    pub fn builtin() -> Templates {
        Templates::from_sources(builtin_sources(), BTreeMap::new())
    }

    /// The shipped templates, with every file under `dir` (same layout:
    /// `LANG/NAME.KIND.j2`) replacing the shipped file of the same path or
    /// adding a new template. Every override is compiled here, so a syntax
    /// error is reported now rather than when a reminder is due.
    pub fn with_overrides(dir: &Path) -> Result<Templates, TemplateError> {
        let mut sources = builtin_sources();
        let mut overrides = BTreeMap::new();
        for (id, path, text) in read_override_dir(dir)? {
            sources.insert(id.clone(), Cow::Owned(text));
            overrides.insert(id, path);
        }
        let templates = Templates::from_sources(sources, overrides);
        for id in templates.overrides.keys() {
            templates
                .env
                .get_template(id)
                .map_err(|e| templates.error(e))?;
        }
        Ok(templates)
    }

    fn from_sources(sources: Sources, overrides: BTreeMap<String, PathBuf>) -> Templates {
        let sources = Arc::new(sources);
        let mut env = Environment::new();
        // A misspelt variable must fail loudly, not render as an empty string.
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        // Partials end with their own newline, so an include on its own line
        // is replaced by whole lines.
        env.set_keep_trailing_newline(true);
        env.set_auto_escape_callback(|id| {
            if id.ends_with(".html.j2") {
                AutoEscape::Html
            } else {
                AutoEscape::None
            }
        });
        env.set_formatter(|out, state, value| {
            // MiniJinja's HTML escaping also turns '/' into &#x2f;, which makes
            // every link read https:&#x2f;&#x2f;... in the source mail clients
            // and spam filters see. HTML needs only & < > " ' escaped.
            if state.auto_escape() == AutoEscape::Html && !value.is_safe() {
                let text = value.to_string();
                let mut escaped = String::with_capacity(text.len() + 8);
                for c in text.chars() {
                    match c {
                        '&' => escaped.push_str("&amp;"),
                        '<' => escaped.push_str("&lt;"),
                        '>' => escaped.push_str("&gt;"),
                        '"' => escaped.push_str("&quot;"),
                        '\'' => escaped.push_str("&#39;"),
                        _ => escaped.push(c),
                    }
                }
                out.write_str(&escaped).map_err(minijinja::Error::from)
            } else {
                minijinja::escape_formatter(out, state, value)
            }
        });
        let loader_sources = Arc::clone(&sources);
        env.set_loader(move |id| Ok(loader_sources.get(id).map(|s| s.to_string())));
        Templates {
            env,
            sources,
            overrides,
        }
    }

    /// Names of the templates (without partials), sorted.
    pub fn names(&self) -> Vec<String> {
        let names: BTreeSet<&str> = self
            .sources
            .keys()
            .filter_map(|id| parse_id(id))
            .filter(|(_, name, _)| !name.starts_with('_'))
            .map(|(_, name, _)| name)
            .collect();
        names.into_iter().map(str::to_string).collect()
    }

    /// Whether `name` has a `kind` file in `lang` or, as a fallback, English.
    pub fn has(&self, name: &str, kind: TemplateKind, lang: Lang) -> bool {
        self.resolve(name, kind, lang).is_some()
    }

    /// The id to render: the language's own file, else the English one.
    fn resolve(&self, name: &str, kind: TemplateKind, lang: Lang) -> Option<String> {
        [lang, Lang::En].into_iter().find_map(|l| {
            let id = format!("{}/{}.{}.j2", l.code(), name, kind.extension());
            self.sources.contains_key(&id).then_some(id)
        })
    }

    fn require(&self, name: &str, kind: TemplateKind, lang: Lang) -> Result<String, TemplateError> {
        self.resolve(name, kind, lang)
            .ok_or_else(|| TemplateError::NotFound {
                name: name.to_string(),
                kind,
                lang,
            })
    }

    fn render_id(&self, id: &str, ctx: &MessageContext) -> Result<String, TemplateError> {
        self.env
            .get_template(id)
            .and_then(|t| t.render(ctx))
            .map_err(|e| self.error(e))
    }

    fn error(&self, err: minijinja::Error) -> TemplateError {
        // An error inside an included template arrives wrapped in the
        // includer's error: report the innermost one, where the fix goes.
        let mut innermost = &err;
        let mut includers = Vec::new();
        let mut cause = std::error::Error::source(&err);
        while let Some(c) = cause {
            if let Some(inner) = c.downcast_ref::<minijinja::Error>()
                && inner.name().is_some()
            {
                includers.push(location(innermost));
                innermost = inner;
            }
            cause = c.source();
        }
        let mut message = match innermost.detail() {
            Some(detail) => format!("{}: {detail}", innermost.kind()),
            None => innermost.kind().to_string(),
        };
        for includer in includers.iter().rev() {
            message.push_str(&format!(", included from {includer}"));
        }
        let template = innermost.name().unwrap_or("<unknown>").to_string();
        TemplateError::Render {
            file: self.overrides.get(&template).cloned(),
            line: innermost.line(),
            template,
            message,
        }
    }

    /// Renders an email: subject and plain text are required, HTML is
    /// rendered when the template has an `.html.j2` file.
    pub fn render_email(
        &self,
        name: &str,
        locale: &str,
        ctx: &MessageContext,
    ) -> Result<Rendered, TemplateError> {
        let lang = Lang::from_tag(locale);
        let subject = self.render_id(&self.require(name, TemplateKind::Subject, lang)?, ctx)?;
        let text = self.render_id(&self.require(name, TemplateKind::Text, lang)?, ctx)?;
        let html = match self.resolve(name, TemplateKind::Html, lang) {
            Some(id) => Some(self.render_id(&id, ctx)?),
            None => None,
        };
        Ok(Rendered {
            subject: one_line(&subject),
            text: tidy_text(&text),
            html,
        })
    }

    /// Renders an SMS body. No-break spaces (French amounts) become plain
    /// spaces: they are outside GSM-7 and would double the message's cost.
    pub fn render_sms(
        &self,
        name: &str,
        locale: &str,
        ctx: &MessageContext,
    ) -> Result<String, TemplateError> {
        let lang = Lang::from_tag(locale);
        let body = self.render_id(&self.require(name, TemplateKind::Sms, lang)?, ctx)?;
        let body = body.replace(['\u{a0}', '\u{202f}'], " ");
        Ok(tidy_text(&body).trim_end().to_string())
    }

    /// Renders a task for a collector: the subject is its title, the text
    /// its description.
    pub fn render_task(
        &self,
        name: &str,
        locale: &str,
        ctx: &MessageContext,
    ) -> Result<RenderedTask, TemplateError> {
        let lang = Lang::from_tag(locale);
        let title = self.render_id(&self.require(name, TemplateKind::Subject, lang)?, ctx)?;
        let detail = self.render_id(&self.require(name, TemplateKind::Text, lang)?, ctx)?;
        Ok(RenderedTask {
            title: one_line(&title),
            detail: tidy_text(&detail),
        })
    }
}

fn location(err: &minijinja::Error) -> String {
    let name = err.name().unwrap_or("<unknown>");
    match err.line() {
        Some(line) => format!("{name} line {line}"),
        None => name.to_string(),
    }
}

fn builtin_sources() -> Sources {
    BUILTIN
        .iter()
        .flat_map(|files| files.iter())
        .map(|(id, src)| ((*id).to_string(), Cow::Borrowed(*src)))
        .collect()
}

/// Splits `de/overdue_7.txt.j2` into (language, name, kind).
fn parse_id(id: &str) -> Option<(Lang, &str, TemplateKind)> {
    let (lang, file) = id.split_once('/')?;
    let (name, kind) = parse_file_name(file)?;
    Some((Lang::from_code(lang)?, name, kind))
}

fn parse_file_name(file: &str) -> Option<(&str, TemplateKind)> {
    let stem = file.strip_suffix(".j2")?;
    let (name, ext) = stem.rsplit_once('.')?;
    let kind = TemplateKind::from_extension(ext)?;
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    valid.then_some((name, kind))
}

/// Reads `dir/LANG/*.j2`. Other files (a README, editor backups) are
/// skipped, but a `.j2` file or language directory that would never be used
/// is an error: it is almost certainly a typo the user wants to know about.
fn read_override_dir(dir: &Path) -> Result<Vec<(String, PathBuf, String)>, TemplateError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TemplateError::Io { path, source }
    };
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io(dir))? {
        let entry = entry.map_err(io(dir))?;
        let path = entry.path();
        if !entry.file_type().map_err(io(&path))?.is_dir() {
            continue;
        }
        let dir_name = entry.file_name();
        let dir_name = dir_name.to_string_lossy();
        if dir_name.starts_with('.') {
            continue;
        }
        let Some(lang) = Lang::from_code(&dir_name) else {
            return Err(TemplateError::Layout {
                path,
                reason: format!(
                    "'{dir_name}' is not a supported language directory (supported: {})",
                    Lang::ALL.map(Lang::code).join(", ")
                ),
            });
        };
        for file in std::fs::read_dir(&path).map_err(io(&path))? {
            let file = file.map_err(io(&path))?;
            let file_path = file.path();
            let file_name = file.file_name();
            let file_name = file_name.to_string_lossy();
            if !file_name.ends_with(".j2") {
                continue;
            }
            if parse_file_name(&file_name).is_none() {
                return Err(TemplateError::Layout {
                    path: file_path,
                    reason: "expected NAME.subject.j2, NAME.txt.j2, NAME.html.j2 or NAME.sms.j2 (NAME: letters, digits, '_', '-')".to_string(),
                });
            }
            let text = std::fs::read_to_string(&file_path).map_err(io(&file_path))?;
            found.push((format!("{}/{file_name}", lang.code()), file_path, text));
        }
    }
    Ok(found)
}

/// A subject is one line: runs of ASCII whitespace (line breaks left by
/// template tags) become one space; no-break spaces in amounts are kept.
fn one_line(s: &str) -> String {
    s.split(|c: char| c.is_ascii_whitespace())
        .filter(|part| !part.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Plain text with optional sections leaves stray blank lines and trailing
/// spaces behind; collapse them so the message reads as written.
fn tidy_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut previous_blank = true; // drops leading blank lines
    for line in s.lines() {
        let line = line.trim_end();
        if line.is_empty() {
            if previous_blank {
                continue;
            }
            previous_blank = true;
        } else {
            previous_blank = false;
        }
        out.push_str(line);
        out.push('\n');
    }
    while out.ends_with("\n\n") {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests;
