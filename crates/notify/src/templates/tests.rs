// Amounts in cents are grouped as money is written: 1_234_56 is 1,234.56.
#![allow(clippy::inconsistent_digit_grouping)]

use super::*;
use arflow_domain::dunning::records::MessageInvoice;
use arflow_domain::money::Currency;
use jiff::civil::date;

const TASKS: &[&str] = &["call_customer"];

fn two_invoices() -> Vec<MessageInvoice> {
    vec![
        MessageInvoice {
            number: "INV-2026-0171".into(),
            issue_date: date(2026, 11, 2),
            due_date: date(2026, 12, 2),
            open: 480_00,
            days_overdue: 1,
            fee: 0,
            interest: 0,
            compensation: 0,
        },
        MessageInvoice {
            number: "INV-2026-0142".into(),
            issue_date: date(2026, 10, 1),
            due_date: date(2026, 10, 31),
            open: 1_234_56,
            days_overdue: 33,
            fee: 10_00,
            interest: 12_34,
            compensation: 40_00,
        },
    ]
}

fn context(invoices: &[MessageInvoice], locale: &str, links: Links) -> MessageContext {
    MessageContext::new(ContextInput {
        organization: Organization {
            name: "Nordwind Supplies Ltd".into(),
            email: Some("accounts@nordwind.example".into()),
            phone: Some("+44 20 7946 0000".into()),
        },
        customer: Customer {
            name: "Harbour Café GmbH".into(),
            external_id: "C-1042".into(),
        },
        contact: Contact {
            name: Some("Alex Meier".into()),
        },
        currency: Currency::EUR,
        locale,
        today: date(2026, 12, 3),
        invoices,
        links,
    })
    .expect("test context")
}

fn all_links() -> Links {
    Links {
        pay_url: Some("https://pay.nordwind.example/p/abc?x=1&y=2".into()),
        portal_url: Some("https://portal.nordwind.example/c/C-1042".into()),
        unsubscribe_url: Some("https://nordwind.example/u/tok123".into()),
    }
}

#[test]
fn shipped_names() {
    let t = Templates::builtin();
    assert_eq!(
        t.names(),
        [
            "call_customer",
            "due_today",
            "final_notice",
            "overdue_15",
            "overdue_30",
            "overdue_7",
            "upcoming"
        ]
    );
}

/// Every shipped template in every language, for two invoices without links.
#[test]
fn snapshots_of_every_shipped_template() {
    let t = Templates::builtin();
    let invoices = two_invoices();
    for lang in Lang::ALL {
        let ctx = context(&invoices, lang.code(), Links::default());
        for name in t.names() {
            let snapshot = if TASKS.contains(&name.as_str()) {
                let task = t
                    .render_task(&name, lang.code(), &ctx)
                    .expect("task renders");
                format!("TITLE: {}\n\n{}", task.title, task.detail)
            } else {
                let email = t
                    .render_email(&name, lang.code(), &ctx)
                    .expect("email renders");
                let sms = t.render_sms(&name, lang.code(), &ctx).expect("sms renders");
                let html = email.html.expect("shipped email templates have HTML");
                let segments = crate::sms::sms_segments(&sms);
                format!(
                    "SUBJECT: {}\n\n----- TEXT -----\n{}\n----- SMS ({:?}, {} units, {} segments) -----\n{}\n\n----- HTML -----\n{}",
                    email.subject,
                    email.text,
                    segments.encoding,
                    segments.units,
                    segments.count,
                    sms,
                    html
                )
            };
            // Kept with the crate's other snapshots in src/snapshots.
            let mut settings = insta::Settings::clone_current();
            settings.set_snapshot_path("../snapshots");
            settings.bind(|| {
                insta::assert_snapshot!(format!("{}__{}", lang.code(), name), snapshot);
            });
        }
    }
}

