//! The whole path over the real admission requests in `test_data/`.

use rstest::rstest;
use serde_json::{json, Value};

use super::{evaluate, evaluate_with, fixture, Outcome, TestRegistry};
use crate::evaluation::{validate, validate_settings};

fn defaults() -> Value {
    json!({})
}

#[rstest]
#[case::pod("pod-ifnotpresent.json", &["/spec/containers/0/imagePullPolicy"])]
#[case::pod_without_policy("pod-no-policy.json", &["/spec/containers/0/imagePullPolicy"])]
#[case::registry_port_and_tag("pod-localhost-port-tagged.json", &["/spec/containers/0/imagePullPolicy"])]
#[case::digest("pod-digest.json", &["/spec/containers/0/imagePullPolicy"])]
#[case::deployment("deployment.json", &["/spec/template/spec/containers/0/imagePullPolicy"])]
#[case::deployment_defaulted("deployment-defaulted.json", &["/spec/template/spec/containers/0/imagePullPolicy"])]
#[case::replicaset("replicaset.json", &["/spec/template/spec/containers/0/imagePullPolicy"])]
#[case::statefulset("statefulset.json", &["/spec/template/spec/containers/0/imagePullPolicy"])]
#[case::daemonset("daemonset.json", &["/spec/template/spec/containers/0/imagePullPolicy"])]
#[case::replicationcontroller("replicationcontroller.json", &["/spec/template/spec/containers/0/imagePullPolicy"])]
#[case::job("job.json", &["/spec/template/spec/containers/0/imagePullPolicy"])]
#[case::cronjob("cronjob.json", &["/spec/jobTemplate/spec/template/spec/containers/0/imagePullPolicy"])]
#[case::admission_review("admission-review-pod.json", &["/spec/containers/0/imagePullPolicy"])]
#[case::only_the_changed_container("deployment-update-image.json", &["/spec/template/spec/containers/0/imagePullPolicy"])]
#[case::policy_only_update("deployment-update-policy-only.json", &["/spec/template/spec/containers/0/imagePullPolicy"])]
#[case::new_ephemeral_container("pod-ephemeral-debug.json", &["/spec/ephemeralContainers/0/imagePullPolicy"])]
#[case::extra_fields("pod-extra-fields.json", &["/spec/containers/0/imagePullPolicy"])]
fn mutated_at_exactly(#[case] file: &str, #[case] expected: &[&str]) {
    let outcome = evaluate(&fixture(file), &defaults());
    assert!(outcome.accepted, "{outcome:?}");
    assert_eq!(outcome.changed, expected);
    assert_eq!(outcome.warnings.len(), expected.len(), "{outcome:?}");
    assert!(
        outcome.warnings.iter().all(|w| w.contains("set to Always")),
        "{outcome:?}"
    );
}

#[test]
fn every_list_is_mutated() {
    let outcome = evaluate(&fixture("pod-all-lists.json"), &defaults());
    assert!(outcome.accepted, "{outcome:?}");
    let mut changed = outcome.changed.clone();
    changed.sort();
    assert_eq!(
        changed,
        [
            "/spec/containers/0/imagePullPolicy",
            "/spec/containers/1/imagePullPolicy",
            "/spec/ephemeralContainers/0/imagePullPolicy",
            "/spec/initContainers/0/imagePullPolicy",
            "/spec/initContainers/1/imagePullPolicy",
            "/spec/volumes/1/image/pullPolicy",
        ]
    );
    assert_eq!(outcome.warnings.len(), 6);
}

#[test]
fn the_mutated_object_is_the_request_object_but_for_the_pull_policy() {
    let request = fixture("pod-extra-fields.json");
    let payload = serde_json::to_vec(&json!({ "request": request, "settings": {} })).unwrap();
    let mutated: Value = serde_json::from_str(
        &validate(&payload, &mut TestRegistry::default())
            .mutated_object
            .unwrap(),
    )
    .unwrap();
    let mut expected = request["object"].clone();
    expected["spec"]["containers"][0]["imagePullPolicy"] = json!("Always");
    assert_eq!(mutated, expected);
}

