//! The way a request travels: payload → request view → pod spec → image slots → changed
//! slots (UPDATE) → rules → decision → response.

use kubewarden_policy_sdk::settings::SettingsValidationResponse;

use crate::decision::{decide, Context, Decision};
use crate::error::RequestError;
use crate::pinning::{apply_pins, known_failures, plan, resolve, Registry};
use crate::request::{Json, Node, Obj, Operation, Payload, Shaped, Workload};
use crate::response::{refusal, respond, ValidationResponse};
use crate::rules::{check, Rule};
use crate::settings::{Mode, PinScope, RegistryFailure, Settings, SettingsError, SettingsErrors};
use crate::slots::{image_slots, ImageSlot};
use crate::update::changed_slots;

/// Evaluates one `validate` payload; every outcome, including unreadable input, is a response.
/// `registry` resolves tags when `pinDigests` asks for it.
pub fn validate(payload: &[u8], registry: &mut impl Registry) -> ValidationResponse {
    match Payload::parse(payload) {
        Ok(parsed) => respond(evaluate(&parsed, registry), payload),
        Err(error) => refusal(&error),
    }
}

/// Answers `validate_settings`: the raw settings object.
pub fn validate_settings(payload: &[u8]) -> SettingsValidationResponse {
    let parsed = std::str::from_utf8(payload)
        .map_err(|error| SettingsErrors(vec![SettingsError::Unreadable(error.to_string())]))
        .and_then(Settings::from_json);
    match parsed {
        Ok(_) => SettingsValidationResponse {
            valid: true,
            message: None,
        },
        Err(errors) => SettingsValidationResponse {
            valid: false,
            message: Some(errors.to_string()),
        },
    }
}

fn evaluate<'a>(
    payload: &Payload<'a>,
    registry: &mut impl Registry,
) -> Result<Decision<'a>, RequestError> {
    let settings = Settings::from_json(payload.settings.map_or("{}", Json::get))
        .map_err(RequestError::InvalidSettings)?;
    let request = &payload.request;
    let (Some(operation), Some(workload)) = (request.evaluated_operation(), request.workload())
    else {
        return Ok(Decision::default());
    };
    let object = request.object.as_ref().ok_or(RequestError::NoObject)?;
    let mut slots = image_slots(workload.pod_spec(object)?, workload.pod_spec_path)?;
    if operation == Operation::Update {
        // An old object that cannot be read leaves every slot to be evaluated.
        if let Some(old_slots) = request
            .old_object
            .as_ref()
            .and_then(|old| readable_slots(workload, old))
        {
            slots = changed_slots(slots, &old_slots);
        }
    }
    let checked = check_slots(&settings, &slots, |_| false);
    let updates_existing_pod = operation == Operation::Update && workload.is_pod();
    let pins = settings.pin_digests != PinScope::Off;
    // Only a workload's mutation depends on its controller.
    let has_controller = !workload.is_pod()
        && settings.mode == Mode::Mutate
        && (!checked.is_empty() || pins)
        && matches!(&object.0, Shaped::Fits(node) if node.has_controller());
    let context = Context {
        mode: settings.mode,
        mutate_templates: settings.mutate_templates,
        is_pod: workload.is_pod(),
        has_controller,
        updates_existing_pod,
        adds_ephemeral_containers: updates_existing_pod && request.is_ephemeral_containers_update(),
        pin_digests: settings.pin_digests,
        audit: request.is_audit(),
    };
    // No registry call for an audit: its verdict is about the object as it is.
    if !context.pins() || context.audit {
        return Ok(decide(&context, &checked));
    }
    Ok(pin_and_decide(&settings, &context, &slots, registry))
}

/// The decision when tags are pinned to digests: apart, so that the requests that pin nothing
/// run through less code.
#[inline(never)]
fn pin_and_decide<'a>(
    settings: &Settings,
    context: &Context,
    slots: &[ImageSlot<'a>],
    registry: &mut impl Registry,
) -> Decision<'a> {
    let plan = plan(settings, slots);
    // The rules that depend on a digest (requireDigest, and the pull policy under
    // requireAlwaysForDigests: false) are judged first as if every image asked about were
    // pinned, then again on the registry's answers: no call for a request refused anyway.
    let asks = |slot: &ImageSlot<'_>| {
        plan.iter()
            .any(|(planned, failure)| planned.location == slot.location && failure.is_none())
    };
    let mut optimistic = decide(context, &check_slots(settings, slots, asks));
    let rejects = settings.registry_failure == RegistryFailure::Reject;
    if plan.is_empty() || !optimistic.refusals.is_empty() {
        // Refused anyway: under reject, also say why an image could not be pinned.
        if rejects {
            apply_pins(
                &mut optimistic,
                &known_failures(plan),
                settings.registry_failure,
            );
        }
        return optimistic;
    }
    // Under registryFailure reject, an image that cannot be pinned refuses the request: the
    // registry is not asked about the others.
    let resolved = if rejects && plan.iter().any(|(_, failure)| failure.is_some()) {
        known_failures(plan)
    } else {
        resolve(plan, registry)
    };
    let is_pinned = |slot: &ImageSlot<'_>| {
        resolved
            .iter()
            .any(|(pinned, answer)| pinned.location == slot.location && answer.is_ok())
    };
    let mut decision = decide(context, &check_slots(settings, slots, is_pinned));
    apply_pins(&mut decision, &resolved, settings.registry_failure);
    decision
}

/// The slots that break a rule, with the rules they break; `pinned` says which get a digest.
fn check_slots<'s, 'a>(
    settings: &Settings,
    slots: &'s [ImageSlot<'a>],
    pinned: impl Fn(&ImageSlot<'a>) -> bool,
) -> Vec<(&'s ImageSlot<'a>, Vec<Rule>)> {
    slots
        .iter()
        .filter_map(|slot| {
            let broken = check(settings, slot, pinned(slot));
            (!broken.is_empty()).then_some((slot, broken))
        })
        .collect()
}

#[inline(never)]
fn readable_slots<'a>(
    workload: &Workload,
    old_object: &Obj<Box<Node<'a>>>,
) -> Option<Vec<ImageSlot<'a>>> {
    let pod_spec = workload.pod_spec(old_object).ok()?;
    image_slots(pod_spec, workload.pod_spec_path).ok()
}