/// One invoice (the singular wording) and every link present.
#[test]
fn every_template_renders_one_invoice_with_links() {
    let t = Templates::builtin();
    let invoices = &two_invoices()[..1];
    for lang in Lang::ALL {
        let ctx = context(invoices, lang.code(), all_links());
        for name in t.names() {
            if TASKS.contains(&name.as_str()) {
                let task = t.render_task(&name, lang.code(), &ctx).expect("task");
                assert!(task.detail.contains("INV-2026-0171"), "{lang} {name}");
                continue;
            }
            let email = t.render_email(&name, lang.code(), &ctx).expect("email");
            assert!(
                email.subject.contains("INV-2026-0171"),
                "{lang} {name}: {}",
                email.subject
            );
            assert!(!email.subject.contains('\n'));
            assert!(
                email
                    .text
                    .contains("https://pay.nordwind.example/p/abc?x=1&y=2"),
                "{lang} {name}"
            );
            assert!(
                email
                    .text
                    .contains("https://portal.nordwind.example/c/C-1042"),
                "{lang} {name}"
            );
            assert!(
                email.text.contains("https://nordwind.example/u/tok123"),
                "{lang} {name}"
            );
            let html = email.html.expect("html");
            // Attribute values are escaped (& becomes &amp;).
            assert!(html.contains("abc?x=1&amp;y=2"), "{lang} {name}");
            assert!(
                html.contains("u&#x2f;tok123") || html.contains("u/tok123"),
                "{lang} {name}"
            );
            let sms = t.render_sms(&name, lang.code(), &ctx).expect("sms");
            assert!(
                sms.contains("https://pay.nordwind.example/p/abc?x=1&y=2"),
                "{lang} {name}"
            );
            assert!(!sms.contains('\u{a0}') && !sms.contains('\u{202f}'));
        }
    }
}

#[test]
fn html_escapes_names_and_text_does_not() {
    let t = Templates::builtin();
    let invoices = two_invoices();
    let mut ctx = context(&invoices, "en", Links::default());
    ctx.customer.name = "<Smith & Sons>".into();
    ctx.organization.name = "O'Brien \"Tools\"".into();
    ctx.contact.name = None;
    for name in ["upcoming", "final_notice"] {
        let email = t.render_email(name, "en", &ctx).expect("renders");
        let html = email.html.expect("html");
        assert!(html.contains("Dear &lt;Smith &amp; Sons&gt;,"), "{html}");
        assert!(
            html.contains("<title>O&#39;Brien &quot;Tools&quot;</title>"),
            "{html}"
        );
        assert!(!html.contains("<Smith"));
        assert!(
            email.text.contains("Dear <Smith & Sons>,"),
            "{}",
            email.text
        );
    }
}

#[test]
fn locale_falls_back_to_language_then_english() {
    let t = Templates::builtin();
    let invoices = two_invoices();
    let ctx = context(&invoices, "de-AT", Links::default());
    let de = t.render_email("overdue_7", "de-AT", &ctx).expect("de");
    assert!(
        de.subject.starts_with("Zahlungserinnerung"),
        "{}",
        de.subject
    );
    let ctx = context(&invoices, "pt-BR", Links::default());
    let en = t.render_email("overdue_7", "pt-BR", &ctx).expect("en");
    assert!(en.subject.starts_with("Overdue"), "{}", en.subject);
}

#[test]
fn unknown_template_is_an_error() {
    let t = Templates::builtin();
    let invoices = two_invoices();
    let ctx = context(&invoices, "en", Links::default());
    let err = t.render_email("no_such", "fr", &ctx).expect_err("missing");
    assert!(
        matches!(err, TemplateError::NotFound { ref name, kind: TemplateKind::Subject, lang: Lang::Fr } if name == "no_such")
    );
    // A task has no SMS variant.
    assert!(t.render_sms("call_customer", "en", &ctx).is_err());
    assert!(!t.has("call_customer", TemplateKind::Html, Lang::De));
    assert!(t.has("final_notice", TemplateKind::Sms, Lang::Es));
}

fn write(dir: &std::path::Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

#[test]
fn overrides_replace_and_add_templates() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "de/upcoming.subject.j2",
        "Bald fällig: {{ totals.total_due }}",
    );
    write(dir.path(), "en/gentle.subject.j2", "Hi {{ customer.name }}");
    write(
        dir.path(),
        "en/gentle.txt.j2",
        "Hello\n\n\n{% if links.pay_url %}{{ links.pay_url }}{% endif %}\nBye  \n",
    );
    write(dir.path(), "README.md", "notes are ignored");
    write(dir.path(), "en/notes.txt", "ignored too");
    let t = Templates::with_overrides(dir.path()).expect("overrides load");
    assert!(t.names().contains(&"gentle".to_string()));

    let invoices = two_invoices();
    let ctx = context(&invoices, "de", Links::default());
    let de = t.render_email("upcoming", "de", &ctx).expect("de");
    assert_eq!(de.subject, "Bald fällig: 1.776,90\u{a0}€");
    // The shipped text and HTML are still used.
    assert!(de.text.contains("INV-2026-0142"));
    assert!(de.html.is_some());

    // A custom template only in English serves every language; no HTML file
    // means a text-only email. Blank-line runs and trailing spaces are tidied.
    let custom = t.render_email("gentle", "de", &ctx).expect("fallback");
    assert_eq!(custom.subject, "Hi Harbour Café GmbH");
    assert_eq!(custom.text, "Hello\n\nBye\n");
    assert_eq!(custom.html, None);
}