#[rstest]
#[case::compliant_pod("pod-compliant.json")]
#[case::compliant_deployment("deployment-compliant.json")]
#[case::tag_and_digest("pod-tag-and-digest.json")]
#[case::floating_tags_under_defaults("pod-floating-tags.json")]
#[case::other_kind("configmap.json")]
#[case::label_change("pod-update-label.json")]
#[case::finalizer_removal("deployment-update-finalizer-removal.json")]
#[case::delete("deployment-delete.json")]
fn accepted_untouched(#[case] file: &str) {
    let outcome = evaluate(&fixture(file), &defaults());
    assert!(outcome.accepted, "{outcome:?}");
    assert!(
        outcome.changed.is_empty() && outcome.warnings.is_empty(),
        "{outcome:?}"
    );
}

#[rstest]
#[case::latest(
    "pod-latest.json",
    "spec.containers[0] \"web\": tag \"latest\" is denied; use another tag or a digest (image nginx:latest)"
)]
#[case::untagged(
    "pod-untagged.json",
    "spec.containers[0] \"web\": image has neither tag nor digest"
)]
#[case::registry_port(
    "pod-localhost-port.json",
    "image has neither tag nor digest, so it pulls the implicit \"latest\"; give it a tag or a digest (image localhost:5000/app)"
)]
#[case::uppercase(
    "pod-uppercase.json",
    ": invalid image reference: repository name must be lowercase (image NGINX:1.27)"
)]
#[case::cronjob_init(
    "cronjob-latest-init.json",
    "spec.jobTemplate.spec.template.spec.initContainers[0] \"wait\": tag \"latest\" is denied"
)]
#[case::existing_pod("pod-update-image.json", "cannot be changed, so recreate the Pod")]
#[case::null_object("malformed-null-object.json", "the request has no object to evaluate")]
#[case::containers_not_list("malformed-containers-not-list.json", "spec.containers is not a list")]
#[case::image_not_string(
    "malformed-image-not-string.json",
    "spec.containers[0] \"web\": image is not a string"
)]
#[case::missing_image(
    "malformed-missing-image.json",
    "spec.containers[0] \"web\": has no image"
)]
fn rejected(#[case] file: &str, #[case] expected: &str) {
    let outcome = evaluate(&fixture(file), &defaults());
    assert!(!outcome.accepted, "{outcome:?}");
    let message = outcome.message.unwrap();
    assert!(message.contains(expected), "{message:?} lacks {expected:?}");
    assert!(outcome.changed.is_empty());
}

#[test]
fn update_without_old_object_evaluates_every_container() {
    let outcome = evaluate(&fixture("deployment-update-no-oldobject.json"), &defaults());
    assert_eq!(
        outcome.changed,
        [
            "/spec/template/spec/containers/0/imagePullPolicy",
            "/spec/template/spec/containers/1/imagePullPolicy"
        ]
    );
}

#[test]
fn unreadable_old_object_evaluates_every_container() {
    let mut request = fixture("deployment-update-image.json");
    request["oldObject"] = json!({"spec": "garbage"});
    assert_eq!(evaluate(&request, &defaults()).changed.len(), 2);
}

#[test]
fn reject_mode_refuses_what_mutate_mode_fixes() {
    let outcome = evaluate(&fixture("pod-all-lists.json"), &json!({"mode": "reject"}));
    assert!(!outcome.accepted);
    let message = outcome.message.unwrap();
    let order: Vec<_> = [
        "containers[0]",
        "containers[1]",
        "initContainers[0]",
        "initContainers[1]",
        "ephemeralContainers[0]",
        "volumes[1]",
    ]
    .iter()
    .map(|at| {
        message
            .find(&format!("spec.{at} "))
            .unwrap_or_else(|| panic!("{at} missing from {message}"))
    })
    .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{message}");
    assert!(
        message.contains("image.pullPolicy is IfNotPresent, must be Always"),
        "{message}"
    );
}

