//! The `model[,key=value...]` option strings of every model's `--iommu` parser: splitting, the
//! missing-`=` and given-twice checks, and the value parsers they share.
//!
//! Each model keeps its own error enum (with its own wording); [`OptionError`] converts into it
//! through [`impl_from_option_error!`], and the model decides what each key means.

/// A refusal every model's option parser makes the same way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum OptionError {
    /// An item without `=` (the whole item).
    MissingValue(String),
    /// A key given a second time (and not one allowed to repeat).
    Duplicate(String),
    /// A value the key does not take, with what it takes.
    BadValue {
        key: String,
        value: String,
        expected: &'static str,
    },
}

/// `impl From<OptionError> for $err`, for a model error enum with the variants `MissingValue(String)`,
/// `Duplicate(String)` and `BadValue { key, value, expected }`.
macro_rules! impl_from_option_error {
    ($err:ty) => {
        impl From<$crate::options::OptionError> for $err {
            fn from(e: $crate::options::OptionError) -> Self {
                use $crate::options::OptionError;
                match e {
                    OptionError::MissingValue(item) => Self::MissingValue(item),
                    OptionError::Duplicate(key) => Self::Duplicate(key),
                    OptionError::BadValue {
                        key,
                        value,
                        expected,
                    } => Self::BadValue {
                        key,
                        value,
                        expected,
                    },
                }
            }
        }
    };
}
pub(crate) use impl_from_option_error;

/// The `key=value` items after the model name, in order, each checked for its `=` and for being
/// given twice as it is reached (so the first offending item is the one reported).
pub(crate) struct Items<'a> {
    rest: std::str::Split<'a, char>,
    seen: Vec<&'a str>,
    repeatable: &'static [&'static str],
}

/// Splits `s` as `model[,key=value...]`. `None` if the first item is not exactly `model`. Keys in
/// `repeatable` may be given any number of times (e.g. one range each); any other key once.
pub(crate) fn items<'a>(
    s: &'a str,
    model: &str,
    repeatable: &'static [&'static str],
) -> Option<Items<'a>> {
    let mut rest = s.split(',');
    (rest.next() == Some(model)).then(|| Items {
        rest,
        seen: Vec::new(),
        repeatable,
    })
}

impl<'a> Items<'a> {
    /// Whether `key` has been given so far (repeatable keys are not tracked).
    pub(crate) fn given(&self, key: &str) -> bool {
        self.seen.contains(&key)
    }
}

impl<'a> Iterator for Items<'a> {
    type Item = Result<(&'a str, &'a str), OptionError>;

    fn next(&mut self) -> Option<Self::Item> {
        let item = self.rest.next()?;
        let Some((key, value)) = item.split_once('=') else {
            return Some(Err(OptionError::MissingValue(item.into())));
        };
        if !self.repeatable.contains(&key) {
            if self.seen.contains(&key) {
                return Some(Err(OptionError::Duplicate(key.into())));
            }
            self.seen.push(key);
        }
        Some(Ok((key, value)))
    }
}

/// The refusal of `key=value`, which should have been `expected`.
pub(crate) fn bad(key: &str, value: &str, expected: &'static str) -> OptionError {
    OptionError::BadValue {
        key: key.into(),
        value: value.into(),
        expected,
    }
}

/// `on` or `off`.
pub(crate) fn on_off(key: &str, value: &str) -> Result<bool, OptionError> {
    choice(key, value, &[("on", true), ("off", false)], "`on` or `off`")
}

/// One of a fixed set of words, each standing for a value.
pub(crate) fn choice<T: Copy>(
    key: &str,
    value: &str,
    choices: &[(&str, T)],
    expected: &'static str,
) -> Result<T, OptionError> {
    choices
        .iter()
        .find(|(word, _)| *word == value)
        .map(|(_, v)| *v)
        .ok_or_else(|| bad(key, value, expected))
}

