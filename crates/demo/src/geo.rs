//! Countries with mutually consistent time zones, locales, tax, legal forms,
//! payment habits and phone numbers.

/// How to write a phone number that cannot ring anyone: every style uses a
/// range its regulator reserves for fiction.
#[derive(Debug, Clone, Copy)]
pub(crate) enum PhoneStyle {
    /// NANP "555-01XX" numbers: +1 AAA 555 01XX.
    Nanp,
    /// Ofcom's drama range 07700 900xxx.
    Gb,
    /// ARCEP's fiction range 06 39 98 xx xx.
    Fr,
    /// ACMA's fiction ranges: the per-zone prefix after +61 is in `Zone::area`.
    Au,
    /// No reserved range we rely on: contacts get no phone.
    None,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Zone {
    pub name: &'static str,
    /// Area codes (NANP) or the fictional-range prefix (AU) for phones in this zone.
    pub areas: &'static [&'static str],
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Country {
    pub code: &'static str,
    /// Share of customers, relative.
    pub weight: f64,
    /// (BCP 47 locale, relative weight).
    pub locales: &'static [(&'static str, f64)],
    pub zones: &'static [Zone],
    /// Tax charged on B2B invoices, basis points (0 = none shown on the invoice).
    pub tax_bp: i64,
    /// Legal-form suffixes; "" means none.
    pub legal: &'static [&'static str],
    /// The local currency when the customer is billed in it instead of the base currency.
    pub local_currency: Option<&'static str>,
    pub phone: PhoneStyle,
    /// (payment method, relative weight).
    pub methods: &'static [(&'static str, f64)],
}

const fn z(name: &'static str, areas: &'static [&'static str]) -> Zone {
    Zone { name, areas }
}

pub(crate) const COUNTRIES: &[Country] = &[
    Country {
        code: "US",
        weight: 68.0,
        locales: &[("en-US", 0.93), ("es-US", 0.07)],
        zones: &[
            z("America/New_York", &["212", "617", "404", "305", "215"]),
            z("America/Chicago", &["312", "214", "612", "512"]),
            z("America/Denver", &["303", "801"]),
            z("America/Phoenix", &["602"]),
            z("America/Los_Angeles", &["415", "213", "206", "503"]),
        ],
        tax_bp: 0,
        legal: &["Inc.", "LLC", "Co.", "Corp.", ""],
        local_currency: None,
        phone: PhoneStyle::Nanp,
        methods: &[("ach", 0.55), ("check", 0.25), ("wire", 0.1), ("card", 0.1)],
    },
    Country {
        code: "CA",
        weight: 6.0,
        locales: &[("en-CA", 0.8), ("fr-CA", 0.2)],
        zones: &[
            z("America/Toronto", &["416", "514", "613"]),
            z("America/Vancouver", &["604"]),
            z("America/Edmonton", &["403", "780"]),
        ],
        tax_bp: 500,
        legal: &["Inc.", "Ltd.", ""],
        local_currency: None,
        phone: PhoneStyle::Nanp,
        methods: &[("eft", 0.6), ("cheque", 0.2), ("wire", 0.2)],
    },
    Country {
        code: "GB",
        weight: 8.0,
        locales: &[("en-GB", 1.0)],
        zones: &[z("Europe/London", &[])],
        tax_bp: 2000,
        legal: &["Ltd", "Ltd", "plc", ""],
        local_currency: Some("GBP"),
        phone: PhoneStyle::Gb,
        methods: &[("bacs", 0.6), ("faster payments", 0.3), ("card", 0.1)],
    },
    Country {
        code: "IE",
        weight: 2.0,
        locales: &[("en-IE", 1.0)],
        zones: &[z("Europe/Dublin", &[])],
        tax_bp: 2300,
        legal: &["Ltd", "DAC"],
        local_currency: Some("EUR"),
        phone: PhoneStyle::None,
        methods: &[("sepa", 0.9), ("card", 0.1)],
    },
    Country {
        code: "DE",
        weight: 5.0,
        locales: &[("de-DE", 1.0)],
        zones: &[z("Europe/Berlin", &[])],
        tax_bp: 1900,
        legal: &["GmbH", "GmbH", "AG", "KG"],
        local_currency: Some("EUR"),
        phone: PhoneStyle::None,
        methods: &[("sepa", 0.95), ("wire", 0.05)],
    },
    Country {
        code: "FR",
        weight: 4.0,
        locales: &[("fr-FR", 1.0)],
        zones: &[z("Europe/Paris", &[])],
        tax_bp: 2000,
        legal: &["SAS", "SARL", "SA"],
        local_currency: Some("EUR"),
        phone: PhoneStyle::Fr,
        methods: &[("sepa", 0.85), ("wire", 0.15)],
    },
    Country {
        code: "NL",
        weight: 3.0,
        locales: &[("nl-NL", 0.85), ("en-NL", 0.15)],
        zones: &[z("Europe/Amsterdam", &[])],
        tax_bp: 2100,
        legal: &["B.V.", "B.V.", "N.V."],
        local_currency: Some("EUR"),
        phone: PhoneStyle::None,
        methods: &[("sepa", 1.0)],
    },
    Country {
        code: "AU",
        weight: 4.0,
        locales: &[("en-AU", 1.0)],
        zones: &[
            z("Australia/Sydney", &["25550"]),
            z("Australia/Melbourne", &["37010"]),
            z("Australia/Brisbane", &["75550"]),
            z("Australia/Perth", &["87010"]),
        ],
        tax_bp: 1000,
        legal: &["Pty Ltd"],
        local_currency: None,
        phone: PhoneStyle::Au,
        methods: &[("eft", 0.7), ("bpay", 0.2), ("card", 0.1)],
    },
];
