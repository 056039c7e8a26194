//! The module's allocator: a bump arena that starts over once a request's allocations are all
//! freed.
//!
//! The policy server runs every request in a fresh instance, so a request's allocations never
//! outlive it; a general-purpose allocator spends most of its work, and a cold instance most of
//! its cache misses, on reuse that never comes. Here an allocation is a pointer bump, and a
//! free only counts. What `wapc_init` allocates (the function registry) stays for the
//! instance's life: `settle` marks it, and everything allocated after the mark is taken back
//! at once when the last of it is freed. So a host that keeps one instance for many calls
//! (`kwctl bench`, a warm benchmark) reuses the same memory call after call instead of growing
//! it.
//!
//! Only on wasm32: the native builds (tests, fuzzing) keep the system allocator.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;

const PAGE: usize = 65536;

pub(crate) struct Arena {
    /// Where the next allocation may start.
    next: Cell<usize>,
    /// The end of the memory the arena has grown.
    end: Cell<usize>,
    /// Where the arena starts over: past what was allocated before `settle`.
    mark: Cell<usize>,
    /// Allocations at or past `mark` not yet freed.
    live: Cell<usize>,
    /// `memory.grow` on memory 0: the old size in pages, or `None`.
    grow: fn(usize) -> Option<usize>,
}

// SAFETY: a wasm32-wasip1 module has one thread.
unsafe impl Sync for Arena {}

impl Arena {
    #[cfg(target_arch = "wasm32")]
    pub(crate) const fn new() -> Self {
        Self::with_memory(grow)
    }

    const fn with_memory(grow: fn(usize) -> Option<usize>) -> Self {
        Self {
            next: Cell::new(0),
            end: Cell::new(0),
            mark: Cell::new(0),
            live: Cell::new(0),
            grow,
        }
    }

    /// Marks what is allocated so far as the instance's own: it is never taken back.
    pub(crate) fn settle(&self) {
        self.mark.set(self.next.get());
        self.live.set(0);
    }

    /// `size` bytes aligned to `align` from `next`, growing the memory when they do not fit.
    fn bump(&self, size: usize, align: usize) -> Option<usize> {
        let start = self.next.get().checked_next_multiple_of(align)?;
        let end = start.checked_add(size)?;
        if end <= self.end.get() {
            self.next.set(end);
            return Some(start);
        }
        // At least four pages a time: fewer calls out of the module for a large request.
        let pages = size.checked_add(align)?.div_ceil(PAGE).max(4);
        let base = (self.grow)(pages)?.checked_mul(PAGE)?;
        if base != self.end.get() {
            // Memory grown by another allocator (wasi-libc's, which this module does not call)
            // leaves a gap that is not the arena's: start over on the new pages, and never go
            // back below them. What lies below is left as it is, its frees ignored.
            self.next.set(base);
            self.mark.set(base);
            self.live.set(0);
        }
        self.end.set(base.checked_add(pages.checked_mul(PAGE)?)?);
        self.bump(size, align)
    }
}

#[cfg(target_arch = "wasm32")]
fn grow(pages: usize) -> Option<usize> {
    let old = core::arch::wasm32::memory_grow(0, pages);
    (old != usize::MAX).then_some(old)
}