/// A decimal number (as `str::parse` reads it) that `ok` accepts.
pub(crate) fn decimal<T: std::str::FromStr>(
    key: &str,
    value: &str,
    ok: impl FnOnce(&T) -> bool,
    expected: &'static str,
) -> Result<T, OptionError> {
    value
        .parse()
        .ok()
        .filter(ok)
        .ok_or_else(|| bad(key, value, expected))
}

/// Hex digits with or without a `0x`/`0X` prefix.
pub(crate) fn hex(s: &str) -> Option<u64> {
    u64::from_str_radix(strip_0x(s).unwrap_or(s), 16).ok()
}

/// Hex digits after a required `0x`/`0X` prefix.
pub(crate) fn prefixed_hex(s: &str) -> Option<u64> {
    u64::from_str_radix(strip_0x(s)?, 16).ok()
}

/// Hex after a `0x`/`0X` prefix, decimal without one.
pub(crate) fn hex_or_decimal(s: &str) -> Option<u64> {
    match strip_0x(s) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

fn strip_0x(s: &str) -> Option<&str> {
    s.strip_prefix("0x").or_else(|| s.strip_prefix("0X"))
}

/// `on`/`off` for an option string.
pub(crate) fn on_off_str(b: bool) -> &'static str {
    if b {
        "on"
    } else {
        "off"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all<'a>(s: &'a str, repeatable: &'static [&'static str]) -> Vec<(&'a str, &'a str)> {
        items(s, "m", repeatable)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn splits_checks_the_model_and_keeps_order() {
        assert!(items("m", "m", &[]).unwrap().next().is_none());
        assert!(items("mx,a=1", "m", &[]).is_none());
        assert!(items("", "m", &[]).is_none());
        assert_eq!(
            all("m,a=1,b=x=y,c=", &[]),
            [("a", "1"), ("b", "x=y"), ("c", "")]
        );
        assert_eq!(all("m,r=1,r=2", &["r"]), [("r", "1"), ("r", "2")]);
    }

    #[test]
    fn first_offending_item_is_reported() {
        let first_err = |s| items(s, "m", &["r"]).unwrap().find_map(Result::err);
        assert_eq!(
            first_err("m,a=1,b,a=2"),
            Some(OptionError::MissingValue("b".into()))
        );
        assert_eq!(
            first_err("m,a=1,a=2,b"),
            Some(OptionError::Duplicate("a".into()))
        );
        assert_eq!(first_err("m,r=1,r=1"), None);
        let mut it = items("m,a=1,r=2", "m", &["r"]).unwrap();
        assert!(!it.given("a"));
        for item in it.by_ref() {
            item.unwrap();
        }
        assert!(it.given("a") && !it.given("r") && !it.given("b"));
    }

    #[test]
    fn values() {
        assert_eq!(on_off("k", "on"), Ok(true));
        assert_eq!(on_off("k", "off"), Ok(false));
        assert_eq!(on_off("k", "1"), Err(bad("k", "1", "`on` or `off`")));
        assert_eq!(choice("k", "b", &[("a", 1), ("b", 2)], "a or b"), Ok(2));
        assert!(choice("k", "c", &[("a", 1)], "a").is_err());
        assert_eq!(decimal::<u8>("k", "20", |v| *v <= 20, "0-20"), Ok(20));
        assert!(decimal::<u8>("k", "21", |v| *v <= 20, "0-20").is_err());
        assert!(decimal::<u8>("k", "0x1", |_| true, "n").is_err());
        assert_eq!(
            (hex("1f"), hex("0x1f"), hex("0X1F")),
            (Some(31), Some(31), Some(31))
        );
        assert_eq!((hex(""), hex("0x"), hex("zz")), (None, None, None));
        assert_eq!((prefixed_hex("0x10"), prefixed_hex("10")), (Some(16), None));
        assert_eq!(
            (
                hex_or_decimal("0x10"),
                hex_or_decimal("10"),
                hex_or_decimal("1a")
            ),
            (Some(16), Some(10), None)
        );
        assert_eq!((on_off_str(true), on_off_str(false)), ("on", "off"));
    }
}