#[test]
fn warn_mode_accepts_with_a_warning_per_violation() {
    let outcome = evaluate(&fixture("pod-all-lists.json"), &json!({"mode": "warn"}));
    assert!(outcome.accepted && outcome.changed.is_empty());
    assert_eq!(outcome.warnings.len(), 6);
    let rejected = evaluate(&fixture("pod-all-lists.json"), &json!({"mode": "reject"}));
    assert_eq!(rejected.message.unwrap(), outcome.warnings.join("; "));
}

#[test]
fn warn_mode_warns_on_tags_too() {
    let outcome = evaluate(
        &fixture("cronjob-latest-init.json"),
        &json!({"mode": "warn"}),
    );
    assert!(outcome.accepted);
    assert!(
        outcome
            .warnings
            .iter()
            .any(|w| w.contains("tag \"latest\" is denied")),
        "{outcome:?}"
    );
}

#[test]
fn mutate_templates_off_warns_on_workloads_and_mutates_pods() {
    let settings = json!({"mutateTemplates": false});
    let deployment = evaluate(&fixture("deployment.json"), &settings);
    assert!(deployment.accepted && deployment.changed.is_empty());
    assert!(
        deployment.warnings[0].contains("the Pods it creates get imagePullPolicy Always"),
        "{deployment:?}"
    );
    let pod = evaluate(&fixture("pod-ifnotpresent.json"), &settings);
    assert_eq!(pod.changed, ["/spec/containers/0/imagePullPolicy"]);
}

#[test]
fn require_digest_refuses_tags() {
    let outcome = evaluate(
        &fixture("pod-compliant.json"),
        &json!({"requireDigest": true}),
    );
    assert!(outcome
        .message
        .unwrap()
        .contains("image is not pinned by a digest"));
    let pinned = evaluate(
        &fixture("pod-digest.json"),
        &json!({"requireDigest": true, "requireAlwaysForDigests": false}),
    );
    assert!(pinned.accepted && pinned.changed.is_empty(), "{pinned:?}");
}

#[test]
fn exemptions_skip_every_rule() {
    let images = json!({"exemptImages": ["docker.io/library/nginx:*"]});
    let latest = evaluate(&fixture("pod-latest.json"), &images);
    assert!(latest.accepted && latest.changed.is_empty(), "{latest:?}");
    let containers =
        json!({"exemptContainers": [{"name": "we?", "image": "docker.io/library/nginx:*"}]});
    let untagged = evaluate(&fixture("pod-untagged.json"), &containers);
    assert!(
        untagged.accepted && untagged.changed.is_empty(),
        "{untagged:?}"
    );
}

#[rstest]
#[case::settings_fixture_reject("reject.json", true)]
#[case::settings_fixture_warn("warn.json", true)]
#[case::settings_fixture_templates("no-templates.json", true)]
#[case::settings_fixture_digests("digests.json", true)]
#[case::settings_fixture_exemptions("exemptions.json", true)]
#[case::settings_fixture_unknown_key("invalid-unknown-key.json", false)]
#[case::settings_fixture_mode("invalid-mode.json", false)]
#[case::settings_fixture_tag("invalid-denied-tag.json", false)]
#[case::settings_fixture_floating_tags("floating-tags.json", true)]
#[case::settings_fixture_tag_pattern("invalid-denied-tag-pattern.json", false)]
fn settings_fixtures(#[case] file: &str, #[case] valid: bool) {
    let path = format!("{}/test_data/settings/{file}", env!("CARGO_MANIFEST_DIR"));
    let response = validate_settings(&std::fs::read(path).unwrap());
    assert_eq!(response.valid, valid, "{:?}", response.message);
    assert_eq!(response.message.is_none(), valid);
}

