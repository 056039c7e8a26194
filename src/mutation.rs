//! Applying fixes to the object's JSON text: a pull-policy value is replaced, or the key is
//! inserted after the image; a pinned image's string is replaced. Every other byte comes back
//! as it came in.

use serde_json::value::RawValue;

use crate::error::RequestError;
use crate::slots::{Anchor, ImageSlot, Location};

const ALWAYS_JSON: &str = "\"Always\"";

/// One change to one slot.
#[derive(Debug, Clone)]
pub(crate) struct Fix<'a> {
    pub(crate) location: Location,
    anchor: Anchor<'a>,
    change: Change,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Change {
    /// The pull policy becomes `Always`.
    PullPolicy,
    /// The image becomes this reference (`name:tag@digest`).
    Image(String),
}

impl<'a> Fix<'a> {
    pub(crate) fn pull_policy(slot: &ImageSlot<'a>) -> Self {
        Self {
            location: slot.location,
            anchor: slot.anchor,
            change: Change::PullPolicy,
        }
    }

    /// The image written as it was, with `digest` appended.
    pub(crate) fn pin(slot: &ImageSlot<'a>, digest: &str) -> Self {
        Self {
            location: slot.location,
            anchor: slot.anchor,
            change: Change::Image(format!("{}@{digest}", slot.image)),
        }
    }
}

