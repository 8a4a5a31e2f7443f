//! FHIR search: which parameters each type supports, parsing a query into a [`SearchQuery`],
//! and matching validated resources against it.
//!
//! Semantics follow R4 §3.1.1: a comma inside a value is OR, a repeated parameter is AND;
//! `\,` `\|` `\$` `\\` escape. Date prefixes compare the range the search value covers with
//! the range the resource value covers (R4 §3.1.1.4.2.1). `ap` needs no clock here: it
//! widens the search range by a tenth of its own width on each side.

use medledger_types::ResourceType;

use crate::reference::is_fhir_id;
use crate::resource::Resource;
use crate::resources::spec;
use crate::{DateRange, FhirError};

/// Results per page when the client does not ask (`_count`).
pub const DEFAULT_PAGE_SIZE: u32 = 20;
/// Most results per page: each result is fetched, decrypted and serialised for the page, so
/// a page bounds one request's work and memory. Larger `_count` values are lowered to it.
pub const MAX_PAGE_SIZE: u32 = 100;
/// Largest `_offset`: paging by offset rescans the skipped candidates, so deep paging is
/// bounded; a search that needs more should be narrowed (by date, code or patient).
pub const MAX_SEARCH_OFFSET: u64 = 10_000;
/// Most parameters in one search (including repeats): each one is an AND over every
/// candidate.
pub const MAX_SEARCH_PARAMETERS: usize = 32;
/// Most comma-separated values (OR) in one parameter.
pub const MAX_SEARCH_VALUES: usize = 32;

/// What a search does with parameters it does not support: the `Prefer: handling=` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Handling {
    /// Refuse the search (400 with an OperationOutcome).
    Strict,
    /// Ignore them and say so in the Bundle (the R4 default).
    #[default]
    Lenient,
}

impl Handling {
    /// Reads a `Prefer` header value (`handling=strict`, possibly among other preferences).
    #[must_use]
    pub fn from_prefer(header: Option<&str>) -> Handling {
        let strict = header.into_iter().flat_map(|value| value.split([',', ';'])).any(|preference| {
            let compact: String = preference.chars().filter(|character| !character.is_whitespace()).collect();
            compact.eq_ignore_ascii_case("handling=strict")
        });
        if strict { Handling::Strict } else { Handling::Lenient }
    }
}

/// A token: a code and the system it is from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Token {
    /// The code system URI, if the coding names one.
    pub system: Option<String>,
    /// The code.
    pub code: String,
}

/// Which token keys of a resource a token parameter searches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenField {
    Codes,
    Categories,
}

/// What a search parameter is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ParamKind {
    Id,
    Count,
    Offset,
    /// `patient` or `subject`: a Patient.
    Patient,
    Token(TokenField),
    /// Paths (dot-separated) of the date, dateTime, instant or Period elements searched.
    Date(&'static [&'static str]),
}

impl ParamKind {
    /// The R4 search parameter type.
    pub(crate) fn fhir_type(self) -> &'static str {
        match self {
            ParamKind::Id | ParamKind::Token(_) => "token",
            ParamKind::Count | ParamKind::Offset => "number",
            ParamKind::Patient => "reference",
            ParamKind::Date(_) => "date",
        }
    }
}

/// A supported search parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SearchParam {
    pub name: &'static str,
    pub kind: ParamKind,
    pub documentation: &'static str,
}

/// Parameters every type supports.
pub(crate) static COMMON_PARAMS: &[SearchParam] = &[
    SearchParam {
        name: "_id",
        kind: ParamKind::Id,
        documentation: "Logical id: [id], comma-separated for any of several",
    },
    SearchParam {
        name: "_count",
        kind: ParamKind::Count,
        documentation: "Results per page: 1 to 100, default 20",
    },
    SearchParam {
        name: "_offset",
        kind: ParamKind::Offset,
        documentation: "Paging cursor: how many matches to skip (as in link[next]), at most 10000",
    },
];

/// HTTP-level parameters the API itself honours: accepted, not searched, not echoed.
const HTTP_PARAMS: &[&str] = &["_format", "_pretty"];