fn settings_fixture(file: &str) -> Value {
    let path = format!("{}/test_data/settings/{file}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn floating_and_denied_tags_are_refused_in_container_order() {
    let outcome = evaluate(
        &fixture("pod-floating-tags.json"),
        &settings_fixture("floating-tags.json"),
    );
    assert!(!outcome.accepted, "{outcome:?}");
    assert!(outcome.changed.is_empty());
    let message = outcome.message.unwrap();
    let items: Vec<&str> = message.split("; ").collect();
    let heads: Vec<String> = items
        .iter()
        .filter(|item| item.starts_with("spec."))
        .map(|item| item.split(": ").take(2).collect::<Vec<_>>().join(": "))
        .collect();
    assert_eq!(
        heads,
        [
            "spec.containers[0] \"api\": tag \"1.2\" is a floating version",
            "spec.containers[1] \"worker\": tag \"v3-alpine\" is a floating version",
            "spec.containers[5] \"nightly\": tag \"20240101\" is denied",
            "spec.initContainers[0] \"migrate\": tag \"1.4-SNAPSHOT\" is denied",
            "spec.initContainers[0] \"migrate\": tag \"1.4-SNAPSHOT\" is a floating version",
        ],
        "{message}"
    );
    assert!(
        message.contains("\"api\": tag \"1.2\" is a floating version: it gives major and minor, not the patch version"),
        "{message}"
    );
    assert!(
        message.contains(
            "\"worker\": tag \"v3-alpine\" is a floating version: it gives the major version only"
        ),
        "{message}"
    );
}

#[test]
fn floating_tags_warn_in_warn_mode() {
    let outcome = evaluate(
        &fixture("pod-floating-tags.json"),
        &json!({"mode": "warn", "requireFullVersion": true}),
    );
    assert!(outcome.accepted, "{outcome:?}");
    assert!(outcome.changed.is_empty());
    assert_eq!(outcome.warnings.len(), 3, "{outcome:?}");
    assert!(outcome.warnings[2].starts_with(
        "spec.initContainers[0] \"migrate\": tag \"1.4-SNAPSHOT\" is a floating version"
    ));
}

#[test]
fn invalid_settings_in_a_request_refuse_it() {
    let outcome = evaluate(&fixture("pod-compliant.json"), &json!({"mode": "block"}));
    assert!(!outcome.accepted);
    assert!(outcome
        .message
        .unwrap()
        .starts_with("the policy settings are not valid: mode:"));
}

#[rstest]
#[case::empty(b"".as_slice())]
#[case::not_json(b"\xff\xfe".as_slice())]
#[case::array(b"[]".as_slice())]
#[case::no_request(b"{\"settings\":{}}".as_slice())]
#[case::request_null(b"{\"request\":null}".as_slice())]
fn unreadable_payloads_are_refused(#[case] payload: &[u8]) {
    let response = validate(payload, &mut TestRegistry::default());
    assert!(!response.accepted);
    assert!(response
        .message
        .unwrap()
        .starts_with("the request cannot be read"));
}

#[test]
fn ten_thousand_containers_get_one_capped_message() {
    let containers: Vec<_> = (0..10_000)
        .map(|i| json!({"name": format!("c{i}"), "image": "app:latest"}))
        .collect();
    let mut request = fixture("pod-compliant.json");
    request["object"]["spec"]["containers"] = Value::Array(containers);
    let outcome = evaluate(&request, &defaults());
    let message = outcome.message.unwrap();
    assert_eq!(message.matches("is denied").count(), 20);
    assert!(
        message.ends_with("and 9980 more violations"),
        "{}",
        &message[message.len() - 60..]
    );
}

const DIGEST: &str = "sha256:3b1c0d2e9f4a5b6c7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e";

/// `settings` with the registries of the fixtures' images in `pinRegistries`, unless given.
fn with_pin_registries(settings: &Value) -> Value {
    let mut settings = settings.clone();
    if settings.get("pinRegistries").is_none() {
        settings["pinRegistries"] = json!(["docker.io/library/*", "registry.example.com/*"]);
    }
    settings
}

/// `evaluate`, with a registry that knows every image of the fixtures; returns what it was
/// asked, in order, and the mutated object.
fn evaluate_pinning(request: &Value, settings: &Value) -> (Outcome, Vec<String>, Option<Value>) {
    let settings = &with_pin_registries(settings);
    let mut registry = TestRegistry {
        answers: [
            "nginx:1.27",
            "busybox:1.36",
            "registry.example.com/team/web:1.4.2",
            "registry.example.com/team/metrics:0.9.1",
            "registry.example.com/team/migrate:1.4.2",
            "registry.example.com/team/log-shipper:2.3.1",
            "registry.example.com/models:v3",
        ]
        .into_iter()
        .map(|image| (image, Ok(DIGEST)))
        .collect(),
        ..TestRegistry::default()
    };
    let (outcome, mutated) = evaluate_with(request, settings, &mut registry);
    (outcome, registry.asked, mutated)
}

#[test]
fn a_pod_is_pinned_and_its_pull_policy_set() {
    let (outcome, asked, mutated) = evaluate_pinning(
        &fixture("pod-ifnotpresent.json"),
        &json!({"pinDigests": "pods"}),
    );
    assert!(outcome.accepted, "{outcome:?}");
    assert_eq!(asked, ["nginx:1.27"]);
    assert_eq!(
        outcome.changed,
        [
            "/spec/containers/0/image",
            "/spec/containers/0/imagePullPolicy"
        ]
    );
    let container = &mutated.unwrap()["spec"]["containers"][0];
    assert_eq!(container["image"], format!("nginx:1.27@{DIGEST}"));
    assert_eq!(container["imagePullPolicy"], "Always");
    assert!(outcome.warnings[1].contains("pinned to sha256:3b1c0d2e9f4a…"));
}

#[test]
fn a_pinned_image_keeps_its_pull_policy_when_digests_need_not_pull_always() {
    let settings = json!({"pinDigests": "pods", "requireAlwaysForDigests": false});
    let (outcome, asked, mutated) = evaluate_pinning(&fixture("pod-ifnotpresent.json"), &settings);
    assert!(outcome.accepted, "{outcome:?}");
    assert_eq!(asked, ["nginx:1.27"]);
    assert_eq!(outcome.changed, ["/spec/containers/0/image"]);
    assert_eq!(
        mutated.unwrap()["spec"]["containers"][0]["imagePullPolicy"],
        "IfNotPresent"
    );
    assert_eq!(outcome.warnings.len(), 1, "{outcome:?}");

    // Unpinned, it is an image without a digest again: its pull policy must be Always.
    let settings = with_pin_registries(&json!({
        "pinDigests": "pods", "requireAlwaysForDigests": false, "registryFailure": "accept"
    }));
    let mut registry = TestRegistry::default();
    let (outcome, mutated) =
        evaluate_with(&fixture("pod-ifnotpresent.json"), &settings, &mut registry);
    assert_eq!(registry.asked, ["nginx:1.27"]);
    assert_eq!(outcome.changed, ["/spec/containers/0/imagePullPolicy"]);
    assert_eq!(
        mutated.unwrap()["spec"]["containers"][0]["image"],
        "nginx:1.27"
    );
    assert!(
        outcome
            .warnings
            .iter()
            .any(|w| w.contains("not pinned, accepted as it is")),
        "{outcome:?}"
    );
}

#[test]
fn every_list_and_image_volume_of_a_pod_is_pinned() {
    let (outcome, asked, _) = evaluate_pinning(
        &fixture("pod-all-lists.json"),
        &json!({"pinDigests": "pods"}),
    );
    assert!(outcome.accepted, "{outcome:?}");
    assert_eq!(asked.len(), 6);
    for pointer in [
        "/spec/containers/0/image",
        "/spec/containers/1/image",
        "/spec/initContainers/0/image",
        "/spec/initContainers/1/image",
        "/spec/ephemeralContainers/0/image",
        "/spec/volumes/1/image/reference",
    ] {
        assert!(
            outcome.changed.iter().any(|c| c == pointer),
            "{pointer}: {outcome:?}"
        );
    }
}

#[rstest]
#[case::pods_leaves_templates("deployment.json", "pods", false)]
#[case::all_pins_templates("deployment.json", "all", true)]
#[case::never_a_controlled_workload("e2e/replicaset-owned-by-deployment.json", "all", false)]
#[case::only_changed_containers("deployment-update-image.json", "all", true)]
fn templates_are_pinned_only_with_all(
    #[case] file: &str,
    #[case] scope: &str,
    #[case] pinned: bool,
) {
    let (outcome, asked, _) = evaluate_pinning(&fixture(file), &json!({ "pinDigests": scope }));
    assert!(outcome.accepted, "{outcome:?}");
    let pointer = "/spec/template/spec/containers/0/image".to_owned();
    assert_eq!(outcome.changed.contains(&pointer), pinned, "{outcome:?}");
    if pinned {
        assert_eq!(
            asked,
            ["nginx:1.27"],
            "unchanged containers are not resolved"
        );
    } else {
        assert!(asked.is_empty(), "{asked:?}");
    }
}

#[rstest]
#[case::refused_anyway("pod-latest.json", json!({"pinDigests": "pods"}))]
#[case::digest_already("pod-digest.json", json!({"pinDigests": "pods"}))]
#[case::exempt_image(
    "pod-ifnotpresent.json",
    json!({"pinDigests": "pods", "exemptImages": ["docker.io/library/nginx:*"]})
)]
#[case::off("pod-ifnotpresent.json", json!({}))]
#[case::other_kind("configmap.json", json!({"pinDigests": "all"}))]
fn nothing_is_resolved_when_nothing_may_be_pinned(#[case] file: &str, #[case] settings: Value) {
    let (outcome, asked, _) = evaluate_pinning(&fixture(file), &settings);
    assert!(asked.is_empty(), "{asked:?}: {outcome:?}");
    assert!(
        !outcome.changed.iter().any(|c| c.ends_with("/image")),
        "{outcome:?}"
    );
}

