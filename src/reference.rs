//! Parses image references exactly as Go's `distribution/reference` `ParseNormalizedNamed` does; hand-written, not regex-based, because the module is instantiated afresh for every request and would build its regex every time.

use std::fmt;

const DEFAULT_DOMAIN: &str = "docker.io";
const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
const OFFICIAL_REPO_PREFIX: &str = "library/";
const DEFAULT_TAG: &str = "latest";
const NAME_TOTAL_LENGTH_MAX: usize = 255;
pub(crate) const TAG_LENGTH_MAX: usize = 128;

/// A reference accepted by the kubelet, with the repository name normalised as Go does it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ImageReference<'a> {
    /// The name is kept in the parts Go joins, so parsing allocates nothing.
    domain: &'a str,
    library: bool,
    remote: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReferenceError {
    /// Go reports "invalid reference format" here; an empty image deserves a plainer message.
    Empty,
    HexIdentifier,
    RepositoryNotLowercase,
    InvalidFormat,
    NameTooLong,
    InvalidDigest,
    InvalidDigestLength,
    UnsupportedDigest,
}

impl fmt::Display for ReferenceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Empty => "image reference is empty",
            Self::HexIdentifier => "repository name cannot be a 64-character hexadecimal string",
            Self::RepositoryNotLowercase => "repository name must be lowercase",
            Self::InvalidFormat => "invalid reference format",
            Self::NameTooLong => "repository name must not be more than 255 characters",
            Self::InvalidDigest => "invalid checksum digest format",
            Self::InvalidDigestLength => "invalid checksum digest length",
            Self::UnsupportedDigest => "unsupported digest algorithm",
        })
    }
}

impl std::error::Error for ReferenceError {}

impl<'a> ImageReference<'a> {
    pub(crate) fn parse(written: &'a str) -> Result<Self, ReferenceError> {
        if written.is_empty() {
            return Err(ReferenceError::Empty);
        }
        if is_hex_identifier(written) {
            return Err(ReferenceError::HexIdentifier);
        }
        let (domain, library, remainder) = split_docker_domain(written);
        let remote = split_at_byte(remainder, b':').map_or(remainder, |(r, _)| r);
        if changes_when_lowercased(remote) {
            return Err(ReferenceError::RepositoryNotLowercase);
        }
        let Some(parts) = match_reference(domain, library, remainder) else {
            return Err(mismatch_error(domain, library, remainder));
        };
        // Since distribution/reference v0.6.0 only the path counts, so a long registry host is fine.
        if parts.path_len > NAME_TOTAL_LENGTH_MAX {
            return Err(ReferenceError::NameTooLong);
        }
        if let Some(digest) = parts.digest {
            validate_digest(digest)?;
        }
        Ok(Self {
            domain,
            library,
            remote: parts.remote,
            tag: parts.tag,
            digest: parts.digest,
        })
    }

    /// normalised repository name, e.g. "docker.io/library/nginx", "localhost:5000/app"
    #[cfg(any(test, feature = "fuzzing"))]
    pub(crate) fn name(&self) -> String {
        let mut name = String::new();
        self.push_name(&mut name);
        name
    }

    fn push_name(&self, out: &mut String) {
        out.push_str(self.domain);
        out.push('/');
        if self.library {
            out.push_str(OFFICIAL_REPO_PREFIX);
        }
        out.push_str(self.remote);
    }

    pub(crate) fn tag(&self) -> Option<&'a str> {
        self.tag
    }

    pub(crate) fn digest(&self) -> Option<&'a str> {
        self.digest
    }

    /// name[:tag][@digest], with ":latest" added when there is neither tag nor digest (Go's TagNameOnly): "nginx" → "docker.io/library/nginx:latest"
    pub(crate) fn fully_qualified(&self) -> String {
        let tag = match (self.tag, self.digest) {
            (None, None) => Some(DEFAULT_TAG),
            (tag, _) => tag,
        };
        let extra = tag.map_or(0, |t| t.len() + 1) + self.digest.map_or(0, |d| d.len() + 1);
        let name_len = self.domain.len() + 1 + OFFICIAL_REPO_PREFIX.len() + self.remote.len();
        let mut out = String::with_capacity(name_len + extra);
        self.push_name(&mut out);
        if let Some(tag) = tag {
            out.push(':');
            out.push_str(tag);
        }
        if let Some(digest) = self.digest {
            out.push('@');
            out.push_str(digest);
        }
        out
    }
}

/// Why the policy server's registry client, which parses references with oci-spec, would
/// read a reference this parser accepts as another one, or not at all (the two known
/// disagreements between Go's grammar and oci-spec that leave ours valid).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EngineMisreading {
    /// `[fd00::1]:5000/app`: oci-spec has no IPv6 hosts.
    BracketedHost,
    /// `Registry/app`: Go takes an upper-case first element for a host, oci-spec for a Docker
    /// Hub namespace.
    UppercaseHost,
}

impl ImageReference<'_> {
    pub(crate) fn engine_misreading(&self) -> Option<EngineMisreading> {
        if self.domain.starts_with('[') {
            Some(EngineMisreading::BracketedHost)
        } else if !is_host_form(self.domain) {
            Some(EngineMisreading::UppercaseHost)
        } else {
            None
        }
    }
}

/// a tag as the grammar allows it: [\w][\w.-]{0,127}
pub(crate) fn is_valid_tag(tag: &str) -> bool {
    let mut bytes = tag.bytes();
    bytes.next().is_some_and(is_word) && tag.len() <= TAG_LENGTH_MAX && bytes.all(is_tag_char)
}

/// A character a tag may hold after its first.
pub(crate) fn is_tag_char(b: u8) -> bool {
    is_word(b) || b == b'.' || b == b'-'
}

/// Go's `\w` is ASCII-only, unlike Rust's `char::is_alphanumeric`.
pub(crate) fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

fn is_hex_identifier(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(is_lower_hex)
}

fn is_lower_hex(b: u8) -> bool {
    b.is_ascii_digit() || (b'a'..=b'f').contains(&b)
}

