//! Policy settings: typed, defaulted, and refused as a whole with every problem named.

use std::borrow::Cow;
use std::fmt;

use serde_json::value::RawValue;

use crate::reference::{is_host_form, is_tag_char, is_word, TAG_LENGTH_MAX};
use crate::request::Entries;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    Mutate,
    Reject,
    Warn,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Self::Mutate => "mutate",
            Self::Reject => "reject",
            Self::Warn => "warn",
        }
    }
}

/// Which objects get their tags pinned to the digests they point to at admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PinScope {
    Off,
    Pods,
    /// Pods and workload templates.
    All,
}

impl PinScope {
    fn name(self) -> &'static str {
        match self {
            Self::Off => "off",
            Self::Pods => "pods",
            Self::All => "all",
        }
    }
}

/// What to do with a container whose tag cannot be resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RegistryFailure {
    Reject,
    Accept,
}

/// A `*`/`?` wildcard pattern, case-sensitive: `*` matches any run of characters, `?` one
/// character. Kept as its text and matched as it stands: no set-up per request, and the
/// default (`latest`) costs no allocation.
#[derive(Debug)]
pub(crate) struct Pattern(Cow<'static, str>);

impl Pattern {
    pub(crate) fn new(text: &str) -> Self {
        Self(Cow::Owned(text.to_owned()))
    }

    const fn fixed(text: &'static str) -> Self {
        Self(Cow::Borrowed(text))
    }

    /// Whether the whole of `candidate` matches. A `*` that fails to match from one place is
    /// tried again from the next character, from the last `*` only: matching stays linear in
    /// the pattern times the candidate.
    pub(crate) fn matches(&self, candidate: &str) -> bool {
        let pattern = self.0.as_bytes();
        let text = candidate.as_bytes();
        let past_char = |at: usize| {
            at + candidate
                .get(at..)
                .and_then(|rest| rest.chars().next())
                .map_or(1, char::len_utf8)
        };
        let (mut p, mut t) = (0, 0);
        // Where the pattern goes on after the last `*`, and where in the text that `*` ends.
        let mut star: Option<(usize, usize)> = None;
        while let Some(&byte) = text.get(t) {
            match pattern.get(p) {
                Some(b'*') => {
                    p += 1;
                    star = Some((p, t));
                    continue;
                }
                Some(b'?') => {
                    p += 1;
                    t = past_char(t);
                    continue;
                }
                Some(&literal) if literal == byte => {
                    p += 1;
                    t += 1;
                    continue;
                }
                _ => {}
            }
            let Some((after_star, star_end)) = star else {
                return false;
            };
            let star_end = past_char(star_end);
            star = Some((after_star, star_end));
            (p, t) = (after_star, star_end);
        }
        pattern
            .get(p..)
            .is_some_and(|rest| rest.iter().all(|&b| b == b'*'))
    }
}

/// A `pinRegistries` entry: a literal registry host, compared case-insensitively as DNS names
/// are, then a `*`/`?` pattern over the rest of the fully qualified image.
#[derive(Debug)]
pub(crate) struct RegistryPattern {
    /// Lower case.
    host: String,
    rest: Pattern,
}

impl RegistryPattern {
    /// `registry.example.com/*`, `ghcr.io/acme/*`, `localhost:5000/team/app:*`; `None` unless
    /// the text starts with a host as the reference grammar reads one (a `.` or `:` in it, or
    /// `localhost`), free of wildcards, and a `/`.
    fn parse(text: &str) -> Option<Self> {
        let (host, rest) = text.split_once('/')?;
        let is_host = is_host_form(host) && !host.contains(['*', '?']) && !rest.is_empty();
        is_host.then(|| Self {
            host: host.to_ascii_lowercase(),
            rest: Pattern::new(rest),
        })
    }

    /// Whether the fully qualified image `qualified` (`docker.io/library/nginx:1.27`) matches.
    pub(crate) fn matches(&self, qualified: &str) -> bool {
        qualified.split_once('/').is_some_and(|(host, rest)| {
            host.eq_ignore_ascii_case(&self.host) && self.rest.matches(rest)
        })
    }
}

/// Whether some valid tag matches `pattern`: only tag characters and wildcards, a first
/// character a tag may start with, and no more fixed characters than a tag may hold.
fn is_tag_pattern(pattern: &str) -> bool {
    let is_wildcard = |b: u8| b == b'*' || b == b'?';
    let fixed = pattern.bytes().filter(|&b| b != b'*').count();
    let unstarred = pattern.trim_start_matches('*');
    // After a leading `*`, a tag needs one character of its own before a '.' or '-'.
    let lead = match unstarred.bytes().next() {
        None => return !pattern.is_empty(),
        Some(b) if is_word(b) || is_wildcard(b) => 0,
        Some(_) if unstarred.len() < pattern.len() => 1,
        Some(_) => return false,
    };
    fixed + lead <= TAG_LENGTH_MAX && pattern.bytes().all(|b| is_tag_char(b) || is_wildcard(b))
}

#[derive(Debug)]
pub(crate) struct Settings {
    pub(crate) mode: Mode,
    pub(crate) require_tag: bool,
    /// Tag patterns, matched case-sensitively as tags are.
    pub(crate) denied_tags: Vec<Pattern>,
    /// A tag that reads as a version must give major, minor and patch.
    pub(crate) require_full_version: bool,
    pub(crate) require_digest: bool,
    pub(crate) require_always_for_digests: bool,
    pub(crate) exempt_images: Vec<Pattern>,
    pub(crate) exempt_containers: Vec<ContainerExemption>,
    pub(crate) mutate_templates: bool,
    pub(crate) pin_digests: PinScope,
    /// The registries pinning may ask: an image's name is chosen by whoever writes the Pod.
    pub(crate) pin_registries: Vec<RegistryPattern>,
    pub(crate) registry_failure: RegistryFailure,
}

/// A container exempt by its name and its image together: a name alone is chosen by whoever
/// writes the Pod, so it could exempt any image.
#[derive(Debug)]
pub(crate) struct ContainerExemption {
    pub(crate) name: Pattern,
    /// Matched like `exemptImages`: the image as written or its fully qualified form.
    pub(crate) image: Pattern,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            mode: Mode::Mutate,
            require_tag: true,
            denied_tags: vec![Pattern::fixed("latest")],
            require_full_version: false,
            require_digest: false,
            require_always_for_digests: true,
            exempt_images: Vec::new(),
            exempt_containers: Vec::new(),
            mutate_templates: true,
            pin_digests: PinScope::Off,
            pin_registries: Vec::new(),
            registry_failure: RegistryFailure::Reject,
        }
    }
}