/// An UPDATE that changes a Pod's image is pinned like a CREATE: the new image carries a
/// digest, so under `requireAlwaysForDigests: false` its pull policy may stay.
#[test]
fn an_update_of_a_pods_image_is_pinned_like_a_create() {
    let settings = json!({"pinDigests": "pods", "requireAlwaysForDigests": false});
    let (outcome, asked, mutated) = evaluate_pinning(&fixture("pod-update-image.json"), &settings);
    assert!(outcome.accepted, "{outcome:?}");
    assert_eq!(asked, ["nginx:1.27"]);
    assert_eq!(outcome.changed, ["/spec/containers/0/image"]);
    let container = &mutated.unwrap()["spec"]["containers"][0];
    assert_eq!(container["image"], format!("nginx:1.27@{DIGEST}"));
    assert_eq!(container["imagePullPolicy"], "IfNotPresent");

    // Not to be pinned, the pull policy of the existing Pod's container is what refuses it.
    let (outcome, asked, _) = evaluate_pinning(
        &fixture("pod-update-image.json"),
        &json!({"pinDigests": "pods", "requireAlwaysForDigests": false,
                "pinRegistries": ["registry.example.com/*"]}),
    );
    assert!(asked.is_empty(), "{asked:?}");
    let message = outcome.message.unwrap();
    assert!(message.contains("recreate the Pod"), "{message}");
}

