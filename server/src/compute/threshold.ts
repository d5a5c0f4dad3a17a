// The size below which `auto` never tries a GPU backend (its own module: the language server's
// main thread reads it for the listing header without loading any backend).

/**
 * With `auto`, models with fewer weights than this stay on the CPU without trying any GPU
 * backend: the CPU balances them in about a second or less, while starting Python and
 * importing torch alone takes 1.5–3 s. 2^24 ≈ 16.8 M weights (64 MB of float32).
 */
export const AUTO_DEVICE_MIN_ELEMENTS = 1 << 24;
