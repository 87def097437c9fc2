//! The allocator's settings for a process that handles one image after another.

/// Makes the allocator keep freed memory for the next image (glibc; a no-op elsewhere). Returns
/// whether the settings took.
///
/// With glibc's defaults, a buffer of 128 KiB or more is a mapping of its own, unmapped when it is
/// freed, and the heap is trimmed whenever 128 KiB lies free at its top. Every image then faults
/// in fresh zeroed pages for its pixels: a quarter of the time of a small image went to the kernel
/// (perf, an 807x606 GIF). An instance processes one image after another, so buffers up to 32 MiB
/// (glibc's largest threshold) come from the heap, and what is freed stays there for the next
/// image. Peak RSS is the same: that memory was in use at the peak anyway.
pub fn keep_freed_memory() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only changes glibc's malloc parameters; it is safe at any time.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20) == 1
                && libc::mallopt(libc::M_TRIM_THRESHOLD, 256 << 20) == 1
        }
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[test]
    fn a_pixel_buffer_comes_from_the_heap_once_freed_memory_is_kept() {
        // glibc marks a chunk that is a mapping of its own with bit 1 of its size word.
        fn is_own_mapping(buffer: &[u8]) -> bool {
            // SAFETY: every glibc chunk has its size word just before the pointer malloc returned.
            let size_word = unsafe { *buffer.as_ptr().cast::<usize>().offset(-1) };
            size_word & 2 != 0
        }
        assert!(keep_freed_memory());
        let pixels = vec![1u8; 4 << 20];
        assert!(
            !is_own_mapping(&pixels),
            "a 4 MiB buffer is still a mapping of its own"
        );
    }
}