/// Go's `splitDockerDomain`, returning `(domain, needs "library/" prefix, remainder)`; keeping the
/// prefix as a flag lets the remainder stay a borrow of the input.
fn split_docker_domain(written: &str) -> (&str, bool, &str) {
    let Some((maybe_domain, rest)) = split_at_byte(written, b'/') else {
        return (DEFAULT_DOMAIN, true, written);
    };
    let (domain, remainder) = if maybe_domain == LEGACY_DEFAULT_DOMAIN {
        (DEFAULT_DOMAIN, rest)
    } else if is_host_form(maybe_domain) || changes_when_lowercased(maybe_domain) {
        (maybe_domain, rest)
    } else {
        return (DEFAULT_DOMAIN, false, written);
    };
    let library = domain == DEFAULT_DOMAIN && position(remainder, b'/').is_none();
    (domain, library, remainder)
}

/// Go's `strings.ToLower(s) != s`, which maps runes with Unicode simple case mapping.
fn changes_when_lowercased(s: &str) -> bool {
    for b in s.bytes() {
        if !b.is_ascii() {
            return non_ascii_changes_when_lowercased(s);
        }
        if b.is_ascii_uppercase() {
            return true;
        }
    }
    false
}

#[cold]
#[inline(never)]
fn non_ascii_changes_when_lowercased(s: &str) -> bool {
    s.chars().any(|c| go_to_lower(c) != c)
}

/// Where `byte` first is in `s`. A byte loop, as everywhere in this parser: `str::split` and
/// its kin search with `memchr`, whose set-up costs more than a reference's few bytes.
fn position(s: &str, byte: u8) -> Option<usize> {
    s.bytes().position(|b| b == byte)
}

/// `s` around the first `byte`, which is ASCII (so both sides are `str`s).
fn split_at_byte(s: &str, byte: u8) -> Option<(&str, &str)> {
    let at = position(s, byte)?;
    Some((s.get(..at)?, s.get(at + 1..)?))
}

/// Whether a reference's first element names a registry host by its form: a `.` or `:` in it,
/// or `localhost` (Go also takes one with an upper-case letter for a host).
pub(crate) fn is_host_form(element: &str) -> bool {
    element.bytes().any(|b| b == b'.' || b == b':') || element == "localhost"
}

/// Rust's full mapping only differs from Go's simple one for U+0130, whose first char is Go's answer.
fn go_to_lower(c: char) -> char {
    if c.is_ascii() {
        c.to_ascii_lowercase()
    } else {
        c.to_lowercase().next().unwrap_or(c)
    }
}

/// Go's `Parse` tells an uppercase repository apart by matching the lowercased input again.
fn mismatch_error(domain: &str, library: bool, remainder: &str) -> ReferenceError {
    if changes_when_lowercased(domain) || changes_when_lowercased(remainder) {
        let domain: String = domain.chars().map(go_to_lower).collect();
        let remainder: String = remainder.chars().map(go_to_lower).collect();
        if match_reference(&domain, library, &remainder).is_some() {
            return ReferenceError::RepositoryNotLowercase;
        }
    }
    ReferenceError::InvalidFormat
}

struct Parts<'r> {
    /// the remainder without tag and digest
    remote: &'r str,
    tag: Option<&'r str>,
    digest: Option<&'r str>,
    /// length of Go's `Path()`: the name without its registry host
    path_len: usize,
}

/// Go's anchored `ReferenceRegexp` applied to `domain + "/" + ["library/"] + remainder`.
///
/// The grammar lets no '@' into name or tag and no ':' into a path component or tag, and the
/// registry can only be the first '/'-separated element; so splitting at those characters finds
/// the only possible match, in one pass, with no backtracking.
fn match_reference<'r>(domain: &str, library: bool, remainder: &'r str) -> Option<Parts<'r>> {
    let (name_and_tag, digest) = match split_at_byte(remainder, b'@') {
        Some((name_and_tag, digest)) => (name_and_tag, Some(digest)),
        None => (remainder, None),
    };
    if digest.is_some_and(|d| !is_digest_syntax(d)) {
        return None;
    }
    let last_element = match name_and_tag.bytes().rposition(|b| b == b'/') {
        Some(slash) => name_and_tag.get(slash + 1..)?,
        None => name_and_tag,
    };
    let tag = split_at_byte(last_element, b':').map(|(_, t)| t);
    if tag.is_some_and(|t| !is_valid_tag(t)) {
        return None;
    }
    let remote_len = name_and_tag
        .len()
        .checked_sub(tag.map_or(0, |t| t.len() + 1))?;
    let remote = name_and_tag.get(..remote_len)?;
    if !is_path(remote) {
        return None;
    }
    let library_len = if library {
        OFFICIAL_REPO_PREFIX.len()
    } else {
        0
    };
    let mut path_len = library_len + remote.len();
    if !is_domain_and_port(domain) {
        // The first element then only matches as part of the path, e.g. "a_b.c/app" (it
        // holds no '/', so it is one component).
        if !is_path(domain) {
            return None;
        }
        path_len += domain.len() + 1;
    }
    Some(Parts {
        remote,
        tag,
        digest,
        path_len,
    })
}

/// Path components joined by '/', each `[a-z0-9]+ (separator [a-z0-9]+)*` with separator
/// `[._] | __ | -+`.
fn is_path(s: &str) -> bool {
    #[derive(PartialEq)]
    enum State {
        Start,
        Alnum,
        Separator,
        Underscore,
        Dashes,
    }
    let mut state = State::Start;
    for b in s.bytes() {
        state = match (state, b) {
            (_, b'a'..=b'z' | b'0'..=b'9') => State::Alnum,
            (State::Alnum, b'.') => State::Separator,
            (State::Alnum, b'_') => State::Underscore,
            (State::Underscore, b'_') => State::Separator,
            (State::Alnum | State::Dashes, b'-') => State::Dashes,
            (State::Alnum, b'/') => State::Start,
            _ => return false,
        };
    }
    state == State::Alnum
}

