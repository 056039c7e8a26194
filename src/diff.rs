//! Which leaves of two JSON values differ: how the tests and the fuzz targets check that a
//! mutation changed nothing but pull policies. Never part of the module.

use serde_json::Value;

/// Pointers of every leaf that differs, added or removed between `a` and `b`.
pub fn differences(at: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                let here = format!("{at}/{key}");
                match b.get(key) {
                    Some(other) => differences(&here, value, other, out),
                    None => out.push(here),
                }
            }
            for key in b.keys().filter(|key| !a.contains_key(*key)) {
                out.push(format!("{at}/{key}"));
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                differences(&format!("{at}/{i}"), x, y, out);
            }
        }
        (a, b) if a == b => {}
        _ => out.push(at.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_keys_and_lengths_are_all_seen() {
        let a = json!({"a": [1, {"b": 2}], "c": [1], "d": "x"});
        let b = json!({"a": [1, {"b": 3}], "c": [1, 2], "e": "x"});
        let mut out = Vec::new();
        differences("", &a, &b, &mut out);
        assert_eq!(out, ["/a/1/b", "/c", "/d", "/e"]);
        let mut none = Vec::new();
        differences("", &a, &a.clone(), &mut none);
        assert!(none.is_empty());
    }
}
