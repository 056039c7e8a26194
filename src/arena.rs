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
//! The arena starts right after the module's statics, in the memory the instance starts with,
//! and serves C's `malloc` as well, so that wasi-libc's allocator is not linked in at all.
//!
//! Only on wasm32: the native builds (tests, fuzzing) keep the system allocator.

use std::alloc::{GlobalAlloc, Layout};
use std::cell::Cell;

const PAGE: usize = 65536;

/// A run of memory the arena allocates from: `[start, end)`.
#[derive(Clone, Copy)]
struct Chunk {
    start: usize,
    end: usize,
}

impl Chunk {
    fn is_empty(self) -> bool {
        self.end <= self.start
    }
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
        let chunk = if !grown.is_empty() && (grown.start..=grown.end).contains(&mark) {
            grown
        } else {
            self.first.get()
        };
        self.next.set(mark);
        self.end.set(chunk.end);
    }

    /// Whether the block at `start` is the newest of the call's allocations: the one that ends
    /// where the next begins.
    fn is_newest(&self, start: usize, size: usize) -> bool {
        start >= self.mark.get() && start + size == self.next.get()
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
            if !first.is_empty() {
                return self.bump(size, align);
            }
        }
        let grown = self.grown.get();
        if !grown.is_empty() && self.end.get() != grown.end {
            // `first` is full: go on in the memory grown before.
            self.next.set(grown.start);
            self.end.set(grown.end);
            return self.bump(size, align);
        }
        // At least four pages a time: fewer calls out of the module for a large request.
        let pages = size.checked_add(align)?.div_ceil(PAGE).max(4);
        let base = (self.grow)(pages)?.checked_mul(PAGE)?;
        let added = base.checked_add(pages.checked_mul(PAGE)?)?;
        if !grown.is_empty() && base == grown.end {
            self.grown.set(Chunk {
                start: grown.start,
                end: added,
            });
        } else {
            // The first growth, or memory grown by someone else in between (nothing in this
            // module does): the arena's grown memory starts here.
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

/// The initial memory past the module's statics (`__heap_base`, set by the linker): on the pages
/// the statics already touch, and inside the memory the instance starts with, so that a request
/// that fits there neither faults in a page more nor grows the memory.
#[cfg(target_arch = "wasm32")]
fn first_room() -> Chunk {
    extern "C" {
        static __heap_base: u8;
    }
    let start = std::ptr::addr_of!(__heap_base) as usize;
    let end = core::arch::wasm32::memory_size(0) * PAGE;
    Chunk {
        start,
        end: end.max(start),
    }
}

/// The C allocator, for the few allocations wasi-libc and std make through it (a thread handle,
/// the environment, both on the way to a panic): from the arena too, so that no second
/// allocator is linked in or shares the arena's memory. A C block is never taken back, so once
/// one is made the arena no longer starts over.
mod c_allocator {
    use super::{Arena, Layout};
    use std::alloc::GlobalAlloc;

    /// What C's `malloc` guarantees: alignment for any type.
    pub(super) const ALIGN: usize = 16;

    pub(super) fn aligned(arena: &Arena, align: usize, size: usize) -> *mut u8 {
        match Layout::from_size_align(size.max(1), align.max(ALIGN)) {
            // SAFETY: the layout is not empty.
            Ok(layout) => unsafe { arena.alloc(layout) },
            Err(_) => std::ptr::null_mut(),
        }
    }

    pub(super) fn zeroed(arena: &Arena, count: usize, size: usize) -> *mut u8 {
        let Some(bytes) = count.checked_mul(size) else {
            return std::ptr::null_mut();
        };
        let block = aligned(arena, ALIGN, bytes);
        if !block.is_null() {
            // SAFETY: the block holds `bytes` bytes (room the arena reuses is not zero).
            unsafe { block.write_bytes(0, bytes) };
        }
        block
    }

    /// C's `realloc` without the old size: a C block is never freed, so the blocks after it
    /// are newer, and it is at most as long as the distance to the new one.
    ///
    /// # Safety
    /// `block` is null or a block of this arena's C allocator.
    pub(super) unsafe fn moved(arena: &Arena, block: *mut u8, size: usize) -> *mut u8 {
        let moved = aligned(arena, ALIGN, size);
        if !block.is_null() && !moved.is_null() {
            let room = (moved as usize).saturating_sub(block as usize);
            // SAFETY: `room` bytes from `block` lie before `moved`, inside the arena.
            unsafe { std::ptr::copy(block, moved, size.min(room)) };
        }
        moved
    }

    #[cfg(target_arch = "wasm32")]
    mod symbols {
        use super::{aligned, moved, zeroed, ALIGN};
        use crate::ALLOCATOR;

        #[no_mangle]
        extern "C" fn malloc(size: usize) -> *mut u8 {
            aligned(&ALLOCATOR, ALIGN, size)
        }

        #[no_mangle]
        extern "C" fn calloc(count: usize, size: usize) -> *mut u8 {
            zeroed(&ALLOCATOR, count, size)
        }

        #[no_mangle]
        unsafe extern "C" fn realloc(block: *mut u8, size: usize) -> *mut u8 {
            // SAFETY: C hands back what `malloc` gave.
            unsafe { moved(&ALLOCATOR, block, size) }
        }

        #[no_mangle]
        extern "C" fn free(_block: *mut u8) {}

        #[no_mangle]
        unsafe extern "C" fn posix_memalign(out: *mut *mut u8, align: usize, size: usize) -> i32 {
            if !align.is_power_of_two() {
                return 22; // EINVAL
            }
            let block = aligned(&ALLOCATOR, align, size);
            if block.is_null() {
                return 12; // ENOMEM
            }
            // SAFETY: the caller gives a place for the pointer.
            unsafe { out.write(block) };
            0
        }

        #[no_mangle]
        extern "C" fn aligned_alloc(align: usize, size: usize) -> *mut u8 {
            aligned(&ALLOCATOR, align, size)
        }
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
        } else if self.is_newest(start, layout.size()) {
            // The newest allocation: its room is free again at once.
            self.next.set(start);
        }
    }

    #[inline(never)]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let start = ptr as usize;
        let newest = self.is_newest(start, layout.size());
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
    fn a_c_block_is_kept_and_the_arena_no_longer_starts_over() {
        let arena = arena();
        arena.settle();
        let rust = unsafe { arena.alloc(layout(64)) };
        let c = c_allocator::zeroed(&arena, 4, 8);
        assert_eq!(c as usize % c_allocator::ALIGN, 0);
        unsafe {
            assert_eq!(std::slice::from_raw_parts(c, 32), &[0; 32]);
            c.write_bytes(9, 32);
            arena.dealloc(rust, layout(64));
        }
        // The C block is live for good: new allocations go past it, never over it.
        let after = unsafe { arena.alloc(layout(64)) };
        assert!(after as usize >= c as usize + 32);
        let grown = unsafe { c_allocator::moved(&arena, c, 100) };
        assert!(grown as usize > after as usize);
        assert_eq!(unsafe { std::slice::from_raw_parts(grown, 32) }, &[9; 32]);
        assert!(c_allocator::aligned(&arena, 24, 8).is_null());
        assert!(c_allocator::zeroed(&arena, usize::MAX, 2).is_null());
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