/// The parameters `resource_type` supports, common ones first.
pub(crate) fn params(resource_type: ResourceType) -> impl Iterator<Item = &'static SearchParam> {
    COMMON_PARAMS.iter().chain(spec(resource_type).search.iter())
}

/// The names of the search parameters `resource_type` supports.
#[must_use]
pub fn supported_parameters(resource_type: ResourceType) -> Vec<&'static str> {
    params(resource_type).map(|param| param.name).collect()
}

/// A date search prefix (R4 §3.1.1.4.2.1); no prefix means `eq`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatePrefix {
    /// The resource's range lies within the search range.
    Eq,
    /// Not `eq`.
    Ne,
    /// The resource's range ends after the search range.
    Gt,
    /// The resource's range starts before the search range.
    Lt,
    /// `gt` or `eq`.
    Ge,
    /// `lt` or `eq`.
    Le,
    /// The resource's range starts after the search range ends.
    Sa,
    /// The resource's range ends before the search range starts.
    Eb,
    /// The ranges overlap once the search range is widened by a tenth of its width each side.
    Ap,
}

impl DatePrefix {
    const ALL: [(&'static str, DatePrefix); 9] = [
        ("eq", DatePrefix::Eq),
        ("ne", DatePrefix::Ne),
        ("gt", DatePrefix::Gt),
        ("lt", DatePrefix::Lt),
        ("ge", DatePrefix::Ge),
        ("le", DatePrefix::Le),
        ("sa", DatePrefix::Sa),
        ("eb", DatePrefix::Eb),
        ("ap", DatePrefix::Ap),
    ];

    /// Splits a search value into its prefix and the date text.
    fn split(value: &str) -> (DatePrefix, &str) {
        for (text, prefix) in Self::ALL {
            if let Some(rest) = value.strip_prefix(text) {
                return (prefix, rest);
            }
        }
        (DatePrefix::Eq, value)
    }

    /// Whether a resource value covering `value` matches the search value covering `search`.
    #[must_use]
    pub fn matches(self, search: &DateRange, value: &DateRange) -> bool {
        match self {
            DatePrefix::Eq => search.contains(value),
            DatePrefix::Ne => !search.contains(value),
            DatePrefix::Gt => value.end_ms > search.end_ms,
            DatePrefix::Lt => value.start_ms < search.start_ms,
            DatePrefix::Ge => value.end_ms > search.end_ms || search.contains(value),
            DatePrefix::Le => value.start_ms < search.start_ms || search.contains(value),
            DatePrefix::Sa => value.start_ms >= search.end_ms,
            DatePrefix::Eb => value.end_ms <= search.start_ms,
            DatePrefix::Ap => {
                let margin_ms = search.end_ms.saturating_sub(search.start_ms) / 10;
                let widened = DateRange {
                    start_ms: search.start_ms.saturating_sub(margin_ms),
                    end_ms: search.end_ms.saturating_add(margin_ms),
                };
                widened.overlaps(value)
            }
        }
    }
}

/// One alternative of a token parameter.
#[derive(Debug, Clone, PartialEq, Eq)]
enum TokenPattern {
    /// `code`: the code in any system.
    Code(String),
    /// `system|code`.
    SystemCode(String, String),
    /// `|code`: the code without a system.
    NoSystem(String),
    /// `system|`: any code of the system.
    System(String),
}

impl TokenPattern {
    fn matches(&self, token: &Token) -> bool {
        match self {
            TokenPattern::Code(code) => token.code == *code,
            TokenPattern::SystemCode(system, code) => {
                token.system.as_ref() == Some(system) && token.code == *code
            }
            TokenPattern::NoSystem(code) => token.system.is_none() && token.code == *code,
            TokenPattern::System(system) => token.system.as_ref() == Some(system),
        }
    }
}

/// A parsed search over one resource type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchQuery {
    resource_type: ResourceType,
    /// AND of ORs of logical ids.
    ids: Vec<Vec<String>>,
    /// Patient ids, all of which must be the resource's patient.
    patients: Vec<String>,
    /// AND of ORs of token patterns.
    tokens: Vec<(TokenField, Vec<TokenPattern>)>,
    /// AND of ORs of date comparisons, per date parameter.
    dates: Vec<(&'static str, Vec<(DatePrefix, DateRange)>)>,
    count: u32,
    offset: u64,
    /// The parameters used, normalised, in the order given (for the self link).
    used: Vec<(String, String)>,
    ignored: Vec<String>,
}

impl SearchQuery {
    /// Parses the query parameters (already percent-decoded) of a search on `resource_type`.
    /// Unsupported parameters are refused under [`Handling::Strict`] and listed in
    /// [`SearchQuery::ignored`] under [`Handling::Lenient`]; malformed values of supported
    /// parameters and unsupported modifiers are refused either way.
    pub fn parse(
        resource_type: ResourceType,
        pairs: &[(String, String)],
        handling: Handling,
    ) -> Result<SearchQuery, FhirError> {
        if pairs.len() > MAX_SEARCH_PARAMETERS {
            return Err(FhirError::TooManySearchParameters {
                count: pairs.len(),
                max: MAX_SEARCH_PARAMETERS,
            });
        }
        let mut query = SearchQuery {
            resource_type,
            ids: Vec::new(),
            patients: Vec::new(),
            tokens: Vec::new(),
            dates: Vec::new(),
            count: DEFAULT_PAGE_SIZE,
            offset: 0,
            used: Vec::new(),
            ignored: Vec::new(),
        };
        let mut paging_seen = Vec::new();
        for (name, value) in pairs {
            if matches!(name.as_str(), "_count" | "_offset") {
                if paging_seen.contains(name) {
                    return Err(invalid_value(name, "may appear only once"));
                }
                paging_seen.push(name.clone());
            }
            query.add(name, value, handling)?;
        }
        Ok(query)
    }