const KEYS: &[&str] = &[
    "mode",
    "requireTag",
    "deniedTags",
    "requireFullVersion",
    "requireDigest",
    "requireAlwaysForDigests",
    "exemptImages",
    "exemptContainers",
    "mutateTemplates",
    "pinDigests",
    "pinRegistries",
    "registryFailure",
];

/// One problem with the settings; `SettingsErrors` joins them into one message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SettingsError {
    Unreadable(String),
    NotAnObject,
    UnknownKey(String),
    DuplicateKey(String),
    NotABoolean(&'static str),
    NotAListOfStrings(&'static str),
    UnknownMode(String),
    InvalidDeniedTag {
        index: usize,
        tag: String,
    },
    EmptyPattern {
        key: &'static str,
        index: usize,
    },
    /// A string setting with a value outside its choices.
    NotAChoice {
        key: &'static str,
        value: String,
        choices: String,
    },
    /// Pinning writes the image, which only mutate mode does.
    PinningNeedsMutate {
        scope: PinScope,
        mode: Mode,
    },
    /// Pinning without `pinRegistries`.
    PinningNeedsRegistries {
        scope: PinScope,
    },
    InvalidRegistryPattern {
        index: usize,
        pattern: String,
    },
    NotAListOfExemptions,
    /// An `exemptContainers` entry that names a container only.
    NameOnlyExemption {
        index: usize,
        name: String,
    },
    /// An `exemptContainers` entry that is not `{name, image}`.
    MalformedExemption {
        index: usize,
    },
    EmptyExemptionPattern {
        index: usize,
        field: &'static str,
    },
}

impl fmt::Display for SettingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreadable(reason) => write!(f, "settings are not valid JSON: {reason}"),
            Self::NotAnObject => f.write_str("settings must be an object of keys and values"),
            Self::UnknownKey(key) => write!(
                f,
                "unknown key {key:?}; the allowed keys are {}",
                KEYS.join(", ")
            ),
            Self::DuplicateKey(key) => write!(f, "{key}: given more than once"),
            Self::NotABoolean(key) => write!(f, "{key}: must be true or false"),
            Self::NotAListOfStrings(key) => write!(f, "{key}: must be a list of strings"),
            Self::UnknownMode(mode) => write!(
                f,
                "mode: {mode} is not a mode; allowed: \"mutate\", \"reject\", \"warn\""
            ),
            Self::InvalidDeniedTag { index, tag } => write!(
                f,
                "deniedTags[{index}]: {tag:?} is not a valid tag pattern, so no tag matches it \
                 (letters, digits, '_', '.', '-' and the wildcards '*' for any run of \
                 characters and '?' for one; not starting with '.' or '-'; at most 128)"
            ),
            Self::EmptyPattern { key, index } => {
                write!(f, "{key}[{index}]: a pattern must not be empty")
            }
            Self::NotAChoice {
                key,
                value,
                choices,
            } => write!(f, "{key}: {value} is not one of {choices}"),
            Self::PinningNeedsMutate { scope, mode } => write!(
                f,
                "pinDigests: \"{}\" writes the resolved digest into the object, which only \
                 mode \"mutate\" does; with mode \"{}\" set pinDigests to \"off\"",
                scope.name(),
                mode.name()
            ),
            Self::PinningNeedsRegistries { scope } => write!(
                f,
                "pinDigests: \"{}\" makes the policy server connect to the registry each image \
                 names, and whoever writes a Pod chooses the image; list the registries it may \
                 ask in pinRegistries, e.g. pinRegistries: [\"registry.example.com/*\", \
                 \"ghcr.io/acme/*\"]",
                scope.name()
            ),
            Self::InvalidRegistryPattern { index, pattern } => write!(
                f,
                "pinRegistries[{index}]: {pattern:?} must start with a registry host and a \
                 '/', without wildcards in the host, e.g. \"registry.example.com/*\" or \
                 \"docker.io/library/*\""
            ),
            Self::NotAListOfExemptions => f.write_str(
                "exemptContainers: must be a list of {name: PATTERN, image: PATTERN} entries",
            ),
            Self::NameOnlyExemption { index, name } => write!(
                f,
                "exemptContainers[{index}]: {name:?} names a container only, and whoever \
                 creates a Pod chooses its container names; name its image too: \
                 {{name: {name:?}, image: \"registry.example.com/mesh/proxy:*\"}}"
            ),
            Self::MalformedExemption { index } => write!(
                f,
                "exemptContainers[{index}]: must be {{name: PATTERN, image: PATTERN}}, \
                 both strings and nothing else"
            ),
            Self::EmptyExemptionPattern { index, field } => {
                write!(
                    f,
                    "exemptContainers[{index}].{field}: a pattern must not be empty"
                )
            }
        }
    }
}