/// `host [":" [0-9]+]` where host is a domain name or a bracketed IPv6 address.
fn is_domain_and_port(s: &str) -> bool {
    let (host_ok, port) = if let Some(bracketed) = s.strip_prefix('[') {
        let Some((address, after)) = split_at_byte(bracketed, b']') else {
            return false;
        };
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(port) => Some(port),
                None => return false,
            },
        };
        let address_ok =
            !address.is_empty() && address.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        (address_ok, port)
    } else {
        match split_at_byte(s, b':') {
            Some((host, port)) => (is_domain_name(host), Some(port)),
            None => (is_domain_name(s), None),
        }
    };
    host_ok && port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Labels joined by '.', each `[A-Za-z0-9]` or `[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]`.
fn is_domain_name(s: &str) -> bool {
    #[derive(PartialEq)]
    enum State {
        Start,
        Alnum,
        Dash,
    }
    let mut state = State::Start;
    for b in s.bytes() {
        state = match (state, b) {
            (_, b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9') => State::Alnum,
            (State::Alnum | State::Dash, b'-') => State::Dash,
            (State::Alnum, b'.') => State::Start,
            _ => return false,
        };
    }
    state == State::Alnum
}

/// The reference grammar's digest: `[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)* ":" [0-9a-fA-F]{32,}`.
fn is_digest_syntax(s: &str) -> bool {
    let Some((algorithm, encoded)) = split_at_byte(s, b':') else {
        return false;
    };
    encoded.len() >= 32
        && encoded.bytes().all(|b| b.is_ascii_hexdigit())
        && is_algorithm(
            algorithm,
            u8::is_ascii_alphabetic,
            u8::is_ascii_alphanumeric,
        )
}

/// go-digest v1.0.0 `Digest.Validate`, with sha256, sha384 and sha512 as the available algorithms.
pub(crate) fn validate_digest(digest: &str) -> Result<(), ReferenceError> {
    let (algorithm, encoded) = split_at_byte(digest, b':').ok_or(ReferenceError::InvalidDigest)?;
    let expected_len = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        // go-digest only calls an algorithm unsupported if its own, stricter, grammar accepts it.
        _ if is_go_digest_algorithm(algorithm) => return Err(ReferenceError::UnsupportedDigest),
        _ => return Err(ReferenceError::InvalidDigest),
    };
    if encoded.len() != expected_len {
        return Err(ReferenceError::InvalidDigestLength);
    }
    if !encoded.bytes().all(is_lower_hex) {
        return Err(ReferenceError::InvalidDigest);
    }
    Ok(())
}

/// go-digest's `[a-z0-9]+(?:[.+_-][a-z0-9]+)*`; its encoded-part class is a superset of hex.
fn is_go_digest_algorithm(s: &str) -> bool {
    let lower_or_digit = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    is_algorithm(s, lower_or_digit, lower_or_digit)
}

