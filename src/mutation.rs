//! Applying fixes to the object as JSON: only the pull-policy keys at the fixes' paths change;
//! every other field, known to Kubernetes' types or not, comes back as it came in.

use serde_json::value::RawValue;
use serde_json::Value;

use crate::error::RequestError;
use crate::rules::ALWAYS;
use crate::slots::Location;

/// The object with the pull policy set to `Always` at every fix.
pub(crate) fn apply_fixes(object: &RawValue, fixes: &[Location]) -> Result<Value, RequestError> {
    let mut value: Value = serde_json::from_str(object.get())
        .map_err(|error| RequestError::Unreadable(error.to_string()))?;
    for fix in fixes {
        let pointer = fix.policy_holder_pointer();
        let holder = value
            .pointer_mut(&pointer)
            .and_then(Value::as_object_mut)
            .ok_or_else(|| RequestError::NotMutable(pointer.clone()))?;
        holder.insert(
            fix.policy_key().to_owned(),
            Value::String(ALWAYS.to_owned()),
        );
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slots::SlotList;

    const POD: &[&str] = &["spec"];

    fn raw(json: &str) -> &RawValue {
        serde_json::from_str(json).unwrap()
    }

    /// Fields no Kubernetes type knows, numbers beyond f64, key orders that are not sorted.
    const ODD_POD: &str = r#"{"zeta":{"nested":[1,2,{"x":null}]},"apiVersion":"v1","kind":"Pod",
        "metadata":{"name":"p","annotations":{"example.com/any":"caf\u00e9 \"q\""},"labels":{}},
        "spec":{"futureField":{"big":12345678901234567890123456789,"float":1.10,"neg":-0.0,"int64":-9223372036854775808},
          "containers":[
            {"name":"app","futureContainerField":[],"image":"nginx:1.27","imagePullPolicy":"IfNotPresent","ports":[]},
            {"image":"side:1","name":"side","imagePullPolicy":"Always"}],
          "volumes":[{"name":"m","image":{"reference":"m:1","futureVolumeField":true}}]},
        "status":{}}"#;

    #[test]
    fn only_pull_policies_change() {
        let fixes = [
            Location {
                pod_spec_path: POD,
                list: SlotList::Containers,
                index: 0,
            },
            Location {
                pod_spec_path: POD,
                list: SlotList::ImageVolumes,
                index: 0,
            },
        ];
        let mutated = apply_fixes(raw(ODD_POD), &fixes).unwrap();
        let mut expected: Value = serde_json::from_str(ODD_POD).unwrap();
        expected["spec"]["containers"][0]["imagePullPolicy"] = Value::String("Always".into());
        expected["spec"]["volumes"][0]["image"]["pullPolicy"] = Value::String("Always".into());
        assert_eq!(mutated, expected);
    }

    #[test]
    fn numbers_keys_and_strings_come_back_as_written() {
        let fixes = [Location {
            pod_spec_path: POD,
            list: SlotList::Containers,
            index: 0,
        }];
        let text = serde_json::to_string(&apply_fixes(raw(ODD_POD), &fixes).unwrap()).unwrap();
        assert!(
            text.starts_with(r#"{"zeta":{"nested":[1,2,{"x":null}]},"apiVersion":"v1""#),
            "{text}"
        );
        assert!(text.contains(r#""big":12345678901234567890123456789,"float":1.10,"neg":-0.0,"int64":-9223372036854775808"#), "{text}");
        assert!(text.contains(r#"{"name":"app","futureContainerField":[],"image":"nginx:1.27","imagePullPolicy":"Always","ports":[]}"#), "{text}");
        assert!(text.contains("café \\\"q\\\""), "{text}");
    }

    #[test]
    fn a_fix_outside_the_object_is_an_error_not_a_panic() {
        let fixes = [Location {
            pod_spec_path: POD,
            list: SlotList::Containers,
            index: 7,
        }];
        let error = apply_fixes(raw(ODD_POD), &fixes).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the object cannot be mutated at /spec/containers/7"
        );
    }
}