// Out of line: inlined, the arena would be copied into every place that allocates.
unsafe impl GlobalAlloc for Arena {
    #[inline(never)]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        match self.bump(layout.size(), layout.align()) {
            Some(start) => {
                if start >= self.mark.get() {
                    self.live.set(self.live.get() + 1);
                }
                start as *mut u8
            }
            None => std::ptr::null_mut(),
        }
    }

    #[inline(never)]
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let start = ptr as usize;
        if start < self.mark.get() {
            return;
        }
        let live = self.live.get().saturating_sub(1);
        self.live.set(live);
        if live == 0 {
            self.next.set(self.mark.get());
        } else if start + layout.size() == self.next.get() {
            // The newest allocation: its room is free again at once.
            self.next.set(start);
        }
    }

    #[inline(never)]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let start = ptr as usize;
        // The newest allocation grows or shrinks where it is: a Vec pushed to keeps its place.
        if start >= self.mark.get() && start + layout.size() == self.next.get() {
            if let Some(end) = start
                .checked_add(new_size)
                .filter(|&end| end <= self.end.get())
            {
                self.next.set(end);
                return ptr;
            }
        }
        let Ok(new_layout) = Layout::from_size_align(new_size, layout.align()) else {
            return std::ptr::null_mut();
        };
        // SAFETY: as GlobalAlloc::realloc asks of its callers.
        unsafe {
            let moved = self.alloc(new_layout);
            if !moved.is_null() {
                std::ptr::copy_nonoverlapping(ptr, moved, layout.size().min(new_size));
                self.dealloc(ptr, layout);
            }
            moved
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Memory for one test: 64 pages of real memory, aligned as wasm pages, grown as wasm grows.
    mod memory {
        use std::cell::Cell;

        thread_local! {
            static BASE: usize = {
                let layout = std::alloc::Layout::from_size_align(64 * super::PAGE, super::PAGE).unwrap();
                unsafe { std::alloc::alloc_zeroed(layout) as usize }
            };
            static USED: Cell<usize> = const { Cell::new(0) };
        }

        pub fn grow(pages: usize) -> Option<usize> {
            let used = USED.get();
            (used + pages <= 64).then(|| {
                USED.set(used + pages);
                BASE.with(|base| base / super::PAGE) + used
            })
        }
    }

    fn arena() -> Arena {
        Arena::with_memory(memory::grow)
    }

    fn layout(size: usize) -> Layout {
        Layout::from_size_align(size, 8).unwrap()
    }

    #[test]
    fn allocations_are_aligned_apart_and_writable() {
        let arena = arena();
        let a = unsafe { arena.alloc(Layout::from_size_align(3, 1).unwrap()) };
        let b = unsafe { arena.alloc(Layout::from_size_align(16, 16).unwrap()) };
        assert!(!a.is_null() && !b.is_null());
        assert_eq!(b as usize % 16, 0);
        assert!(b as usize >= a as usize + 3);
        unsafe {
            a.write_bytes(1, 3);
            b.write_bytes(2, 16);
            assert_eq!(*a.add(2), 1);
        }
    }

    #[test]
    fn the_arena_starts_over_once_every_allocation_after_the_mark_is_freed() {
        let arena = arena();
        let kept = unsafe { arena.alloc(layout(100)) };
        arena.settle();
        let first = unsafe { arena.alloc(layout(40)) };
        let second = unsafe { arena.alloc(layout(40)) };
        unsafe { arena.dealloc(first, layout(40)) };
        // One is still live: nothing is taken back but the newest allocation's room.
        let third = unsafe { arena.alloc(layout(8)) };
        assert!(third as usize > second as usize);
        unsafe {
            arena.dealloc(second, layout(40));
            arena.dealloc(third, layout(8));
            // What was allocated before the mark stays: freeing it changes nothing.
            arena.dealloc(kept, layout(100));
        }
        let again = unsafe { arena.alloc(layout(40)) };
        assert_eq!(again, first);
        assert!(again as usize >= kept as usize + 100);
    }

    #[test]
    fn the_newest_allocation_grows_in_place_and_others_move() {
        let arena = arena();
        arena.settle();
        let vec = unsafe { arena.alloc(layout(16)) };
        unsafe { vec.write_bytes(7, 16) };
        let grown = unsafe { arena.realloc(vec, layout(16), 64) };
        assert_eq!(grown, vec);
        let other = unsafe { arena.alloc(layout(8)) };
        let moved = unsafe { arena.realloc(grown, layout(64), 128) };
        assert_ne!(moved, grown);
        assert!(moved as usize > other as usize);
        assert_eq!(unsafe { *moved.add(15) }, 7);
    }

    #[test]
    fn memory_grows_for_a_large_allocation_and_runs_out_cleanly() {
        let arena = arena();
        arena.settle();
        let large = unsafe { arena.alloc(layout(5 * PAGE)) };
        assert!(!large.is_null());
        unsafe { large.add(5 * PAGE - 1).write(1) };
        let too_large = unsafe { arena.alloc(layout(64 * PAGE)) };
        assert!(too_large.is_null());
    }
}