/// `requireDigest` with pinning: every Pod runs a digest, pinned for the author.
#[test]
fn require_digest_is_judged_after_pinning() {
    let settings = json!({"pinDigests": "pods", "requireDigest": true});
    let (outcome, asked, mutated) = evaluate_pinning(&fixture("pod-ifnotpresent.json"), &settings);
    assert!(outcome.accepted, "{outcome:?}");
    assert_eq!(asked, ["nginx:1.27"]);
    assert_eq!(
        mutated.unwrap()["spec"]["containers"][0]["image"],
        format!("nginx:1.27@{DIGEST}")
    );

    // A tag that cannot be pinned, accepted unpinned, is still a tag without a digest.
    let settings = with_pin_registries(
        &json!({"pinDigests": "pods", "requireDigest": true, "registryFailure": "accept"}),
    );
    let mut registry = TestRegistry::default();
    let (outcome, _) = evaluate_with(&fixture("pod-ifnotpresent.json"), &settings, &mut registry);
    let message = outcome.message.unwrap();
    assert!(
        message.contains("image is not pinned by a digest"),
        "{message}"
    );
}

/// A reference the engine cannot read is never sent to it.
#[test]
fn a_bracketed_ipv6_registry_is_refused_without_a_call() {
    let mut request = fixture("pod-ifnotpresent.json");
    request["object"]["spec"]["containers"][0]["image"] = json!("[fd00::1]:5000/team/app:1.0");
    let (outcome, asked, _) = evaluate_pinning(
        &request,
        &json!({"pinDigests": "pods", "pinRegistries": ["[fd00::1]:5000/*"]}),
    );
    assert!(asked.is_empty(), "{asked:?}");
    assert_eq!(
        outcome.message.as_deref(),
        Some(
            "spec.containers[0] \"web\": cannot pin the tag to its digest: the policy server \
             cannot read a registry host in brackets (IPv6); name the registry by a host name, \
             or write the digest; registryFailure \"accept\" would admit it unpinned (image \
             [fd00::1]:5000/team/app:1.0)"
        )
    );
}