/// Every problem found in one settings object, in key order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SettingsErrors(pub(crate) Vec<SettingsError>);

impl fmt::Display for SettingsErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl Settings {
    /// Parses settings JSON; `null` or no settings at all mean the defaults.
    pub(crate) fn from_json(json: &str) -> Result<Self, SettingsErrors> {
        // The policy server sends the settings with every request; most are empty.
        if matches!(json, "{}" | "null") {
            return Ok(Self::default());
        }
        let entries = match serde_json::from_str::<Option<Entries<'_>>>(json) {
            Ok(Some(entries)) => entries.0,
            Ok(None) => Vec::new(),
            Err(error) if error.is_data() => {
                return Err(SettingsErrors(vec![SettingsError::NotAnObject]))
            }
            Err(error) => {
                return Err(SettingsErrors(vec![SettingsError::Unreadable(
                    error.to_string(),
                )]))
            }
        };
        let mut settings = Self::default();
        let mut errors = Vec::new();
        let mut seen: Vec<&str> = Vec::with_capacity(entries.len());
        for (key, value) in &entries {
            if seen.contains(&key.as_ref()) {
                errors.push(SettingsError::DuplicateKey(key.to_string()));
                continue;
            }
            seen.push(key);
            if value.get() == "null" {
                continue;
            }
            if let Err(error) = settings.set(key, value) {
                errors.push(error);
            }
        }
        if settings.pin_digests != PinScope::Off && settings.mode != Mode::Mutate {
            errors.push(SettingsError::PinningNeedsMutate {
                scope: settings.pin_digests,
                mode: settings.mode,
            });
        }
        if settings.pin_digests != PinScope::Off
            && settings.pin_registries.is_empty()
            && !errors.iter().any(|error| {
                matches!(
                    error,
                    SettingsError::InvalidRegistryPattern { .. }
                        | SettingsError::NotAListOfStrings("pinRegistries")
                )
            })
        {
            errors.push(SettingsError::PinningNeedsRegistries {
                scope: settings.pin_digests,
            });
        }
        if errors.is_empty() {
            Ok(settings)
        } else {
            Err(SettingsErrors(errors))
        }
    }

    fn set(&mut self, key: &str, value: &RawValue) -> Result<(), SettingsError> {
        match key {
            "mode" => self.mode = parse_mode(value)?,
            "requireTag" => self.require_tag = parse_bool("requireTag", value)?,
            "deniedTags" => self.denied_tags = parse_denied_tags(value)?,
            "requireFullVersion" => {
                self.require_full_version = parse_bool("requireFullVersion", value)?
            }
            "requireDigest" => self.require_digest = parse_bool("requireDigest", value)?,
            "requireAlwaysForDigests" => {
                self.require_always_for_digests = parse_bool("requireAlwaysForDigests", value)?
            }
            "exemptImages" => self.exempt_images = parse_patterns("exemptImages", value)?,
            "exemptContainers" => self.exempt_containers = parse_container_exemptions(value)?,
            "mutateTemplates" => self.mutate_templates = parse_bool("mutateTemplates", value)?,
            "pinDigests" => {
                self.pin_digests = parse_choice(
                    "pinDigests",
                    value,
                    &[
                        ("off", PinScope::Off),
                        ("pods", PinScope::Pods),
                        ("all", PinScope::All),
                    ],
                )?
            }
            "pinRegistries" => self.pin_registries = parse_registry_patterns(value)?,
            "registryFailure" => {
                self.registry_failure = parse_choice(
                    "registryFailure",
                    value,
                    &[
                        ("reject", RegistryFailure::Reject),
                        ("accept", RegistryFailure::Accept),
                    ],
                )?
            }
            unknown => return Err(SettingsError::UnknownKey(unknown.to_owned())),
        }
        Ok(())
    }
}