#[test]
fn undefined_variable_names_template_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "en/upcoming.txt.j2",
        "Hello {{ customer.name }}\n\nYou owe {{ totals.totl_due }}.\n",
    );
    let t = Templates::with_overrides(dir.path()).expect("loads: the syntax is fine");
    let invoices = two_invoices();
    let ctx = context(&invoices, "en", Links::default());
    let err = t.render_email("upcoming", "en", &ctx).expect_err("typo");
    match &err {
        TemplateError::Render {
            template,
            file,
            line,
            ..
        } => {
            assert_eq!(template, "en/upcoming.txt.j2");
            assert_eq!(line, &Some(3));
            assert_eq!(
                file.as_deref(),
                Some(dir.path().join("en/upcoming.txt.j2").as_path())
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    let shown = err.to_string();
    assert!(shown.contains("upcoming.txt.j2 line 3"), "{shown}");
    assert!(shown.contains("undefined"), "{shown}");
}

#[test]
fn undefined_variable_in_html_is_an_error_too() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "en/upcoming.html.j2",
        "<p>{{ customer.nmae }}</p>\n",
    );
    let t = Templates::with_overrides(dir.path()).expect("loads");
    let invoices = two_invoices();
    let ctx = context(&invoices, "en", Links::default());
    let err = t.render_email("upcoming", "en", &ctx).expect_err("typo");
    assert!(
        matches!(&err, TemplateError::Render { template, line: Some(1), .. } if template == "en/upcoming.html.j2"),
        "{err:?}"
    );
}

#[test]
fn undefined_variable_in_a_partial_names_the_partial() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "fr/_links.txt.j2", "{{ links.payurl }}\n");
    let t = Templates::with_overrides(dir.path()).expect("loads");
    let invoices = two_invoices();
    let ctx = context(&invoices, "fr", Links::default());
    let err = t.render_email("overdue_7", "fr", &ctx).expect_err("typo");
    let TemplateError::Render { template, line, .. } = &err else {
        panic!("unexpected {err:?}");
    };
    assert_eq!(template, "fr/_links.txt.j2");
    assert_eq!(line, &Some(1));
}

#[test]
fn syntax_errors_and_stray_files_fail_at_load() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "es/upcoming.sms.j2", "Hola\n{% if %}\n");
    let err = Templates::with_overrides(dir.path()).expect_err("syntax");
    assert!(
        matches!(&err, TemplateError::Render { template, line: Some(2), .. } if template == "es/upcoming.sms.j2"),
        "{err:?}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "it/upcoming.txt.j2", "Ciao\n");
    let err = Templates::with_overrides(dir.path()).expect_err("language");
    assert!(
        err.to_string().contains("'it' is not a supported language"),
        "{err}"
    );

    let dir = tempfile::tempdir().expect("tempdir");
    write(dir.path(), "en/upcoming.body.j2", "x\n");
    let err = Templates::with_overrides(dir.path()).expect_err("kind");
    assert!(matches!(err, TemplateError::Layout { .. }), "{err:?}");

    let missing = Templates::with_overrides(std::path::Path::new("/nonexistent/arflow-templates"));
    assert!(matches!(missing, Err(TemplateError::Io { .. })));
}

/// The embed list and the directory agree: no shipped file is forgotten.
#[test]
fn every_template_file_is_embedded() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    let mut on_disk = Vec::new();
    for lang in Lang::ALL {
        for entry in std::fs::read_dir(root.join(lang.code())).expect("language dir") {
            let name = entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .to_string();
            on_disk.push(format!("{}/{name}", lang.code()));
        }
    }
    on_disk.sort();
    let embedded: Vec<String> = builtin_sources().into_keys().collect();
    assert_eq!(on_disk, embedded);
}

#[test]
fn sms_uses_plain_spaces() {
    let t = Templates::builtin();
    let invoices = two_invoices();
    let ctx = context(&invoices, "fr", Links::default());
    let sms = t.render_sms("overdue_7", "fr", &ctx).expect("sms");
    assert!(sms.contains("1 776,90 €"), "{sms}");
}

#[test]
fn tidy_and_one_line() {
    assert_eq!(tidy_text("\n\na  \n\n\n\nb\n\n"), "a\n\nb\n");
    assert_eq!(tidy_text("  indented\n"), "  indented\n");
    assert_eq!(one_line(" a\n b\t c "), "a b c");
    assert_eq!(one_line("1.234,56\u{a0}€"), "1.234,56\u{a0}€");
}

#[test]
fn templates_can_be_shared_between_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Templates>();
    shareable::<MessageContext>();
}
