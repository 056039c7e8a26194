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

/// Where allocation starts: room inside the module's initial memory. Growing the memory costs
/// every instance a call out of the module and an `mprotect` the host's other threads feel, so
/// a request that fits here never grows it.
#[cfg(target_arch = "wasm32")]
const FIRST_BYTES: usize = 128 * 1024;

#[cfg(target_arch = "wasm32")]
#[repr(align(16))]
struct First(std::cell::UnsafeCell<[u8; FIRST_BYTES]>);

// SAFETY: a wasm32-wasip1 module has one thread, and only the arena touches the bytes.
#[cfg(target_arch = "wasm32")]
unsafe impl Sync for First {}

#[cfg(target_arch = "wasm32")]
static FIRST: First = First(std::cell::UnsafeCell::new([0; FIRST_BYTES]));

/// A run of memory the arena allocates from: `[start, end)`.
#[derive(Clone, Copy)]
struct Chunk {
    start: usize,
    end: usize,
}

pub(crate) struct Arena {
    /// Where the next allocation may start, in the chunk in use.
    next: Cell<usize>,
    /// The end of the chunk in use.
    end: Cell<usize>,
    /// The room inside the initial memory (empty until the first allocation).
    first: Cell<Chunk>,
    /// Memory the arena grew, used once `first` is full; kept for the next call.
    grown: Cell<Chunk>,
    /// Where the arena starts over: past what was allocated before `settle`.
    mark: Cell<usize>,
    /// Allocations at or past `mark` not yet freed.
    live: Cell<usize>,
    /// The room inside the initial memory.
    first_room: fn() -> Chunk,
    /// `memory.grow` on memory 0: the old size in pages, or `None`.
    grow: fn(usize) -> Option<usize>,
}

const EMPTY: Chunk = Chunk { start: 0, end: 0 };

// SAFETY: a wasm32-wasip1 module has one thread.
unsafe impl Sync for Arena {}

impl Arena {
    #[cfg(target_arch = "wasm32")]
    pub(crate) const fn new() -> Self {
        Self::with_memory(first_room, grow)
    }

    const fn with_memory(first_room: fn() -> Chunk, grow: fn(usize) -> Option<usize>) -> Self {
        Self {
            next: Cell::new(0),
            end: Cell::new(0),
            first: Cell::new(EMPTY),
            grown: Cell::new(EMPTY),
            mark: Cell::new(0),
            live: Cell::new(0),
            first_room,
            grow,
        }
    }

    /// Marks what is allocated so far as the instance's own: it is never taken back.
    pub(crate) fn settle(&self) {
        self.mark.set(self.next.get());
        self.live.set(0);
    }

    /// Back to the mark, in the chunk that holds it.
    fn start_over(&self) {
        let mark = self.mark.get();
        let grown = self.grown.get();
        let chunk = if (grown.start..=grown.end).contains(&mark) && grown.end > 0 {
            grown
        } else {
            self.first.get()
        };
        self.next.set(mark);
        self.end.set(chunk.end);
    }

    /// `size` bytes aligned to `align` from `next`: in the chunk in use, else in the grown
    /// memory, else in memory grown now.
    fn bump(&self, size: usize, align: usize) -> Option<usize> {
        let start = self.next.get().checked_next_multiple_of(align)?;
        let end = start.checked_add(size)?;
        if end <= self.end.get() {
            self.next.set(end);
            return Some(start);
        }
        if self.end.get() == 0 {
            let first = (self.first_room)();
            self.first.set(first);
            self.next.set(first.start);
            self.end.set(first.end);
            self.mark.set(first.start);
            if first.end > first.start {
                return self.bump(size, align);
            }
        }
        let grown = self.grown.get();
        if self.end.get() != grown.end && grown.end > grown.start {
            // `first` is full: go on in the memory grown before.
            self.next.set(grown.start);
            self.end.set(grown.end);
            return self.bump(size, align);
        }
        // At least four pages a time: fewer calls out of the module for a large request.
        let pages = size.checked_add(align)?.div_ceil(PAGE).max(4);
        let base = (self.grow)(pages)?.checked_mul(PAGE)?;
        let added = base.checked_add(pages.checked_mul(PAGE)?)?;
        if base == grown.end && grown.end > grown.start {
            self.grown.set(Chunk {
                start: grown.start,
                end: added,
            });
        } else {
            // The first growth, or memory grown by another allocator (wasi-libc's, which this
            // module does not call) in between: the arena's grown memory starts here.
            self.grown.set(Chunk {
                start: base,
                end: added,
            });
            self.next.set(base);
        }
        self.end.set(added);
        self.bump(size, align)
    }
}

