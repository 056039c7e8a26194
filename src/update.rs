//! On UPDATE only what the request changes is evaluated: a label change, a finalizer removal
//! or a status write on an object that predates the policy must never fail because of it.

use std::collections::BTreeMap;

use crate::slots::{ImageSlot, SlotList};

/// The slots of `slots` that are new in their list, or whose image or pull policy differ
/// from the first slot of the same name in the same list of `old_slots`.
#[inline(never)]
pub(crate) fn changed_slots<'a>(
    slots: Vec<ImageSlot<'a>>,
    old_slots: &[ImageSlot<'_>],
) -> Vec<ImageSlot<'a>> {
    let mut old_by_name: BTreeMap<(SlotList, &str), &ImageSlot<'_>> = BTreeMap::new();
    for old in old_slots {
        old_by_name
            .entry((old.location.list, old.name.as_ref()))
            .or_insert(old);
    }
    slots
        .into_iter()
        .filter(
            |slot| match old_by_name.get(&(slot.location.list, slot.name.as_ref())) {
                Some(old) => old.image != slot.image || old.pull_policy != slot.pull_policy,
                None => true,
            },
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Step;
    use crate::slots::test_slot;

    fn slot(
        list: SlotList,
        index: usize,
        name: &'static str,
        image: &'static str,
        policy: Option<&'static str>,
    ) -> ImageSlot<'static> {
        test_slot(&[Step::Spec], list, index, name, image, policy)
    }

    fn names(slots: &[ImageSlot<'_>]) -> Vec<String> {
        slots
            .iter()
            .map(|s| format!("{:?}/{}", s.location.list, s.name))
            .collect()
    }

    #[test]
    fn unchanged_slots_are_dropped() {
        let old = vec![
            slot(
                SlotList::Containers,
                0,
                "app",
                "nginx:latest",
                Some("IfNotPresent"),
            ),
            slot(SlotList::InitContainers, 0, "setup", "busybox", None),
        ];
        assert!(changed_slots(old.clone(), &old).is_empty());
    }

    #[test]
    fn image_policy_and_new_names_are_kept() {
        let old = vec![
            slot(
                SlotList::Containers,
                0,
                "a",
                "nginx:1.26",
                Some("IfNotPresent"),
            ),
            slot(SlotList::Containers, 1, "b", "nginx:1.26", Some("Always")),
            slot(
                SlotList::Containers,
                2,
                "c",
                "nginx:1.26",
                Some("IfNotPresent"),
            ),
        ];
        let new = vec![
            slot(
                SlotList::Containers,
                0,
                "a",
                "nginx:1.27",
                Some("IfNotPresent"),
            ),
            slot(
                SlotList::Containers,
                1,
                "b",
                "nginx:1.26",
                Some("IfNotPresent"),
            ),
            slot(
                SlotList::Containers,
                2,
                "c",
                "nginx:1.26",
                Some("IfNotPresent"),
            ),
            slot(
                SlotList::Containers,
                3,
                "d",
                "nginx:1.26",
                Some("IfNotPresent"),
            ),
        ];
        assert_eq!(
            names(&changed_slots(new, &old)),
            ["Containers/a", "Containers/b", "Containers/d"]
        );
    }

    #[test]
    fn a_container_moved_to_another_list_is_new() {
        let old = vec![slot(
            SlotList::InitContainers,
            0,
            "app",
            "nginx:1",
            Some("Never"),
        )];
        let new = vec![slot(
            SlotList::Containers,
            0,
            "app",
            "nginx:1",
            Some("Never"),
        )];
        assert_eq!(names(&changed_slots(new, &old)), ["Containers/app"]);
    }

    #[test]
    fn new_ephemeral_containers_are_kept_old_ones_dropped() {
        let old = vec![slot(
            SlotList::EphemeralContainers,
            0,
            "debug-1",
            "busybox:1",
            Some("IfNotPresent"),
        )];
        let new = vec![
            slot(
                SlotList::EphemeralContainers,
                0,
                "debug-1",
                "busybox:1",
                Some("IfNotPresent"),
            ),
            slot(
                SlotList::EphemeralContainers,
                1,
                "debug-2",
                "busybox:1",
                Some("IfNotPresent"),
            ),
        ];
        assert_eq!(
            names(&changed_slots(new, &old)),
            ["EphemeralContainers/debug-2"]
        );
    }

    #[test]
    fn dropping_an_explicit_policy_is_a_change() {
        let old = vec![slot(
            SlotList::Containers,
            0,
            "a",
            "nginx:1",
            Some("Always"),
        )];
        let new = vec![slot(SlotList::Containers, 0, "a", "nginx:1", None)];
        assert_eq!(changed_slots(new, &old).len(), 1);
    }

    #[test]
    fn duplicate_names_compare_with_the_first_old_one() {
        let old = vec![
            slot(SlotList::Containers, 0, "a", "nginx:1", Some("Always")),
            slot(SlotList::Containers, 1, "a", "evil:1", Some("Never")),
        ];
        let new = vec![
            slot(SlotList::Containers, 0, "a", "nginx:1", Some("Always")),
            slot(SlotList::Containers, 1, "a", "evil:1", Some("Never")),
        ];
        let changed = changed_slots(new, &old);
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].image, "evil:1");
    }
}