/// Under `registryFailure: reject`, an image that may not be asked about refuses the request
/// before any call; under `accept`, the others are pinned and it is warned about.
#[test]
fn an_image_outside_pin_registries_is_handled_by_registry_failure() {
    let mut request = fixture("pod-all-lists.json");
    request["object"]["spec"]["containers"][1]["image"] = json!("127.0.0.1:22/attacker/app:1.0");
    let settings = json!({"pinDigests": "pods", "pinRegistries": ["docker.io/library/*", "registry.example.com/*"]});
    let (outcome, asked, _) = evaluate_pinning(&request, &settings);
    assert!(asked.is_empty(), "{asked:?}");
    assert!(!outcome.accepted);
    let mut accepting = settings.clone();
    accepting["registryFailure"] = json!("accept");
    let (outcome, asked, _) = evaluate_pinning(&request, &accepting);
    assert!(outcome.accepted, "{outcome:?}");
    assert_eq!(asked.len(), 5, "{asked:?}");
    assert!(!asked.iter().any(|image| image.contains("attacker")));
    assert!(
        outcome.warnings.iter().any(|w| w.contains(
            "not pinned, accepted as it is: its registry is not in pinRegistries (image \
             127.0.0.1:22/attacker/app:1.0)"
        )),
        "{outcome:?}"
    );
}

/// The same object as the API server would send it: a user, the plural as the resource.
fn from_the_api_server(audit: &Value) -> Value {
    let mut request = audit.clone();
    request["userInfo"] = json!({"username": "kubernetes-admin", "groups": ["system:masters"]});
    let plural = format!(
        "{}s",
        audit["kind"]["kind"].as_str().unwrap().to_lowercase()
    );
    request["resource"]["resource"] = json!(plural);
    request
}

/// An API server's request made into one the audit scanner sends: what the object says of
/// itself, as a CREATE without a user.
fn as_audit(request: &Value) -> Value {
    let mut audit = request.clone();
    let uid = "6d0c3b1e-2a4f-4c8d-9e7b-1f2a3b4c5d6e";
    audit["object"]["metadata"]["uid"] = json!(uid);
    audit["uid"] = json!(uid);
    audit["operation"] = json!("CREATE");
    audit["userInfo"] = json!({});
    audit["resource"]["resource"] = audit["kind"]["kind"].clone();
    audit["oldObject"] = Value::Null;
    audit
}