    fn add(&mut self, name: &str, value: &str, handling: Handling) -> Result<(), FhirError> {
        if HTTP_PARAMS.contains(&name) {
            return Ok(());
        }
        let (base, modifier) =
            name.split_once(':').map_or((name, None), |(base, modifier)| (base, Some(modifier)));
        let Some(param) = params(self.resource_type).find(|param| param.name == base) else {
            return self.unknown(name, handling);
        };
        if let Some(modifier) = modifier {
            return Err(FhirError::UnsupportedModifier {
                name: param.name.to_owned(),
                modifier: safe_name(modifier),
            });
        }
        if value.is_empty() {
            return Err(invalid_value(param.name, "has no value"));
        }
        match param.kind {
            ParamKind::Id => self.add_ids(param.name, value)?,
            ParamKind::Count => self.count = parse_count(value)?,
            ParamKind::Offset => self.offset = parse_offset(value)?,
            ParamKind::Patient => self.add_patient(param.name, value)?,
            ParamKind::Token(field) => self.add_tokens(param.name, field, value)?,
            ParamKind::Date(_) => self.add_dates(param.name, value)?,
        }
        if !matches!(param.kind, ParamKind::Count | ParamKind::Offset | ParamKind::Patient) {
            self.used.push((param.name.to_owned(), value.to_owned()));
        }
        Ok(())
    }

    fn unknown(&mut self, name: &str, handling: Handling) -> Result<(), FhirError> {
        let name = safe_name(name);
        match handling {
            Handling::Strict => Err(FhirError::UnknownSearchParameter { name }),
            Handling::Lenient => {
                if !self.ignored.contains(&name) {
                    self.ignored.push(name);
                }
                Ok(())
            }
        }
    }

    fn add_ids(&mut self, name: &str, value: &str) -> Result<(), FhirError> {
        let ids = split_values(name, value)?;
        if !ids.iter().all(|id| is_fhir_id(id)) {
            return Err(invalid_value(name, "must be FHIR ids: 1 to 64 of A-Z a-z 0-9 - ."));
        }
        self.ids.push(ids);
        Ok(())
    }

    fn add_patient(&mut self, name: &str, value: &str) -> Result<(), FhirError> {
        let id = value.strip_prefix("Patient/").unwrap_or(value);
        if id.contains(',') {
            return Err(invalid_value(name, "names one patient per parameter"));
        }
        if !is_fhir_id(id) {
            return Err(invalid_value(name, "must be Patient/[id] or [id], the id a FHIR id"));
        }
        self.used.push((name.to_owned(), format!("Patient/{id}")));
        self.patients.push(id.to_owned());
        Ok(())
    }