/// Components joined by one of `-_+.`, each a `first` byte, then `rest` bytes.
fn is_algorithm(s: &str, first: impl Fn(&u8) -> bool, rest: impl Fn(&u8) -> bool) -> bool {
    let mut in_component = false;
    for b in s.bytes() {
        let separator = matches!(b, b'-' | b'_' | b'+' | b'.');
        let fits = match (separator, in_component) {
            (true, started) => started,
            (false, true) => rest(&b),
            (false, false) => first(&b),
        };
        if !fits {
            return false;
        }
        in_component = !separator;
    }
    in_component
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::distribution::{ParseError, Reference};
    use proptest::prelude::*;
    use proptest::test_runner::Config;
    use rstest::rstest;

    type Expected<'e> =
        Result<(&'e str, Option<&'e str>, Option<&'e str>, &'e str), ReferenceError>;

    /// Expands `{xN}` into N filler characters so long or hexadecimal inputs stay readable:
    /// `h`/`H` lower/upper hexadecimal, `a` the letter a, `t` the letter T.
    fn expand(template: &str) -> String {
        let mut out = String::with_capacity(template.len());
        let mut rest = template;
        while let Some((before, after)) = rest.split_once('{') {
            out.push_str(before);
            let (token, after) = after.split_once('}').expect("unclosed placeholder");
            let (kind, count) = token.split_at(1);
            let count: usize = count.parse().expect("placeholder length");
            let filler = (0..count).map(|i| match kind {
                "h" => char::from(b"0123456789abcdef"[i % 16]),
                "H" => char::from(b"0123456789ABCDEF"[i % 16]),
                "a" => 'a',
                "t" => 'T',
                other => panic!("unknown placeholder {other}"),
            });
            out.extend(filler);
            rest = after;
        }
        out.push_str(rest);
        out
    }

    fn outcome(
        input: &str,
    ) -> Result<(String, Option<String>, Option<String>, String), ReferenceError> {
        ImageReference::parse(input).map(|r| {
            (
                r.name().to_owned(),
                r.tag().map(str::to_owned),
                r.digest().map(str::to_owned),
                r.fully_qualified(),
            )
        })
    }

    #[rstest]
    // Docker Hub normalisation
    #[case::bare("nginx", Ok(("docker.io/library/nginx", None, None, "docker.io/library/nginx:latest")))]
    #[case::bare_tag("nginx:1.25", Ok(("docker.io/library/nginx", Some("1.25"), None, "docker.io/library/nginx:1.25")))]
    #[case::library("library/nginx", Ok(("docker.io/library/nginx", None, None, "docker.io/library/nginx:latest")))]
    #[case::namespace("foo/bar", Ok(("docker.io/foo/bar", None, None, "docker.io/foo/bar:latest")))]
    #[case::docker_io("docker.io/nginx", Ok(("docker.io/library/nginx", None, None, "docker.io/library/nginx:latest")))]
    #[case::docker_io_full("docker.io/library/nginx:latest", Ok(("docker.io/library/nginx", Some("latest"), None, "docker.io/library/nginx:latest")))]
    #[case::index_docker_io("index.docker.io/nginx", Ok(("docker.io/library/nginx", None, None, "docker.io/library/nginx:latest")))]
    #[case::index_docker_io_namespace("index.docker.io/foo/bar:1", Ok(("docker.io/foo/bar", Some("1"), None, "docker.io/foo/bar:1")))]
    #[case::dotted_name_without_slash("foo.com", Ok(("docker.io/library/foo.com", None, None, "docker.io/library/foo.com:latest")))]
    #[case::dotted_name_with_tag("test.com:5000", Ok(("docker.io/library/test.com", Some("5000"), None, "docker.io/library/test.com:5000")))]
    #[case::deep_path("foo/bar/baz/qux", Ok(("docker.io/foo/bar/baz/qux", None, None, "docker.io/foo/bar/baz/qux:latest")))]
    #[case::sixty_three_hex("{h63}", Ok(("docker.io/library/{h63}", None, None, "docker.io/library/{h63}:latest")))]
    #[case::sixty_four_hex_with_tag("{h64}:v1", Ok(("docker.io/library/{h64}", Some("v1"), None, "docker.io/library/{h64}:v1")))]
    // registries
    #[case::registry("ghcr.io/owner/app:v1", Ok(("ghcr.io/owner/app", Some("v1"), None, "ghcr.io/owner/app:v1")))]
    #[case::registry_port("example.com:5000/team/app", Ok(("example.com:5000/team/app", None, None, "example.com:5000/team/app:latest")))]
    #[case::registry_bare_port("example:5000/app", Ok(("example:5000/app", None, None, "example:5000/app:latest")))]
    #[case::localhost("localhost/app", Ok(("localhost/app", None, None, "localhost/app:latest")))]
    #[case::localhost_port_is_not_a_tag("localhost:5000/app", Ok(("localhost:5000/app", None, None, "localhost:5000/app:latest")))]
    #[case::localhost_port_and_tag("localhost:5000/app:v1", Ok(("localhost:5000/app", Some("v1"), None, "localhost:5000/app:v1")))]
    #[case::bare_localhost("localhost", Ok(("docker.io/library/localhost", None, None, "docker.io/library/localhost:latest")))]
    #[case::bare_localhost_port_is_a_tag("localhost:5000", Ok(("docker.io/library/localhost", Some("5000"), None, "docker.io/library/localhost:5000")))]
    #[case::ipv4("10.0.0.1/app", Ok(("10.0.0.1/app", None, None, "10.0.0.1/app:latest")))]
    #[case::ipv4_port("127.0.0.1:5000/app:v1", Ok(("127.0.0.1:5000/app", Some("v1"), None, "127.0.0.1:5000/app:v1")))]
    #[case::ipv6_port_tag("[::1]:5000/app:v1", Ok(("[::1]:5000/app", Some("v1"), None, "[::1]:5000/app:v1")))]
    #[case::ipv6("[2001:DB8::1]/ns/app", Ok(("[2001:DB8::1]/ns/app", None, None, "[2001:DB8::1]/ns/app:latest")))]
    #[case::ipv6_zone("[fe80::1%eth0]/app", Err(ReferenceError::InvalidFormat))]
    #[case::ipv6_empty("[]/app", Err(ReferenceError::InvalidFormat))]
    #[case::ipv6_bad_hex("[g::1]/app", Err(ReferenceError::InvalidFormat))]
    #[case::ipv6_empty_port("[::1]:/app", Err(ReferenceError::InvalidFormat))]
    #[case::ipv6_junk_after("[::1]x/app", Err(ReferenceError::InvalidFormat))]
    #[case::ipv6_unclosed("[::1/app", Err(ReferenceError::InvalidFormat))]
    #[case::ipv6_without_path("[::1]:5000", Err(ReferenceError::InvalidFormat))]
    #[case::punycode("xn--n3h.com/myimage:xn--n3h.com", Ok(("xn--n3h.com/myimage", Some("xn--n3h.com"), None, "xn--n3h.com/myimage:xn--n3h.com")))]
    #[case::uppercase_domain("EXAMPLE.com/app", Ok(("EXAMPLE.com/app", None, None, "EXAMPLE.com/app:latest")))]
    #[case::uppercase_first_element_is_a_domain("Foo/bar", Ok(("Foo/bar", None, None, "Foo/bar:latest")))]
    #[case::uppercase_localhost("LOCALHOST/app", Ok(("LOCALHOST/app", None, None, "LOCALHOST/app:latest")))]
    #[case::invalid_host_becomes_path("a_b.c/foo", Ok(("a_b.c/foo", None, None, "a_b.c/foo:latest")))]
    #[case::non_numeric_port("example.com:abc/app", Err(ReferenceError::InvalidFormat))]
    #[case::empty_port("example.com:/app", Err(ReferenceError::InvalidFormat))]
    #[case::two_ports("example.com:1:2/app", Err(ReferenceError::InvalidFormat))]
    #[case::domain_leading_dash("-example.com/app", Err(ReferenceError::InvalidFormat))]
    #[case::domain_trailing_dash("example-.com/app", Err(ReferenceError::InvalidFormat))]
    #[case::domain_empty_label("example..com/app", Err(ReferenceError::InvalidFormat))]
    // path separators
    #[case::double_underscore("a__b", Ok(("docker.io/library/a__b", None, None, "docker.io/library/a__b:latest")))]
    #[case::triple_underscore("a___b", Err(ReferenceError::InvalidFormat))]
    #[case::dashes("a--b", Ok(("docker.io/library/a--b", None, None, "docker.io/library/a--b:latest")))]
    #[case::dot_underscore_mix("a.b_c-d", Ok(("docker.io/library/a.b_c-d", None, None, "docker.io/library/a.b_c-d:latest")))]
    #[case::dash_dot("a-.b", Err(ReferenceError::InvalidFormat))]
    #[case::dot_dash("a.-b", Err(ReferenceError::InvalidFormat))]
    #[case::double_dot("a..b", Err(ReferenceError::InvalidFormat))]
    #[case::dot_underscore("a._b", Err(ReferenceError::InvalidFormat))]
    #[case::leading_separator("-a", Err(ReferenceError::InvalidFormat))]
    #[case::trailing_separator("a_", Err(ReferenceError::InvalidFormat))]
    #[case::leading_slash("/app", Err(ReferenceError::InvalidFormat))]
    #[case::trailing_slash("app/", Err(ReferenceError::InvalidFormat))]
    #[case::double_slash("a//b", Err(ReferenceError::InvalidFormat))]
    #[case::registry_only("example.com/", Err(ReferenceError::InvalidFormat))]
    // uppercase
    #[case::uppercase_repository("NGINX:1", Err(ReferenceError::RepositoryNotLowercase))]
    #[case::uppercase_path("foo/Bar", Err(ReferenceError::RepositoryNotLowercase))]
    #[case::uppercase_path_after_registry(
        "example.com/Foo",
        Err(ReferenceError::RepositoryNotLowercase)
    )]
    #[case::uppercase_invalid_host("Foo_x/bar", Err(ReferenceError::RepositoryNotLowercase))]
    #[case::uppercase_hex_name("{H64}", Err(ReferenceError::RepositoryNotLowercase))]
    #[case::non_ascii_uppercase("Ñginx", Err(ReferenceError::RepositoryNotLowercase))]
    // Go's strings.ToLower turns the Kelvin sign into 'k', so the lowercased retry matches.
    #[case::kelvin_sign_tag("nginx:\u{212A}", Err(ReferenceError::RepositoryNotLowercase))]
    // tags
    #[case::uppercase_tag("nginx:Latest_TAG", Ok(("docker.io/library/nginx", Some("Latest_TAG"), None, "docker.io/library/nginx:Latest_TAG")))]
    #[case::underscore_first_tag("nginx:_x", Ok(("docker.io/library/nginx", Some("_x"), None, "docker.io/library/nginx:_x")))]
    #[case::dot_first_tag("nginx:.x", Err(ReferenceError::InvalidFormat))]
    #[case::dash_first_tag("nginx:-x", Err(ReferenceError::InvalidFormat))]
    #[case::tag_128("nginx:{t128}", Ok(("docker.io/library/nginx", Some("{t128}"), None, "docker.io/library/nginx:{t128}")))]
    #[case::tag_129("nginx:{t129}", Err(ReferenceError::InvalidFormat))]
    #[case::empty_tag("app:", Err(ReferenceError::InvalidFormat))]
    #[case::tag_only(":tag", Err(ReferenceError::InvalidFormat))]
    #[case::two_tags("app:a:b", Err(ReferenceError::InvalidFormat))]
    #[case::tag_with_slash("app:a/b", Err(ReferenceError::InvalidFormat))]
    #[case::non_ascii_tag("nginx:tåg", Err(ReferenceError::InvalidFormat))]
    // digests
    #[case::sha256("app@sha256:{h64}", Ok(("docker.io/library/app", None, Some("sha256:{h64}"), "docker.io/library/app@sha256:{h64}")))]
    #[case::sha384("app@sha384:{h96}", Ok(("docker.io/library/app", None, Some("sha384:{h96}"), "docker.io/library/app@sha384:{h96}")))]
    #[case::sha512("app@sha512:{h128}", Ok(("docker.io/library/app", None, Some("sha512:{h128}"), "docker.io/library/app@sha512:{h128}")))]
    #[case::tag_and_digest("app:1.0@sha256:{h64}", Ok(("docker.io/library/app", Some("1.0"), Some("sha256:{h64}"), "docker.io/library/app:1.0@sha256:{h64}")))]
    #[case::everything("example.com:5000/team/app:1.0@sha256:{h64}", Ok(("example.com:5000/team/app", Some("1.0"), Some("sha256:{h64}"), "example.com:5000/team/app:1.0@sha256:{h64}")))]
    #[case::sha1("app@sha1:{h40}", Err(ReferenceError::UnsupportedDigest))]
    #[case::md5("app@md5:{h32}", Err(ReferenceError::UnsupportedDigest))]
    #[case::multi_algorithm("app@sha256+b64:{h64}", Err(ReferenceError::UnsupportedDigest))]
    #[case::sha256_63("app@sha256:{h63}", Err(ReferenceError::InvalidDigestLength))]
    #[case::sha256_65("app@sha256:{h65}", Err(ReferenceError::InvalidDigestLength))]
    #[case::sha512_with_sha256_length("app@sha512:{h64}", Err(ReferenceError::InvalidDigestLength))]
    #[case::uppercase_hex("nginx@sha256:{H64}", Err(ReferenceError::InvalidDigest))]
    #[case::uppercase_algorithm_with_tag("app:v1@SHA256:{h64}", Err(ReferenceError::InvalidDigest))]
    // Go's lowercase check covers everything up to the first ':', here the algorithm too.
    #[case::uppercase_algorithm("app@SHA256:{h64}", Err(ReferenceError::RepositoryNotLowercase))]
    #[case::short_hex("app@sha256:{h31}", Err(ReferenceError::InvalidFormat))]
    #[case::non_hex("app@sha256:{h60}zzzz", Err(ReferenceError::InvalidFormat))]
    #[case::algorithm_starts_with_digit("app@1sha:{h64}", Err(ReferenceError::InvalidFormat))]
    #[case::digest_without_hex("app@sha256", Err(ReferenceError::InvalidFormat))]
    #[case::empty_digest("app@", Err(ReferenceError::InvalidFormat))]
    #[case::tag_then_empty_digest("app:v1@", Err(ReferenceError::InvalidFormat))]
    #[case::digest_only("@sha256:{h64}", Err(ReferenceError::InvalidFormat))]
    #[case::two_digests("app@sha256:{h64}@sha256:{h64}", Err(ReferenceError::InvalidFormat))]
    #[case::double_at("app@@sha256:{h64}", Err(ReferenceError::InvalidFormat))]
    #[case::digest_before_tag("app@sha256:{h64}:v1", Err(ReferenceError::InvalidFormat))]
    // degenerate input
    #[case::empty("", Err(ReferenceError::Empty))]
    #[case::hex_identifier("{h64}", Err(ReferenceError::HexIdentifier))]
    #[case::leading_space(" nginx", Err(ReferenceError::InvalidFormat))]
    #[case::trailing_space("nginx ", Err(ReferenceError::InvalidFormat))]
    #[case::inner_space("ngi nx", Err(ReferenceError::InvalidFormat))]
    #[case::trailing_newline("nginx\n", Err(ReferenceError::InvalidFormat))]
    #[case::tab_in_tag("nginx:1\t", Err(ReferenceError::InvalidFormat))]
    #[case::nul("nginx\0", Err(ReferenceError::InvalidFormat))]
    #[case::non_ascii("ngïnx", Err(ReferenceError::InvalidFormat))]
    #[case::emoji_registry("🐳.com/app", Err(ReferenceError::InvalidFormat))]
    #[case::only_slash("/", Err(ReferenceError::InvalidFormat))]
    #[case::only_colon(":", Err(ReferenceError::InvalidFormat))]
    #[case::only_at("@", Err(ReferenceError::InvalidFormat))]
    // length: since v0.6.0 only the path (including "library/") counts, not the registry
    #[case::path_255_docker_hub("{a247}", Ok(("docker.io/library/{a247}", None, None, "docker.io/library/{a247}:latest")))]
    #[case::path_256_docker_hub("{a248}", Err(ReferenceError::NameTooLong))]
    #[case::path_255_registry("localhost:5000/{a255}", Ok(("localhost:5000/{a255}", None, None, "localhost:5000/{a255}:latest")))]
    #[case::path_256_registry("localhost:5000/{a256}", Err(ReferenceError::NameTooLong))]
    #[case::long_registry_not_counted("{a300}.com/{a255}", Ok(("{a300}.com/{a255}", None, None, "{a300}.com/{a255}:latest")))]
    #[case::path_255_invalid_host("a_b.c/{a249}", Ok(("a_b.c/{a249}", None, None, "a_b.c/{a249}:latest")))]
    #[case::path_256_invalid_host("a_b.c/{a250}", Err(ReferenceError::NameTooLong))]
    #[case::tag_not_counted("{a247}:{t128}", Ok(("docker.io/library/{a247}", Some("{t128}"), None, "docker.io/library/{a247}:{t128}")))]
    // a too-long name is reported before a bad digest, as in Go
    #[case::length_before_digest("{a248}@sha256:{H64}", Err(ReferenceError::NameTooLong))]
    fn parses_like_go(#[case] input: &str, #[case] expected: Expected<'_>) {
        let expected = expected.map(|(name, tag, digest, qualified)| {
            (
                expand(name),
                tag.map(expand),
                digest.map(expand),
                expand(qualified),
            )
        });
        assert_eq!(outcome(&expand(input)), expected, "input {input:?}");
    }

    #[rstest]
    #[case::single_word("a", true)]
    #[case::underscore("_", true)]
    #[case::full_alphabet("Az09_.-", true)]
    #[case::max_length("{t128}", true)]
    #[case::too_long("{t129}", false)]
    #[case::empty("", false)]
    #[case::leading_dot(".a", false)]
    #[case::leading_dash("-a", false)]
    #[case::colon("a:b", false)]
    #[case::non_ascii_word("é", false)]
    #[case::space("a b", false)]
    fn tag_grammar(#[case] tag: &str, #[case] valid: bool) {
        assert_eq!(is_valid_tag(&expand(tag)), valid, "tag {tag:?}");
    }

    #[rstest]
    #[case::empty(ReferenceError::Empty, "image reference is empty")]
    #[case::uppercase(
        ReferenceError::RepositoryNotLowercase,
        "repository name must be lowercase"
    )]
    #[case::format(ReferenceError::InvalidFormat, "invalid reference format")]
    fn error_texts(#[case] error: ReferenceError, #[case] text: &str) {
        assert_eq!(error.to_string(), text);
    }

    #[test]
    fn huge_inputs_are_refused_quickly() {
        let cases = [
            "a".repeat(1 << 20),
            "a-".repeat(1 << 19),
            format!("{}b", "a/".repeat(1 << 19)),
            format!("app:{}", "1".repeat(1 << 20)),
            format!("app@sha256:{}", "f".repeat(1 << 20)),
            format!("{}x", "[".repeat(1 << 20)),
            format!("{}/app", "a.".repeat(1 << 19)),
        ];
        for input in &cases {
            assert!(ImageReference::parse(input).is_err());
        }
    }

    /// Where oci-spec 0.10 and Go's ParseNormalizedNamed are known to part ways; Go is the
    /// reference because it is what the kubelet runs.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Known {
        Ipv6Host,
        UppercaseNamespace,
        HexIdentifier,
        UppercaseDigestHex,
        UnicodeTag,
        HostlessPathLength,
    }

    fn oci_name(theirs: &Reference) -> String {
        format!("{}/{}", theirs.registry(), theirs.repository())
    }

    fn same_tag_and_digest(ours: &ImageReference<'_>, theirs: &Reference) -> bool {
        // oci-spec fills in "latest" at parse time, Go only in TagNameOnly.
        let implied = ours.digest().is_none().then_some(DEFAULT_TAG);
        ours.tag().or(implied) == theirs.tag() && ours.digest() == theirs.digest()
    }

    fn ipv6_host(
        ours: &Result<ImageReference<'_>, ReferenceError>,
        theirs: &Result<Reference, ParseError>,
    ) -> bool {
        matches!((ours, theirs), (Ok(o), Err(ParseError::ReferenceInvalidFormat)) if o.name().starts_with('['))
    }

    fn uppercase_namespace(
        input: &str,
        ours: &Result<ImageReference<'_>, ReferenceError>,
        theirs: &Result<Reference, ParseError>,
    ) -> bool {
        let (Some((first, _)), Ok(o)) = (input.split_once('/'), ours) else {
            return false;
        };
        let go_took_it_as_registry = first.bytes().any(|b| b.is_ascii_uppercase())
            && !first.contains(['.', ':'])
            && o.name()
                .strip_prefix(first)
                .is_some_and(|rest| rest.starts_with('/'));
        go_took_it_as_registry
            && match theirs {
                Ok(t) => {
                    t.registry() == DEFAULT_DOMAIN
                        && t.repository() == o.name()
                        && same_tag_and_digest(o, t)
                }
                Err(e) => *e == ParseError::NameTooLong && o.name().len() > NAME_TOTAL_LENGTH_MAX,
            }
    }

    fn hex_identifier(
        ours: &Result<ImageReference<'_>, ReferenceError>,
        theirs: &Result<Reference, ParseError>,
    ) -> bool {
        matches!((ours, theirs), (Err(ReferenceError::HexIdentifier), Ok(_)))
    }

    fn uppercase_digest_hex(
        ours: &Result<ImageReference<'_>, ReferenceError>,
        theirs: &Result<Reference, ParseError>,
    ) -> bool {
        let (Err(ReferenceError::InvalidDigest), Ok(t)) = (ours, theirs) else {
            return false;
        };
        t.digest()
            .and_then(|d| d.split_once(':'))
            .is_some_and(|(algorithm, encoded)| {
                matches!(algorithm, "sha256" | "sha384" | "sha512")
                    && encoded.bytes().any(|b| b.is_ascii_uppercase())
            })
    }

    fn unicode_tag(
        ours: &Result<ImageReference<'_>, ReferenceError>,
        theirs: &Result<Reference, ParseError>,
    ) -> bool {
        matches!(
            (ours, theirs),
            (Err(ReferenceError::InvalidFormat | ReferenceError::RepositoryNotLowercase), Ok(t))
                if t.tag().is_some_and(|tag| !tag.is_ascii())
        )
    }

    fn hostless_path_length(
        ours: &Result<ImageReference<'_>, ReferenceError>,
        theirs: &Result<Reference, ParseError>,
    ) -> bool {
        matches!(
            (ours, theirs),
            (Err(ReferenceError::NameTooLong), Ok(t))
                if !is_domain_and_port(t.registry()) && oci_name(t).len() > NAME_TOTAL_LENGTH_MAX
        )
    }

    /// `Ok(None)` when both parsers agree, `Ok(Some(_))` for a known disagreement, `Err` otherwise.
    fn compare_with_oci(input: &str) -> Result<Option<Known>, String> {
        let ours = ImageReference::parse(input);
        let theirs = Reference::try_from(input);
        let agree = match (&ours, &theirs) {
            (Ok(o), Ok(t)) => o.name() == oci_name(t) && same_tag_and_digest(o, t),
            (Err(_), Err(_)) => true,
            _ => false,
        };
        if agree {
            return Ok(None);
        }
        let known = [
            (Known::Ipv6Host, ipv6_host(&ours, &theirs)),
            (
                Known::UppercaseNamespace,
                uppercase_namespace(input, &ours, &theirs),
            ),
            (Known::HexIdentifier, hex_identifier(&ours, &theirs)),
            (
                Known::UppercaseDigestHex,
                uppercase_digest_hex(&ours, &theirs),
            ),
            (Known::UnicodeTag, unicode_tag(&ours, &theirs)),
            (
                Known::HostlessPathLength,
                hostless_path_length(&ours, &theirs),
            ),
        ];
        known
            .iter()
            .find(|(_, applies)| *applies)
            .map(|(kind, _)| Some(*kind))
            .ok_or_else(|| format!("{input:?}: ours {ours:?}, oci-spec {theirs:?}"))
    }

    #[rstest]
    #[case::agree("example.com:5000/team/app:1.0@sha256:{h64}", None)]
    #[case::agree_on_refusal("NGINX:1", None)]
    #[case::ipv6("[::1]:5000/app", Some(Known::Ipv6Host))]
    #[case::uppercase_namespace("Foo/bar:v1", Some(Known::UppercaseNamespace))]
    #[case::uppercase_namespace_too_long_for_oci("Foo/{a253}", Some(Known::UppercaseNamespace))]
    #[case::hex_identifier("{h64}", Some(Known::HexIdentifier))]
    #[case::uppercase_digest_hex("app@sha256:{H64}", Some(Known::UppercaseDigestHex))]
    #[case::unicode_tag("app:é", Some(Known::UnicodeTag))]
    #[case::hostless_path_length("a_b.c/{a250}", Some(Known::HostlessPathLength))]
    fn known_disagreements_have_witnesses(#[case] input: &str, #[case] known: Option<Known>) {
        assert_eq!(compare_with_oci(&expand(input)), Ok(known));
    }

    #[rstest]
    #[case::ipv6("[fd00::1]:5000/team/app:1.0", Some(EngineMisreading::BracketedHost))]
    #[case::uppercase_namespace("Foo/bar:v1", Some(EngineMisreading::UppercaseHost))]
    #[case::uppercase_dotted_host("Registry.Example.com/app:1", None)]
    #[case::localhost_port("localhost:5000/app", None)]
    #[case::docker_hub("nginx:1.27", None)]
    #[case::ipv4("127.0.0.1:5000/app:1.0", None)]
    fn misreadings_are_named(#[case] input: &str, #[case] expected: Option<EngineMisreading>) {
        let reference = ImageReference::parse(input).unwrap();
        assert_eq!(reference.engine_misreading(), expected);
    }

    fn config(cases: u32) -> Config {
        Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        }
    }

    fn path_component() -> impl Strategy<Value = String> {
        let separator = prop_oneof![
            Just(".".to_owned()),
            Just("_".to_owned()),
            Just("__".to_owned()),
            "-{1,3}"
        ];
        (
            "[a-z0-9]{1,3}",
            prop::collection::vec((separator, "[a-z0-9]{1,3}"), 0..3),
        )
            .prop_map(|(head, rest)| {
                rest.into_iter()
                    .fold(head, |acc, (sep, alnum)| acc + &sep + &alnum)
            })
    }

    fn domain() -> impl Strategy<Value = String> {
        let host = prop_oneof![
            4 => prop::collection::vec("[a-zA-Z0-9]([a-zA-Z0-9-]{0,3}[a-zA-Z0-9])?", 1..4).prop_map(|c| c.join(".")),
            1 => (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
            1 => "\\[[0-9a-fA-F:]{1,16}\\]",
            1 => prop::sample::select(vec!["localhost", "docker.io", "index.docker.io", "Foo", "a_b.c"]).prop_map(str::to_owned),
        ];
        (host, prop::option::weighted(0.3, "[0-9]{1,5}")).prop_map(|(host, port)| match port {
            Some(port) => format!("{host}:{port}"),
            None => host,
        })
    }

    fn tag() -> impl Strategy<Value = String> {
        prop_oneof![
            4 => "[A-Za-z0-9_][A-Za-z0-9_.-]{0,12}",
            1 => "[A-Za-z0-9_][A-Za-z0-9_.-]{125,128}",
        ]
    }

    fn digest() -> impl Strategy<Value = String> {
        let algorithm = prop::sample::select(vec![
            ("sha256", 64usize),
            ("sha384", 96),
            ("sha512", 128),
            ("sha1", 40),
            ("md5", 32),
            ("SHA256", 64),
            ("sha256+b64", 64),
        ]);
        let length_change = prop_oneof![6 => Just(0isize), 1 => -33isize..=4];
        (
            algorithm,
            length_change,
            "[0-9a-f]{132}",
            prop::bool::weighted(0.15),
        )
            .prop_map(|((name, length), change, hex, upper)| {
                let length = length.saturating_add_signed(change).min(hex.len());
                let encoded = hex.get(..length).unwrap_or_default();
                let encoded = if upper {
                    encoded.to_ascii_uppercase()
                } else {
                    encoded.to_owned()
                };
                format!("{name}:{encoded}")
            })
    }

    /// References assembled from the grammar, with the lengths and prefixes that matter to Go.
    fn reference() -> impl Strategy<Value = String> {
        let assembled = (
            prop::option::weighted(0.6, domain()),
            prop::collection::vec(path_component(), 1..4),
            prop::option::weighted(0.1, "[a-z]{230,260}"),
            prop::option::weighted(0.5, tag()),
            prop::option::weighted(0.3, digest()),
        )
            .prop_map(|(domain, mut path, long, tag, digest)| {
                path.extend(long);
                let mut written = domain.map(|d| d + "/").unwrap_or_default() + &path.join("/");
                if let Some(tag) = tag {
                    written = written + ":" + &tag;
                }
                if let Some(digest) = digest {
                    written = written + "@" + &digest;
                }
                written
            });
        prop_oneof![20 => assembled, 1 => "[0-9a-f]{64}"]
    }

    const INTERESTING: &[char] = &[
        ':', '/', '@', '.', '_', '-', '+', 'A', 'Z', 'a', '0', '[', ']', ' ', '\n', 'é', 'ß',
        '\u{212A}',
    ];

    /// Near-valid references: one to three single-character edits of a generated one.
    fn mutant() -> impl Strategy<Value = String> {
        let edit = (
            0..3u8,
            any::<prop::sample::Index>(),
            prop::sample::select(INTERESTING),
        );
        (reference(), prop::collection::vec(edit, 1..4)).prop_map(|(written, edits)| {
            let mut chars: Vec<char> = written.chars().collect();
            for (kind, at, c) in edits {
                match kind {
                    0 => chars.insert(at.index(chars.len() + 1), c),
                    _ if chars.is_empty() => {}
                    1 => {
                        let at = at.index(chars.len());
                        chars[at] = c;
                    }
                    _ => {
                        chars.remove(at.index(chars.len()));
                    }
                }
            }
            chars.into_iter().collect()
        })
    }

    fn reparses_identically(input: &str) -> Result<(), TestCaseError> {
        if let Ok(first) = ImageReference::parse(input) {
            let qualified = first.fully_qualified();
            let again = ImageReference::parse(&qualified);
            prop_assert!(again.is_ok(), "{input:?} -> {qualified:?} -> {again:?}");
            if let Ok(again) = again {
                prop_assert_eq!(again.name(), first.name());
                prop_assert_eq!(
                    again.tag(),
                    first
                        .tag()
                        .or(first.digest().is_none().then_some(DEFAULT_TAG))
                );
                prop_assert_eq!(again.digest(), first.digest());
            }
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(config(3000))]

        #[test]
        fn grammar_references_match_oci_spec(input in reference()) {
            let verdict = compare_with_oci(&input);
            prop_assert!(verdict.is_ok(), "{}", verdict.unwrap_err());
        }

        #[test]
        fn mutated_references_match_oci_spec(input in mutant()) {
            let verdict = compare_with_oci(&input);
            prop_assert!(verdict.is_ok(), "{}", verdict.unwrap_err());
        }

        /// Pinning hands the engine only references it reads as this parser does.
        #[test]
        fn references_without_a_misreading_read_the_same_in_the_engine(
            input in prop_oneof![reference(), mutant()]
        ) {
            if let Ok(ours) = ImageReference::parse(&input) {
                let theirs = Reference::try_from(input.as_str());
                match (ours.engine_misreading(), &theirs) {
                    (None, Ok(t)) => {
                        prop_assert_eq!(ours.name(), oci_name(t), "{:?}", input);
                        prop_assert!(same_tag_and_digest(&ours, t), "{:?}: {:?}", input, t);
                    }
                    (None, Err(e)) => prop_assert!(false, "{:?}: oci-spec refuses it: {:?}", input, e),
                    (Some(_), Ok(t)) => prop_assert_ne!(ours.name(), oci_name(t), "{:?}", input),
                    (Some(_), Err(_)) => {}
                }
            }
        }

        #[test]
        fn arbitrary_text_parses_without_panic(input in "(?s).{0,300}") {
            reparses_identically(&input)?;
        }

        #[test]
        fn reference_alphabet_parses_without_panic(input in "[a-zA-Z0-9:/@._+\\[\\]-]{0,300}") {
            reparses_identically(&input)?;
        }

        #[test]
        fn generated_references_reparse(input in prop_oneof![reference(), mutant()]) {
            reparses_identically(&input)?;
        }
    }
}