fn parse_mode(value: &RawValue) -> Result<Mode, SettingsError> {
    match serde_json::from_str::<Cow<'_, str>>(value.get()).as_deref() {
        Ok("mutate") => Ok(Mode::Mutate),
        Ok("reject") => Ok(Mode::Reject),
        Ok("warn") => Ok(Mode::Warn),
        _ => Err(SettingsError::UnknownMode(value.get().to_owned())),
    }
}

/// A string that must be one of `choices`, e.g. `"off"`.
fn parse_choice<T: Copy>(
    key: &'static str,
    value: &RawValue,
    choices: &[(&'static str, T)],
) -> Result<T, SettingsError> {
    let text = serde_json::from_str::<Cow<'_, str>>(value.get()).ok();
    choices
        .iter()
        .find(|(name, _)| Some(*name) == text.as_deref())
        .map(|(_, choice)| *choice)
        .ok_or_else(|| SettingsError::NotAChoice {
            key,
            value: value.get().to_owned(),
            choices: choices
                .iter()
                .map(|(name, _)| format!("\"{name}\""))
                .collect::<Vec<_>>()
                .join(", "),
        })
}

fn parse_bool(key: &'static str, value: &RawValue) -> Result<bool, SettingsError> {
    serde_json::from_str(value.get()).map_err(|_| SettingsError::NotABoolean(key))
}

fn parse_strings(key: &'static str, value: &RawValue) -> Result<Vec<String>, SettingsError> {
    serde_json::from_str(value.get()).map_err(|_| SettingsError::NotAListOfStrings(key))
}

fn parse_denied_tags(value: &RawValue) -> Result<Vec<Pattern>, SettingsError> {
    let tags = parse_strings("deniedTags", value)?;
    match tags.iter().position(|tag| !is_tag_pattern(tag)) {
        Some(index) => Err(SettingsError::InvalidDeniedTag {
            index,
            tag: tags.get(index).cloned().unwrap_or_default(),
        }),
        None => Ok(tags.iter().map(|tag| Pattern::new(tag)).collect()),
    }
}

fn parse_patterns(key: &'static str, value: &RawValue) -> Result<Vec<Pattern>, SettingsError> {
    let texts = parse_strings(key, value)?;
    match texts.iter().position(|text| text.is_empty()) {
        Some(index) => Err(SettingsError::EmptyPattern { key, index }),
        None => Ok(texts.iter().map(|text| Pattern::new(text)).collect()),
    }
}

fn parse_registry_patterns(value: &RawValue) -> Result<Vec<RegistryPattern>, SettingsError> {
    let texts = parse_strings("pinRegistries", value)?;
    texts
        .iter()
        .enumerate()
        .map(|(index, text)| {
            RegistryPattern::parse(text).ok_or_else(|| SettingsError::InvalidRegistryPattern {
                index,
                pattern: text.clone(),
            })
        })
        .collect()
}

fn parse_container_exemptions(value: &RawValue) -> Result<Vec<ContainerExemption>, SettingsError> {
    let entries: Vec<&RawValue> =
        serde_json::from_str(value.get()).map_err(|_| SettingsError::NotAListOfExemptions)?;
    let mut exemptions = Vec::with_capacity(entries.len());
    for (index, entry) in entries.iter().enumerate() {
        let Ok(Entries(fields)) = serde_json::from_str::<Entries<'_>>(entry.get()) else {
            return Err(match serde_json::from_str::<Cow<'_, str>>(entry.get()) {
                Ok(name) => SettingsError::NameOnlyExemption {
                    index,
                    name: name.into_owned(),
                },
                Err(_) => SettingsError::MalformedExemption { index },
            });
        };
        let (mut name, mut image) = (None, None);
        for (key, value) in fields {
            let slot = match key.as_ref() {
                "name" => &mut name,
                "image" => &mut image,
                _ => return Err(SettingsError::MalformedExemption { index }),
            };
            let text = serde_json::from_str::<Cow<'_, str>>(value.get())
                .map_err(|_| SettingsError::MalformedExemption { index })?;
            if slot.replace(text).is_some() {
                return Err(SettingsError::MalformedExemption { index });
            }
        }
        let (Some(name), Some(image)) = (name, image) else {
            return Err(SettingsError::MalformedExemption { index });
        };
        for (field, text) in [("name", &name), ("image", &image)] {
            if text.is_empty() {
                return Err(SettingsError::EmptyExemptionPattern { index, field });
            }
        }
        exemptions.push(ContainerExemption {
            name: Pattern::new(&name),
            image: Pattern::new(&image),
        });
    }
    Ok(exemptions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    proptest::proptest! {
        /// The matcher agrees with the wildmatch crate (case-sensitive), which it replaced, on
        /// patterns and candidates made of the characters that matter to it.
        #[test]
        fn patterns_match_as_wildmatch_matches(
            pattern in "[ab*?é]{0,8}",
            candidate in "[abé]{0,10}",
        ) {
            proptest::prop_assert_eq!(
                Pattern::new(&pattern).matches(&candidate),
                wildmatch::WildMatch::new(&pattern).matches(&candidate),
                "{:?} against {:?}", pattern, candidate
            );
        }
    }

    #[rstest]
    #[case("latest", "latest", true)]
    #[case("latest", "Latest", false)]
    #[case("*-SNAPSHOT", "1.0-SNAPSHOT", true)]
    #[case("*-SNAPSHOT", "1.0-SNAPSHOTS", false)]
    #[case("v?", "v1", true)]
    #[case("v?", "v10", false)]
    #[case("?", "é", true)]
    #[case("a*b*c", "aXbYbZc", true)]
    #[case("a*b*c", "aXbYbZ", false)]
    #[case("*", "", true)]
    #[case("", "", true)]
    #[case("", "a", false)]
    fn patterns_match_whole_candidates(
        #[case] pattern: &str,
        #[case] candidate: &str,
        #[case] expected: bool,
    ) {
        assert_eq!(Pattern::new(pattern).matches(candidate), expected);
    }

    fn errors(json: &str) -> String {
        Settings::from_json(json).unwrap_err().to_string()
    }

    fn patterns(patterns: &[Pattern]) -> Vec<String> {
        patterns.iter().map(|p| p.0.to_string()).collect()
    }

    #[test]
    fn empty_object_gives_the_spec_defaults() {
        let settings = Settings::from_json("{}").unwrap();
        assert_eq!(settings.mode, Mode::Mutate);
        assert!(settings.require_tag);
        assert_eq!(patterns(&settings.denied_tags), vec!["latest"]);
        assert!(!settings.require_full_version);
        assert!(!settings.require_digest);
        assert!(settings.require_always_for_digests);
        assert!(settings.exempt_images.is_empty());
        assert!(settings.exempt_containers.is_empty());
        assert!(settings.mutate_templates);
    }

    #[rstest]
    #[case::null("null")]
    #[case::null_values(r#"{"mode": null, "deniedTags": null}"#)]
    fn null_means_default(#[case] json: &str) {
        let settings = Settings::from_json(json).unwrap();
        assert_eq!(settings.mode, Mode::Mutate);
        assert_eq!(patterns(&settings.denied_tags), vec!["latest"]);
    }

    #[test]
    fn every_key_is_read() {
        let settings = Settings::from_json(
            r#"{"mode":"warn","requireTag":false,"deniedTags":["dev","edge-*"],
                "requireFullVersion":true,"requireDigest":true,"requireAlwaysForDigests":false,
                "exemptImages":["registry.example.com/*"],
                "exemptContainers":[{"name":"istio-?roxy","image":"docker.io/istio/proxyv2:*"}],
                "mutateTemplates":false}"#,
        )
        .unwrap();
        assert_eq!(settings.mode, Mode::Warn);
        assert!(!settings.require_tag);
        assert_eq!(patterns(&settings.denied_tags), vec!["dev", "edge-*"]);
        assert!(settings.denied_tags[1].matches("edge-2"));
        assert!(settings.require_full_version);
        assert!(settings.require_digest);
        assert!(!settings.require_always_for_digests);
        assert!(settings.exempt_images[0].matches("registry.example.com/a/b:1"));
        let sidecar = &settings.exempt_containers[0];
        assert!(sidecar.name.matches("istio-proxy"));
        assert!(!sidecar.name.matches("istio-pproxy"));
        assert!(sidecar.image.matches("docker.io/istio/proxyv2:1.24.0"));
        assert!(!settings.mutate_templates);
    }

    #[rstest]
    #[case::mutate("mutate", Mode::Mutate)]
    #[case::reject("reject", Mode::Reject)]
    #[case::warn("warn", Mode::Warn)]
    fn modes(#[case] mode: &str, #[case] expected: Mode) {
        let json = format!(r#"{{"mode":"{mode}"}}"#);
        assert_eq!(Settings::from_json(&json).unwrap().mode, expected);
    }

    #[rstest]
    #[case::unknown_key(
        r#"{"mod":"reject"}"#,
        "unknown key \"mod\"; the allowed keys are mode, requireTag"
    )]
    #[case::unknown_mode(r#"{"mode":"block"}"#, "mode: \"block\" is not a mode")]
    #[case::mode_case(r#"{"mode":"Reject"}"#, "mode: \"Reject\" is not a mode")]
    #[case::mode_not_string(r#"{"mode":1}"#, "mode: 1 is not a mode")]
    #[case::bool_as_string(r#"{"requireTag":"true"}"#, "requireTag: must be true or false")]
    #[case::digest_bool(r#"{"requireDigest":0}"#, "requireDigest: must be true or false")]
    #[case::always_bool(
        r#"{"requireAlwaysForDigests":[]}"#,
        "requireAlwaysForDigests: must be true or false"
    )]
    #[case::templates_bool(
        r#"{"mutateTemplates":"no"}"#,
        "mutateTemplates: must be true or false"
    )]
    #[case::full_version_bool(
        r#"{"requireFullVersion":"yes"}"#,
        "requireFullVersion: must be true or false"
    )]
    #[case::tags_not_list(r#"{"deniedTags":"latest"}"#, "deniedTags: must be a list of strings")]
    #[case::tags_not_strings(r#"{"deniedTags":[1]}"#, "deniedTags: must be a list of strings")]
    #[case::invalid_tag(
        r#"{"deniedTags":["ok","bad tag!"]}"#,
        "deniedTags[1]: \"bad tag!\" is not a valid tag"
    )]
    #[case::empty_tag(r#"{"deniedTags":[""]}"#, "deniedTags[0]: \"\" is not a valid tag")]
    #[case::tag_dot(r#"{"deniedTags":[".x"]}"#, "deniedTags[0]: \".x\" is not a valid tag")]
    #[case::pattern_with_slash(
        r#"{"deniedTags":["*","a/*"]}"#,
        "deniedTags[1]: \"a/*\" is not a valid tag pattern, so no tag matches it"
    )]
    #[case::pattern_with_colon(r#"{"deniedTags":["v1:*"]}"#, "deniedTags[0]: \"v1:*\"")]
    #[case::pattern_dash_first(r#"{"deniedTags":["-rc*"]}"#, "deniedTags[0]: \"-rc*\"")]
    #[case::pattern_non_ascii(r#"{"deniedTags":["é*"]}"#, "deniedTags[0]: \"é*\"")]
    #[case::empty_image_pattern(
        r#"{"exemptImages":["a",""]}"#,
        "exemptImages[1]: a pattern must not be empty"
    )]
    #[case::name_only_exemption(
        r#"{"exemptContainers":["istio-proxy"]}"#,
        "exemptContainers[0]: \"istio-proxy\" names a container only, and whoever creates a Pod \
         chooses its container names; name its image too: {name: \"istio-proxy\", image: "
    )]
    #[case::exemption_without_image(
        r#"{"exemptContainers":[{"name":"istio-proxy"}]}"#,
        "exemptContainers[0]: must be {name: PATTERN, image: PATTERN}"
    )]
    #[case::exemption_unknown_field(
        r#"{"exemptContainers":[{"name":"a","image":"b","namespace":"c"}]}"#,
        "exemptContainers[0]: must be {name: PATTERN, image: PATTERN}"
    )]
    #[case::exemption_not_strings(
        r#"{"exemptContainers":[{"name":"a","image":"b"},{"name":1,"image":"b"}]}"#,
        "exemptContainers[1]: must be {name: PATTERN, image: PATTERN}"
    )]
    #[case::exemptions_not_list(
        r#"{"exemptContainers":{"name":"a","image":"b"}}"#,
        "exemptContainers: must be a list of {name: PATTERN, image: PATTERN} entries"
    )]
    #[case::empty_exemption_name(
        r#"{"exemptContainers":[{"name":"","image":"b"}]}"#,
        "exemptContainers[0].name: a pattern must not be empty"
    )]
    #[case::empty_exemption_image(
        r#"{"exemptContainers":[{"name":"a","image":""}]}"#,
        "exemptContainers[0].image: a pattern must not be empty"
    )]
    #[case::images_not_list(r#"{"exemptImages":{}}"#, "exemptImages: must be a list of strings")]
    #[case::duplicate(r#"{"mode":"warn","mode":"reject"}"#, "mode: given more than once")]
    #[case::not_object("[]", "settings must be an object")]
    #[case::string("\"mutate\"", "settings must be an object")]
    #[case::broken("{\"mode\":", "settings are not valid JSON")]
    fn bad_settings_are_named(#[case] json: &str, #[case] expected: &str) {
        let message = errors(json);
        assert!(message.contains(expected), "{message:?} lacks {expected:?}");
    }

    #[rstest]
    #[case::plain("latest", true)]
    #[case::star("*", true)]
    #[case::question_mark("?", true)]
    #[case::star_suffix("*-SNAPSHOT", true)]
    #[case::star_before_dot("*.x", true)]
    #[case::star_before_dash("*-", true)]
    #[case::wildcards_only("*?*", true)]
    #[case::longest_tag(&"a".repeat(128), true)]
    #[case::longest_with_stars(&format!("*{}*", "a".repeat(128)), true)]
    #[case::empty("", false)]
    #[case::dot_first(".x", false)]
    #[case::dash_first("-x", false)]
    #[case::too_long(&"a".repeat(129), false)]
    #[case::too_many_fixed_characters(&"?".repeat(129), false)]
    #[case::star_then_dash_and_127_more(&format!("*-{}", "a".repeat(127)), false)]
    #[case::star_then_dash_and_126_more(&format!("*-{}", "a".repeat(126)), true)]
    #[case::space("a b", false)]
    #[case::at("a@b", false)]
    fn tag_patterns(#[case] pattern: &str, #[case] valid: bool) {
        assert_eq!(is_tag_pattern(pattern), valid, "{pattern:?}");
    }

    #[test]
    fn pinning_is_read() {
        let settings = Settings::from_json(
            r#"{"pinDigests":"all","pinRegistries":["Registry.Example.com/*"],
                "registryFailure":"accept"}"#,
        )
        .unwrap();
        assert_eq!(settings.pin_digests, PinScope::All);
        assert_eq!(settings.registry_failure, RegistryFailure::Accept);
        assert_eq!(settings.pin_registries.len(), 1);
        let defaults = Settings::from_json(r#"{"mode":"reject"}"#).unwrap();
        assert_eq!(defaults.pin_digests, PinScope::Off);
        assert_eq!(defaults.registry_failure, RegistryFailure::Reject);
    }

    #[rstest]
    #[case::unknown_scope(
        r#"{"pinDigests":"templates"}"#,
        "pinDigests: \"templates\" is not one of \"off\", \"pods\", \"all\""
    )]
    #[case::scope_not_string(r#"{"pinDigests":true}"#, "pinDigests: true is not one of")]
    #[case::unknown_failure(
        r#"{"registryFailure":"ignore"}"#,
        "registryFailure: \"ignore\" is not one of \"reject\", \"accept\""
    )]
    #[case::reject_mode(
        r#"{"mode":"reject","pinDigests":"pods"}"#,
        "pinDigests: \"pods\" writes the resolved digest into the object, which only mode \
         \"mutate\" does; with mode \"reject\" set pinDigests to \"off\""
    )]
    #[case::warn_mode(
        r#"{"pinDigests":"all","mode":"warn","pinRegistries":["ghcr.io/acme/*"]}"#,
        "with mode \"warn\" set pinDigests to \"off\""
    )]
    #[case::no_registries(
        r#"{"pinDigests":"pods"}"#,
        "pinDigests: \"pods\" makes the policy server connect to the registry each image names, \
         and whoever writes a Pod chooses the image; list the registries it may ask in \
         pinRegistries, e.g. pinRegistries: [\"registry.example.com/*\", \"ghcr.io/acme/*\"]"
    )]
    #[case::empty_registries(
        r#"{"pinDigests":"all","pinRegistries":[]}"#,
        "list the registries it may ask in pinRegistries"
    )]
    #[case::null_registries(
        r#"{"pinDigests":"all","pinRegistries":null}"#,
        "list the registries it may ask in pinRegistries"
    )]
    #[case::any_registry(
        r#"{"pinDigests":"pods","pinRegistries":["*"]}"#,
        "pinRegistries[0]: \"*\" must start with a registry host and a '/'"
    )]
    #[case::wildcard_host(
        r#"{"pinDigests":"pods","pinRegistries":["ghcr.io/acme/*","*.example.com/*"]}"#,
        "pinRegistries[1]: \"*.example.com/*\" must start with a registry host"
    )]
    #[case::docker_hub_short_name(
        r#"{"pinDigests":"pods","pinRegistries":["library/*"]}"#,
        "pinRegistries[0]: \"library/*\" must start with a registry host"
    )]
    #[case::host_only(
        r#"{"pinDigests":"pods","pinRegistries":["registry.example.com"]}"#,
        "pinRegistries[0]: \"registry.example.com\" must start with a registry host and a '/'"
    )]
    #[case::registries_not_list(
        r#"{"pinDigests":"pods","pinRegistries":"ghcr.io/*"}"#,
        "pinRegistries: must be a list of strings"
    )]
    fn bad_pinning_settings_are_named(#[case] json: &str, #[case] expected: &str) {
        let message = errors(json);
        assert!(message.contains(expected), "{message:?} lacks {expected:?}");
    }

    #[test]
    fn an_invalid_registry_list_is_one_error_not_two() {
        let message = errors(r#"{"pinDigests":"pods","pinRegistries":["*"]}"#);
        assert!(!message.contains("list the registries"), "{message}");
    }

    #[rstest]
    #[case::host_case("registry.example.com/*", "REGISTRY.Example.COM/team/app:1.0", true)]
    #[case::pattern_case("Registry.Example.com/team/*", "registry.example.com/team/app:1", true)]
    #[case::other_team("ghcr.io/acme/*", "ghcr.io/evil/app:1.0", false)]
    #[case::host_prefix("registry.example.com/*", "registry.example.com.evil.io/app:1", false)]
    #[case::host_suffix("example.com/*", "registry.example.com/app:1", false)]
    #[case::port_is_the_host("localhost:5000/*", "localhost:5001/app:1", false)]
    #[case::port("localhost:5000/*", "localhost:5000/app:1", true)]
    #[case::bare_localhost("localhost/*", "localhost/app:1", true)]
    #[case::docker_hub("docker.io/library/*", "docker.io/library/nginx:1.27", true)]
    #[case::path_case_kept("ghcr.io/acme/*", "ghcr.io/ACME/app:1", false)]
    fn registry_patterns_compare_the_host_case_insensitively(
        #[case] pattern: &str,
        #[case] qualified: &str,
        #[case] expected: bool,
    ) {
        let pattern = RegistryPattern::parse(pattern).unwrap();
        assert_eq!(pattern.matches(qualified), expected);
    }

    #[test]
    fn every_problem_is_reported_in_key_order() {
        let message = errors(r#"{"mode":"x","requireTag":1,"typo":true}"#);
        let mode = message.find("mode:").unwrap();
        let tag = message.find("requireTag:").unwrap();
        let typo = message.find("\"typo\"").unwrap();
        assert!(mode < tag && tag < typo, "{message}");
    }

    #[test]
    fn escaped_keys_are_understood() {
        let settings = Settings::from_json(r#"{"mo\u0064e":"reject"}"#).unwrap();
        assert_eq!(settings.mode, Mode::Reject);
    }
}
