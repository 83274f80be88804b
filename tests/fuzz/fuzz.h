/* fuzz.h - libFuzzer targets for the parsers of untrusted input.
 *
 * Each fuzz_*.c defines LLVMFuzzerTestOneInput (and may define
 * LLVMFuzzerInitialize).  Built with clang -fsanitize=fuzzer,address,
 * undefined by `make fuzz` (long runs) and `make test` (a bounded number
 * of runs over tests/fuzz/corpus/<target>/).  A target must never leak,
 * crash or read out of bounds, whatever the bytes.
 */
#ifndef FS_FUZZ_H
#define FS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#endif
