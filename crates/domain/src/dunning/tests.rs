use proptest::prelude::*;

use super::*;
use crate::money::{Currency, Money};

const DEFAULT: &str = include_str!("../../../../policies/default.toml");

fn errors(text: &str) -> Vec<String> {
    match parse_policy(text, "policies/x.toml") {
        Ok(p) => panic!("expected errors, parsed {p:?}"),
        Err(errors) => errors.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn default_policy_parses_with_the_expected_schedule() {
    let policy = parse_policy(DEFAULT, "policies/default.toml").unwrap();
    assert_eq!(policy.name, "default");
    assert_eq!(policy.consolidation, Consolidation::Customer);
    assert_eq!(policy.repeat, None);
    assert_eq!(
        policy.schedule(),
        vec![
            Some(-3),
            Some(0),
            Some(7),
            Some(15),
            Some(30),
            Some(45),
            Some(50)
        ]
    );
    let shape: Vec<(Channel, Tone)> = policy.steps.iter().map(|s| (s.channel, s.tone)).collect();
    assert_eq!(
        shape,
        vec![
            (Channel::Email, Tone::Friendly),
            (Channel::Email, Tone::Friendly),
            (Channel::Email, Tone::Firm),
            (Channel::Email, Tone::Firm),
            (Channel::Email, Tone::Firm),
            (Channel::Email, Tone::Final),
            (Channel::Task, Tone::Final),
        ]
    );
    assert!(
        policy
            .steps
            .iter()
            .all(|s| s.conditions.is_empty() && s.fee.is_none())
    );
}

#[test]
fn five_mistakes_give_five_located_errors() {
    let text = r#"name = "x"
consolidation = "customer"

[[steps]]
anchor = "after_due"
offset_days = 10
channel = "email"
template = "late"
tone = "firm"

[[steps]]
anchor = "after_dew"
offset_days = 12
channel = "email"
template = "later"
tone = "firm"

[[steps]]
anchor = "before_due"
offset_days = 3
channel = "pigeon"
template = "early"
tone = "friendly"

[[steps]]
anchor = "after_due"
offset_days = -4
channel = "email"
template = "neg"
tone = "firm"
conditions = { min_open_balance = "12.345 EUR" }
"#;
    assert_eq!(
        errors(text),
        vec![
            "policies/x.toml:12:10: steps[1].anchor: 'after_dew' is not an anchor (expected before_due, after_due, after_previous_step, after_broken_promise)",
            "policies/x.toml:19:10: steps[2]: this step falls 3 days before the due date but steps[0] falls 10 days after the due date: steps must be in chronological order",
            "policies/x.toml:21:11: steps[2].channel: 'pigeon' is not a channel (expected email, sms, task)",
            "policies/x.toml:27:15: steps[3].offset_days: -4 is negative (expected a number of days, 0 or more)",
            "policies/x.toml:31:35: steps[3].conditions.min_open_balance: '12.345 EUR': '12.345' has more decimals than EUR allows (2) (expected e.g. \"15.00 EUR\")",
        ]
    );
}

#[test]
fn structural_mistakes_are_all_reported() {
    let text = r#"nam = "x"
[[steps]]
anchor = "after_previous_step"
offset_days = "3"
channel = "sms"
template = "a b"
tone = "angry"
fee = { percent = 1.555, fixed = "1 EUR" }
conditions = { currencies = ["EUR", "XYZ"], segments = [1] }

[[steps]]
anchor = "after_broken_promise"
offset_days = 1
channel = "task"
template = "call"
tone = "firm"

[[steps]]
anchor = "after_broken_promise"
offset_days = 1
channel = "task"
template = "call"
tone = "final"

[repeat]
every_days = 0
"#;
    assert_eq!(
        errors(text),
        vec![
            "policies/x.toml:1:1: nam: unknown key 'nam' (expected name, consolidation, steps, repeat)",
            "policies/x.toml:1:1: name: missing key 'name' (every policy needs a name)",
            "policies/x.toml:3:10: steps[0].anchor: the first step cannot be after_previous_step (there is no previous step)",
            "policies/x.toml:4:15: steps[0].offset_days: expected an integer, found the string '3'",
            "policies/x.toml:6:12: steps[0].template: 'a b' is not a template name (expected a non-empty name without spaces)",
            "policies/x.toml:7:8: steps[0].tone: 'angry' is not a tone (expected friendly, neutral, firm, final)",
            "policies/x.toml:8:7: steps[0].fee: a fee needs exactly one of fixed, percent, monthly_rate (found fixed, percent)",
            "policies/x.toml:9:37: steps[0].conditions.currencies[1]: 'XYZ' is not an ISO 4217 currency code",
            "policies/x.toml:9:57: steps[0].conditions.segments[0]: expected a string, found the integer 1",
            "policies/x.toml:18:1: steps[2]: duplicates steps[1] (same anchor, offset_days, channel, template and conditions)",
            "policies/x.toml:26:14: repeat.every_days: 0 is too small (expected 1 or more)",
        ]
    );
}

#[test]
fn empty_and_broken_files() {
    assert_eq!(
        errors("name = \"x\"\n"),
        vec![
            "policies/x.toml:1:1: steps: the policy has no steps (add at least one [[steps]] table)"
        ]
    );
    assert_eq!(
        errors("name = \"x\"\nsteps = []\n"),
        vec![
            "policies/x.toml:2:9: steps: the policy has no steps (add at least one [[steps]] table)"
        ]
    );
    let syntax = errors("name = \"x\"\n[[steps]\n");
    assert_eq!(
        syntax,
        vec!["policies/x.toml:2:9: unclosed array table, expected `]`"]
    );
}

#[test]
fn a_valid_policy_round_trips() {
    let eur = Currency::EUR;
    let policy = Policy {
        name: "strict \"B2B\"".to_string(),
        consolidation: Consolidation::Invoice,
        steps: vec![
            Step {
                anchor: Anchor::BeforeDue,
                offset_days: 5,
                channel: Channel::Email,
                template: "upcoming".to_string(),
                tone: Tone::Neutral,
                conditions: Conditions {
                    min_open_balance: Some(Money::new(50_000, eur)),
                    segments: vec!["enterprise".to_string()],
                    tags: vec!["vip".to_string(), "eu".to_string()],
                    currencies: vec![eur, Currency::JPY],
                },
                fee: None,
            },
            Step {
                anchor: Anchor::AfterDue,
                offset_days: 10,
                channel: Channel::Sms,
                template: "overdue".to_string(),
                tone: Tone::Firm,
                conditions: Conditions::default(),
                fee: Some(Fee::Fixed(Money::new(1_500, eur))),
            },
            Step {
                anchor: Anchor::AfterPreviousStep,
                offset_days: 4,
                channel: Channel::Task,
                template: "call".to_string(),
                tone: Tone::Final,
                conditions: Conditions::default(),
                fee: Some(Fee::Percent { basis_points: 150 }),
            },
            Step {
                anchor: Anchor::AfterBrokenPromise,
                offset_days: 2,
                channel: Channel::Email,
                template: "promise_broken".to_string(),
                tone: Tone::Final,
                conditions: Conditions::default(),
                fee: Some(Fee::MonthlyRate { basis_points: 100 }),
            },
        ],
        repeat: Some(Repeat {
            every_days: 14,
            max_times: Some(3),
        }),
    };
    let text = policy.to_toml();
    assert_eq!(parse_policy(&text, "rt.toml"), Ok(policy.clone()), "{text}");
    assert_eq!(policy.schedule(), vec![Some(-5), Some(10), Some(14), None]);

    let default = parse_policy(DEFAULT, "policies/default.toml").unwrap();
    assert_eq!(parse_policy(&default.to_toml(), "rt.toml"), Ok(default));
}

#[test]
fn fee_rates_are_basis_points() {
    let base = "name = \"x\"\n[[steps]]\nanchor = \"after_due\"\noffset_days = 1\nchannel = \"email\"\ntemplate = \"t\"\ntone = \"firm\"\n";
    let fee =
        |f: &str| parse_policy(&format!("{base}fee = {f}\n"), "f.toml").map(|p| p.steps[0].fee);
    assert_eq!(
        fee("{ percent = 1.5 }"),
        Ok(Some(Fee::Percent { basis_points: 150 }))
    );
    assert_eq!(
        fee("{ percent = 2 }"),
        Ok(Some(Fee::Percent { basis_points: 200 }))
    );
    assert_eq!(
        fee("{ monthly_rate = 0.25 }"),
        Ok(Some(Fee::MonthlyRate { basis_points: 25 }))
    );
    assert_eq!(
        fee("{ fixed = \"15.00 EUR\" }"),
        Ok(Some(Fee::Fixed(Money::new(1_500, Currency::EUR))))
    );
    for bad in [
        "{ percent = 1e2 }",
        "{ percent = nan }",
        "{ percent = -1.0 }",
        "{ fixed = \"-1 EUR\" }",
        "{ fixed = 15 }",
        "{}",
        "\"15 EUR\"",
    ] {
        assert!(fee(bad).is_err(), "{bad}");
    }
}

#[test]
fn error_columns_count_characters() {
    let text = "name = \"é\"\n[[steps]]\nanchor = \"x\"\n";
    let errs = parse_policy(text, "u.toml").unwrap_err();
    let anchor = errs.iter().find(|e| e.path == "steps[0].anchor").unwrap();
    assert_eq!((anchor.line, anchor.column), (3, 10));
    assert_eq!(anchor.kind, PolicyErrorKind::InvalidValue);
}

proptest! {
    #[test]
    fn parse_never_panics(text in "\\PC*") {
        let _ = parse_policy(&text, "p.toml");
    }

    #[test]
    fn parse_never_panics_on_mangled_policies(cut in 0usize..2000, insert in "[ -~\n]{0,12}") {
        let mut cut = cut.min(DEFAULT.len());
        while !DEFAULT.is_char_boundary(cut) {
            cut -= 1;
        }
        let text = format!("{}{}{}", &DEFAULT[..cut], insert, &DEFAULT[cut..]);
        if let Err(errors) = parse_policy(&text, "p.toml") {
            prop_assert!(!errors.is_empty());
            for e in &errors {
                prop_assert!(e.line >= 1 && e.column >= 1);
            }
        }
    }
}