#[rstest]
#[case::deployment_mutate("audit/deployment-ifnotpresent.json", json!({}))]
#[case::deployment_warn("audit/deployment-ifnotpresent.json", json!({"mode": "warn"}))]
#[case::deployment_reject("audit/deployment-ifnotpresent.json", json!({"mode": "reject"}))]
#[case::deployment_gitops(
    "audit/deployment-ifnotpresent.json",
    json!({"mutateTemplates": false})
)]
#[case::deployment_pinning(
    "audit/deployment-ifnotpresent.json",
    json!({"pinDigests": "all", "pinRegistries": ["docker.io/*"]})
)]
#[case::pod_mutate("audit/pod-ifnotpresent.json", json!({}))]
#[case::pod_warn("audit/pod-ifnotpresent.json", json!({"mode": "warn"}))]
#[case::pod_pinning(
    "audit/pod-ifnotpresent.json",
    json!({"pinDigests": "pods", "pinRegistries": ["docker.io/*"]})
)]
fn an_audit_gets_the_reject_mode_verdict_in_every_mode(
    #[case] file: &str,
    #[case] settings: Value,
) {
    let audit = fixture(file);
    let mut registry = TestRegistry::default();
    let (outcome, mutated) = evaluate_with(&audit, &settings, &mut registry);
    let mut reject = settings.clone();
    reject["mode"] = json!("reject");
    // Reject mode takes no pinDigests: it pins nothing.
    reject.as_object_mut().unwrap().remove("pinDigests");
    let expected = evaluate(&from_the_api_server(&audit), &reject);
    assert!(!expected.accepted, "{expected:?}");
    assert!(!outcome.accepted, "{outcome:?}");
    assert_eq!(outcome.message, expected.message);
    assert!(outcome
        .message
        .unwrap()
        .contains("imagePullPolicy is IfNotPresent, must be Always"));
    assert!(
        outcome.warnings.is_empty() && mutated.is_none(),
        "{:?}",
        outcome.warnings
    );
    assert!(registry.asked.is_empty(), "{:?}", registry.asked);
}

#[rstest]
#[case::owned_replicaset("e2e/replicaset-owned-by-deployment.json")]
#[case::owned_job("e2e/job-owned-by-cronjob.json")]
#[case::latest_init_container("e2e/deployment-init-latest.json")]
fn an_audit_refuses_what_mutate_mode_leaves_to_a_controller(#[case] file: &str) {
    let request = fixture(file);
    let mutate = evaluate(&request, &defaults());
    let audit = evaluate(&as_audit(&request), &defaults());
    let reject = evaluate(&request, &json!({"mode": "reject"}));
    assert!(!reject.accepted, "{reject:?}");
    assert!(!audit.accepted, "{audit:?}");
    assert_eq!(audit.message, reject.message);
    assert!(audit.changed.is_empty());
    // What admission does with it is unchanged.
    assert!(
        mutate.accepted || mutate.message == reject.message,
        "{mutate:?}"
    );
}

#[rstest]
#[case::mutate(json!({}))]
#[case::warn(json!({"mode": "warn"}))]
#[case::reject(json!({"mode": "reject"}))]
#[case::pinning(json!({"pinDigests": "all", "pinRegistries": ["registry.example.com/*"]}))]
fn a_compliant_object_passes_its_audit_without_a_registry_call(#[case] settings: Value) {
    let mut registry = TestRegistry::default();
    let (outcome, mutated) = evaluate_with(
        &fixture("audit/deployment-compliant.json"),
        &settings,
        &mut registry,
    );
    assert!(outcome.accepted, "{outcome:?}");
    assert!(
        outcome.warnings.is_empty() && mutated.is_none(),
        "{outcome:?}"
    );
    assert!(registry.asked.is_empty(), "{:?}", registry.asked);
}

#[test]
fn the_same_object_from_the_api_server_is_mutated_and_pinned() {
    let api_server = from_the_api_server(&fixture("audit/deployment-ifnotpresent.json"));
    let outcome = evaluate(&api_server, &defaults());
    assert!(outcome.accepted, "{outcome:?}");
    assert_eq!(
        outcome.changed,
        ["/spec/template/spec/containers/0/imagePullPolicy"]
    );
    let compliant = from_the_api_server(&fixture("audit/deployment-compliant.json"));
    let (_, asked, _) = evaluate_pinning(&compliant, &json!({"pinDigests": "all"}));
    assert_eq!(asked, ["registry.example.com/team/api:2.8.1"]);
}
