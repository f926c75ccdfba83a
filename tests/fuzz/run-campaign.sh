#!/usr/bin/env bash
# Runs a libFuzzer campaign on every fuzz target, starting from its corpus. NOT part of the
# test suite (`meson test --suite fuzz` only replays the corpus); run it by hand or from a
# nightly job:
#
#   tests/fuzz/run-campaign.sh [SECONDS-PER-TARGET]     (default 300)
#
# It configures build-fuzz/ in the source tree with clang, -Dllvm-fuzz=true, ASan+UBSan and
# -fsanitize=fuzzer-no-link on all code (so libpilotfish is coverage-instrumented too), builds
# the `fuzzers` alias, then runs each fuzz-<input> for the given time, seeded from
# corpus/<input>/ (which it only reads). New inputs land in build-fuzz/fuzz-corpus/<input>/ and crashes in
# build-fuzz/fuzz-artifacts/<input>/; copy the interesting ones into corpus/<input>/ (each
# becomes a test) after minimising them with `fuzz-<input> -minimize_crash=1 FILE`.
#
# Needs: clang with the libFuzzer runtime (Debian 12: packages clang-14 and libclang-rt-14-dev,
# which holds libclang_rt.fuzzer-x86_64.a), meson, ninja and the build dependencies
# (libmnl-dev). Check with:
#   echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n){return 0;}' |
#     clang -x c -fsanitize=fuzzer - -o /dev/null
# Environment: JOBS (parallel workers per target, default 1; their logs go to
# build-fuzz/fuzz-N.log), FUZZ_ARGS (extra libFuzzer flags), BUILD_DIR (default build-fuzz).
set -euo pipefail

seconds=${1:-300}
case $seconds in
''|*[!0-9]*) echo "usage: $0 [SECONDS-PER-TARGET]" >&2; exit 2;;
esac
src=$(cd "$(dirname "$0")/../.." && pwd)
build=${BUILD_DIR:-$src/build-fuzz}
jobs=${JOBS:-1}

command -v clang >/dev/null || { echo "clang not found" >&2; exit 1; }
if ! echo 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n){return 0;}' |
        clang -x c -fsanitize=fuzzer - -o /dev/null 2>/dev/null; then
        echo "clang cannot link -fsanitize=fuzzer: install the libFuzzer runtime (libclang-rt-14-dev)" >&2
        exit 1
fi

if [ ! -f "$build/build.ninja" ]; then
        CC=clang meson setup "$build" "$src" \
                -Dllvm-fuzz=true \
                -Db_sanitize=address,undefined \
                -Db_lundef=false \
                --buildtype=debugoptimized \
                -Dc_args='-fsanitize=fuzzer-no-link -fno-omit-frame-pointer -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION'
fi
ninja -C "$build" fuzzers

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:fast_unwind_on_malloc=0}
# Known leaks inside Debian's libraries (each explained in the file).
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$src/tests/fuzz/lsan.supp}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
parallel=()
# libFuzzer sends each worker's output to fuzz-N.log in the current directory.
[ "$jobs" -gt 1 ] && parallel=(-jobs="$jobs" -workers="$jobs")
cd "$build"
status=0
for dir in "$src"/tests/fuzz/corpus/*/; do
        input=$(basename "$dir")
        exe="$build/tests/fuzz/fuzz-$input"
        [ -x "$exe" ] || { echo "no fuzzer for corpus/$input" >&2; status=1; continue; }
        work="$build/fuzz-corpus/$input"
        artifacts="$build/fuzz-artifacts/$input/"
        mkdir -p "$work" "$artifacts"
        echo "== fuzz-$input for ${seconds}s (corpus: $dir, new inputs: $work, crashes: $artifacts)"
        # shellcheck disable=SC2086 # FUZZ_ARGS is a list of flags
        if ! "$exe" -max_total_time="$seconds" -max_len=4096 -timeout=10 -print_final_stats=1 \
                "${parallel[@]}" -artifact_prefix="$artifacts" ${FUZZ_ARGS:-} \
                "$work" "$dir"; then
                echo "fuzz-$input found a problem: see $artifacts" >&2
                status=1
        fi
done
exit $status