/// The object's text with every fix applied. The anchors and `object` must come from the same
/// request text. Each edit replaces a JSON string, or adds a member right after a member's
/// value, so the result is JSON whenever the object was.
pub(crate) fn apply_fixes(object: &RawValue, fixes: &[Fix<'_>]) -> Result<String, RequestError> {
    let text = object.get();
    let mut edits = Vec::with_capacity(fixes.len());
    for fix in fixes {
        let not_mutable = || RequestError::NotMutable(fix.location.to_string());
        let edit = match (&fix.change, fix.anchor.pull_policy) {
            (Change::PullPolicy, Some(policy)) => {
                let span = span_in(text, policy.get()).ok_or_else(not_mutable)?;
                (span.0, span.1, String::from(ALWAYS_JSON))
            }
            (Change::PullPolicy, None) => {
                let (_, end) = span_in(text, fix.anchor.image.get()).ok_or_else(not_mutable)?;
                let key = fix.location.list.policy_key();
                (end, end, format!(",\"{key}\":{ALWAYS_JSON}"))
            }
            (Change::Image(image), _) => {
                let (start, end) = span_in(text, fix.anchor.image.get()).ok_or_else(not_mutable)?;
                let quoted = serde_json::to_string(image).map_err(|_| not_mutable())?;
                (start, end, quoted)
            }
        };
        edits.push(edit);
    }
    // Starts are distinct (each edit sits at its own value; a key added after an image starts
    // where that image's replacement ends), so the unstable sort is exact, and unlike the
    // stable one it puts no 4 KB buffer on the stack.
    edits.sort_unstable_by_key(|(start, _, _)| *start);
    let mut mutated = String::with_capacity(text.len() + 32 * edits.len());
    let mut copied = 0;
    for (start, end, replacement) in &edits {
        let unchanged = text
            .get(copied..*start)
            .ok_or_else(|| RequestError::NotMutable(format!("byte {start}")))?;
        mutated.push_str(unchanged);
        mutated.push_str(replacement);
        copied = *end;
    }
    mutated.push_str(text.get(copied..).unwrap_or_default());
    Ok(mutated)
}

/// Where `part`, a slice of `whole`, sits in it.
fn span_in(whole: &str, part: &str) -> Option<(usize, usize)> {
    let start = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= whole.len()).then_some((start, end))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{object_text, Payload};
    use crate::slots::image_slots;
    use serde_json::{json, Value};

    /// Fields no Kubernetes type knows, numbers beyond f64, key orders that are not sorted,
    /// escapes, odd white space.
    const ODD_POD: &str = r#"{"zeta":{"nested":[1,2,{"x":null}]},"apiVersion":"v1","kind":"Pod",
        "metadata":{"name":"p","annotations":{"example.com/any":"caf\u00e9 \"q\""},"labels":{}},
        "spec":{"futureField":{"big":12345678901234567890123456789,"float":1.10,"exp":1E300,"neg":-0.0},
          "containers":[
            {"name":"app","futureContainerField":[],"image":"nginx:1.27","imagePullPolicy" : "IfNotPresent","ports":[]},
            {"image" : "side:1" ,"name":"side"},
            {"imagePullPolicy":null,"image":"null:1","name":"null"}],
          "volumes":[{"name":"m","image":{"reference":"m:1","futureVolumeField":true}}]},
        "status":{}}"#;

    fn payload() -> Vec<u8> {
        format!(
            r#"{{"request":{{"kind":{{"kind":"Pod"}},"operation":"CREATE","object":{ODD_POD}}}}}"#
        )
        .into_bytes()
    }

    fn mutate(payload: &[u8], which: &[usize]) -> Result<String, RequestError> {
        let parsed = Payload::parse(payload).unwrap();
        let workload = parsed.request.workload().unwrap();
        let pod_spec = workload
            .pod_spec(parsed.request.object.as_ref().unwrap())
            .unwrap();
        let slots = image_slots(pod_spec, workload.pod_spec_path).unwrap();
        let fixes: Vec<_> = which.iter().map(|&i| Fix::pull_policy(&slots[i])).collect();
        apply_fixes(object_text(payload).unwrap(), &fixes)
    }

    #[test]
    fn only_the_pull_policies_change_byte_for_byte() {
        let payload = payload();
        let mutated = mutate(&payload, &[0, 1, 2, 3]).unwrap();
        let expected = ODD_POD
            .replace(
                r#""imagePullPolicy" : "IfNotPresent""#,
                r#""imagePullPolicy" : "Always""#,
            )
            .replace(r#""side:1" ,"#, r#""side:1","imagePullPolicy":"Always" ,"#)
            .replace(r#""imagePullPolicy":null"#, r#""imagePullPolicy":"Always""#)
            .replace(
                r#""reference":"m:1","#,
                r#""reference":"m:1","pullPolicy":"Always","#,
            );
        assert_eq!(mutated, expected);
    }

    #[test]
    fn the_result_is_the_object_with_the_policies_set() {
        let payload = payload();
        let mutated: Value = serde_json::from_str(&mutate(&payload, &[0, 3]).unwrap()).unwrap();
        let mut expected: Value = serde_json::from_str(ODD_POD).unwrap();
        expected["spec"]["containers"][0]["imagePullPolicy"] = json!("Always");
        expected["spec"]["volumes"][0]["image"]["pullPolicy"] = json!("Always");
        assert_eq!(mutated, expected);
    }

    #[test]
    fn a_pinned_image_is_replaced_and_its_policy_added_after_it() {
        let payload = payload();
        let parsed = Payload::parse(&payload).unwrap();
        let workload = parsed.request.workload().unwrap();
        let pod_spec = workload
            .pod_spec(parsed.request.object.as_ref().unwrap())
            .unwrap();
        let slots = image_slots(pod_spec, workload.pod_spec_path).unwrap();
        let digest = format!("sha256:{}", "a".repeat(64));
        let fixes = [
            Fix::pull_policy(&slots[1]),
            Fix::pin(&slots[1], &digest),
            Fix::pin(&slots[3], &digest),
        ];
        let mutated = apply_fixes(object_text(&payload).unwrap(), &fixes).unwrap();
        let expected = ODD_POD
            .replace(
                r#""side:1" ,"#,
                &format!(r#""side:1@{digest}","imagePullPolicy":"Always" ,"#),
            )
            .replace(
                r#""reference":"m:1","#,
                &format!(r#""reference":"m:1@{digest}","#),
            );
        assert_eq!(mutated, expected);
    }

    #[test]
    fn no_fix_gives_the_object_unchanged() {
        assert_eq!(mutate(&payload(), &[]).unwrap(), ODD_POD);
    }

    #[test]
    fn an_anchor_outside_the_object_is_an_error_not_a_panic() {
        let payload = payload();
        let parsed = Payload::parse(&payload).unwrap();
        let workload = parsed.request.workload().unwrap();
        let pod_spec = workload
            .pod_spec(parsed.request.object.as_ref().unwrap())
            .unwrap();
        let slots = image_slots(pod_spec, workload.pod_spec_path).unwrap();
        let elsewhere: &RawValue = serde_json::from_str(r#"{"a":1}"#).unwrap();
        let error = apply_fixes(elsewhere, &[Fix::pull_policy(&slots[0])]).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the object cannot be mutated at spec.containers[0]"
        );
    }
}
