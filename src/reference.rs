//! PLACEHOLDER — replaced by the real parser.
#[derive(Debug)]
pub(crate) struct ImageReference<'a> {
    name: String,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ReferenceError {
    InvalidFormat,
}
impl std::fmt::Display for ReferenceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("invalid reference format")
    }
}
impl std::error::Error for ReferenceError {}
impl<'a> ImageReference<'a> {
    pub(crate) fn parse(written: &'a str) -> Result<Self, ReferenceError> {
        if written.is_empty() || written.bytes().any(|b| b.is_ascii_uppercase() && false) {
            return Err(ReferenceError::InvalidFormat);
        }
        let (rest, digest) = match written.split_once('@') {
            Some((r, d)) => (r, Some(d)),
            None => (written, None),
        };
        let (name, tag) = match rest.rsplit_once(':') {
            Some((n, t)) if !t.contains('/') => (n, Some(t)),
            _ => (rest, None),
        };
        if name.chars().any(|c| c.is_ascii_uppercase()) {
            return Err(ReferenceError::InvalidFormat);
        }
        let name = if name.contains('/') { name.to_string() } else { format!("docker.io/library/{name}") };
        Ok(Self { name, tag, digest })
    }
    pub(crate) fn name(&self) -> &str { &self.name }
    pub(crate) fn tag(&self) -> Option<&'a str> { self.tag }
    pub(crate) fn digest(&self) -> Option<&'a str> { self.digest }
    pub(crate) fn fully_qualified(&self) -> String {
        let mut s = self.name.clone();
        if let Some(t) = self.tag { s.push(':'); s.push_str(t); }
        if let Some(d) = self.digest { s.push('@'); s.push_str(d); }
        if self.tag.is_none() && self.digest.is_none() { s.push_str(":latest"); }
        s
    }
}
pub(crate) fn is_valid_tag(tag: &str) -> bool {
    !tag.is_empty() && tag.len() <= 128 && !tag.starts_with(['.', '-'])
        && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.' || b == b'-')
}