#[cfg(target_arch = "wasm32")]
fn first_room() -> Chunk {
    let start = FIRST.0.get() as usize;
    Chunk {
        start,
        end: start + FIRST_BYTES,
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
            self.start_over();
        } else if start + layout.size() == self.next.get() {
            // The newest allocation: its room is free again at once.
            self.next.set(start);
        }
    }

    #[inline(never)]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let start = ptr as usize;
        let newest = start >= self.mark.get() && start + layout.size() == self.next.get();
        // A block that shrinks stays where it is (`into_boxed_str`, `shrink_to_fit`).
        if new_size <= layout.size() {
            if newest {
                self.next.set(start + new_size);
            }
            return ptr;
        }
        // The newest allocation grows where it is: a Vec pushed to keeps its place.
        if newest {
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

    /// Memory for one test: room of 1 KiB as in the initial memory, and 64 pages of real
    /// memory, aligned as wasm pages, grown as wasm grows.
    mod memory {
        use super::{Chunk, PAGE};
        use std::cell::Cell;

        fn region(bytes: usize, align: usize) -> usize {
            let layout = std::alloc::Layout::from_size_align(bytes, align).unwrap();
            unsafe { std::alloc::alloc_zeroed(layout) as usize }
        }

        thread_local! {
            static FIRST: usize = region(1024, 16);
            static BASE: usize = region(64 * PAGE, PAGE);
            static USED: Cell<usize> = const { Cell::new(0) };
        }

        pub fn first_room() -> Chunk {
            let start = FIRST.with(|first| *first);
            Chunk {
                start,
                end: start + 1024,
            }
        }

        pub fn no_room() -> Chunk {
            Chunk { start: 0, end: 0 }
        }

        pub fn grow(pages: usize) -> Option<usize> {
            let used = USED.get();
            (used + pages <= 64).then(|| {
                USED.set(used + pages);
                BASE.with(|base| base / PAGE) + used
            })
        }

        pub fn pages_grown() -> usize {
            USED.get()
        }
    }

    fn arena() -> Arena {
        Arena::with_memory(memory::no_room, memory::grow)
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
        // A block that is not the newest shrinks where it is.
        let newest = unsafe { arena.alloc(layout(8)) };
        assert_eq!(unsafe { arena.realloc(moved, layout(128), 32) }, moved);
        // The newest one gives its room back.
        assert_eq!(unsafe { arena.realloc(newest, layout(8), 4) }, newest);
        let after = unsafe { arena.alloc(Layout::from_size_align(4, 1).unwrap()) };
        assert_eq!(after as usize, newest as usize + 4);
    }

    #[test]
    fn the_initial_room_comes_first_then_grown_memory_reused_call_after_call() {
        let arena = Arena::with_memory(memory::first_room, memory::grow);
        let registry = unsafe { arena.alloc(layout(16)) };
        assert_eq!(registry as usize, memory::first_room().start);
        arena.settle();
        let call = || {
            let small = unsafe { arena.alloc(layout(512)) };
            let large = unsafe { arena.alloc(layout(3000)) };
            unsafe {
                large.write_bytes(1, 3000);
                arena.dealloc(small, layout(512));
                arena.dealloc(large, layout(3000));
            }
            (small as usize, large as usize)
        };
        let (small, large) = call();
        let room = memory::first_room();
        assert!((room.start..room.end).contains(&small));
        assert!(!(room.start..room.end).contains(&large));
        let grown = memory::pages_grown();
        assert!(grown > 0);
        for _ in 0..10 {
            assert_eq!(call(), (small, large));
        }
        assert_eq!(memory::pages_grown(), grown);
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