    fn add_tokens(&mut self, name: &str, field: TokenField, value: &str) -> Result<(), FhirError> {
        let patterns = split_raw(value, ',')
            .into_iter()
            .map(|alternative| parse_token(alternative).ok_or_else(|| invalid_value(name, TOKEN_RULE)))
            .collect::<Result<Vec<_>, _>>()?;
        check_value_count(name, patterns.len())?;
        self.tokens.push((field, patterns));
        Ok(())
    }

    fn add_dates(&mut self, name: &'static str, value: &str) -> Result<(), FhirError> {
        let mut alternatives = Vec::new();
        for alternative in split_values(name, value)? {
            let (prefix, text) = DatePrefix::split(&alternative);
            let range = DateRange::parse_search(text).map_err(|reason| invalid_value(name, reason))?;
            alternatives.push((prefix, range));
        }
        self.dates.push((name, alternatives));
        Ok(())
    }
}

const TOKEN_RULE: &str = "must be [code], [system]|[code], |[code] or [system]|";

fn invalid_value(name: &str, reason: &str) -> FhirError {
    FhirError::InvalidSearchValue { name: name.to_owned(), reason: reason.to_owned() }
}

/// A parameter name as it may be echoed: only if it looks like one.
fn safe_name(name: &str) -> String {
    let plausible = (1..=64).contains(&name.len())
        && name.bytes().all(|byte| byte.is_ascii_alphanumeric() || matches!(byte, b'_' | b'-' | b'.' | b':'));
    if plausible { name.to_owned() } else { "(a malformed parameter name)".to_owned() }
}

fn parse_count(value: &str) -> Result<u32, FhirError> {
    let count: u64 = value.parse().map_err(|_| invalid_value("_count", "must be a whole number from 1"))?;
    if count == 0 {
        return Err(invalid_value(
            "_count",
            "must be at least 1 (counting without results is not supported)",
        ));
    }
    Ok(u32::try_from(count).unwrap_or(u32::MAX).min(MAX_PAGE_SIZE))
}

fn parse_offset(value: &str) -> Result<u64, FhirError> {
    let offset: u64 = value.parse().map_err(|_| invalid_value("_offset", "must be a whole number from 0"))?;
    if offset > MAX_SEARCH_OFFSET {
        return Err(invalid_value("_offset", "must be at most 10000; narrow the search instead"));
    }
    Ok(offset)
}

fn check_value_count(name: &str, count: usize) -> Result<(), FhirError> {
    if count > MAX_SEARCH_VALUES {
        return Err(FhirError::TooManySearchParameters { count, max: MAX_SEARCH_VALUES });
    }
    if count == 0 {
        return Err(invalid_value(name, "has no value"));
    }
    Ok(())
}

/// Splits on `separator` where it is not escaped by a backslash; escapes are kept.
fn split_raw(value: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (index, character) in value.char_indices() {
        match character {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            _ if character == separator => {
                parts.push(&value[start..index]);
                start = index + character.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&value[start..]);
    parts
}

/// Removes the R4 search escapes (`\,` `\|` `\$` `\\`).
fn unescape(value: &str) -> String {
    let mut text = String::with_capacity(value.len());
    let mut characters = value.chars();
    while let Some(character) = characters.next() {
        text.push(if character == '\\' { characters.next().unwrap_or('\\') } else { character });
    }
    text
}

/// Splits OR alternatives, unescaped, refusing empty ones and too many.
fn split_values(name: &str, value: &str) -> Result<Vec<String>, FhirError> {
    let values: Vec<String> = split_raw(value, ',').into_iter().map(unescape).collect();
    check_value_count(name, values.len())?;
    if values.iter().any(String::is_empty) {
        return Err(invalid_value(name, "has an empty alternative"));
    }
    Ok(values)
}

fn parse_token(text: &str) -> Option<TokenPattern> {
    match split_raw(text, '|').as_slice() {
        [code] if !code.is_empty() => Some(TokenPattern::Code(unescape(code))),
        ["", code] if !code.is_empty() => Some(TokenPattern::NoSystem(unescape(code))),
        [system, ""] if !system.is_empty() => Some(TokenPattern::System(unescape(system))),
        [system, code] if !system.is_empty() && !code.is_empty() => {
            Some(TokenPattern::SystemCode(unescape(system), unescape(code)))
        }
        _ => None,
    }
}

impl SearchQuery {
    /// The resource type searched.
    #[must_use]
    pub fn resource_type(&self) -> ResourceType {
        self.resource_type
    }

    /// The patient the search is restricted to (`patient` or `subject`), so the store can
    /// narrow its candidates to one compartment.
    #[must_use]
    pub fn patient(&self) -> Option<&str> {
        self.patients.first().map(String::as_str)
    }

    /// Results per page.
    #[must_use]
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Matches to skip before this page.
    #[must_use]
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Names of the parameters ignored under [`Handling::Lenient`] (names only, never values).
    #[must_use]
    pub fn ignored(&self) -> &[String] {
        &self.ignored
    }

    /// Whether `resource` matches every criterion (type, `_id`, patient, tokens, dates);
    /// paging is the caller's.
    #[must_use]
    pub fn matches(&self, resource: &Resource) -> bool {
        resource.resource_type() == self.resource_type
            && self
                .ids
                .iter()
                .all(|ids| resource.id().is_some_and(|id| ids.iter().any(|wanted| wanted == id)))
            && self.patients.iter().all(|patient| resource.patient_reference() == Some(patient.as_str()))
            && self.tokens.iter().all(|(field, patterns)| {
                let tokens = match field {
                    TokenField::Codes => resource.codes(),
                    TokenField::Categories => resource.categories(),
                };
                tokens.iter().any(|token| patterns.iter().any(|pattern| pattern.matches(token)))
            })
            && self.dates.iter().all(|(param, alternatives)| {
                let mut values = resource.dates().iter().filter(|key| key.param == *param);
                values
                    .any(|key| alternatives.iter().any(|(prefix, search)| prefix.matches(search, &key.range)))
            })
    }

    /// The normalised query string of this page: the parameters used (not the ignored ones),
    /// `_count`, and `_offset` when not 0, percent-encoded. For `link[self]`.
    #[must_use]
    pub fn self_link_query(&self) -> String {
        self.page_link_query(self.offset)
    }

    /// The query string of the page starting at `offset`, for `link[next]` and `link[previous]`.
    #[must_use]
    pub fn page_link_query(&self, offset: u64) -> String {
        let count = self.count.to_string();
        let offset = offset.to_string();
        let paging = [("_count", count.as_str()), ("_offset", offset.as_str())];
        let used = self.used.iter().map(|(name, value)| (name.as_str(), value.as_str()));
        let pairs =
            used.chain(paging.into_iter().filter(|(name, value)| !(*name == "_offset" && *value == "0")));
        pairs
            .map(|(name, value)| format!("{}={}", percent_encode(name), percent_encode(value)))
            .collect::<Vec<_>>()
            .join("&")
    }
}

/// Percent-encodes a query component: everything but unreserved characters and `:/,`.
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b':' | b'/' | b',') {
            encoded.push(char::from(byte));
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_split_and_unescape() {
        assert_eq!(split_raw(r"a\,b,c", ','), vec![r"a\,b", "c"]);
        assert_eq!(unescape(r"a\,b\|c\\"), r"a,b|c\");
        assert_eq!(
            parse_token(r"http://x|a\|b"),
            Some(TokenPattern::SystemCode("http://x".into(), "a|b".into()))
        );
        assert_eq!(parse_token("|"), None);
        assert_eq!(percent_encode("http://loinc.org|4548-4"), "http://loinc.org%7C4548-4");
    }

    #[test]
    fn prefer_header_selects_handling() {
        assert_eq!(Handling::from_prefer(Some("return=minimal; handling=strict")), Handling::Strict);
        assert_eq!(Handling::from_prefer(Some("handling = strict")), Handling::Strict);
        assert_eq!(Handling::from_prefer(Some("handling=lenient")), Handling::Lenient);
        assert_eq!(Handling::from_prefer(None), Handling::Lenient);
    }
}
