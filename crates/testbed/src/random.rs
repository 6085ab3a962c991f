//! Unpredictable tags, ports and nonces from the kernel (`getrandom(2)`), so concurrent probes
//! (and other testbeds' probes) never mistake each other's replies for their own.

/// `N` random bytes.
pub(crate) fn bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    let mut filled = 0;
    while filled < N {
        // SAFETY: writes at most N - filled bytes into the rest of `buf`.
        let n = unsafe { libc::getrandom(buf[filled..].as_mut_ptr().cast(), N - filled, 0) };
        if n > 0 {
            filled += n as usize;
        }
    }
    buf
}

/// A random non-zero u32 (SCTP forbids an initiate tag of 0).
pub(crate) fn nonzero_u32() -> u32 {
    loop {
        let v = u32::from_ne_bytes(bytes::<4>());
        if v != 0 {
            return v;
        }
    }
}

/// A random port in the Linux ephemeral range 32768..=60999.
pub(crate) fn ephemeral_port() -> u16 {
    32768 + (u16::from_ne_bytes(bytes::<2>()) % (60999 - 32768 + 1))
}
