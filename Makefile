# Thin wrapper around Meson: the README's two commands are `make demo` and `make test`.
# Both install what they need from Debian first (scripts/install-deps.sh).

BUILD ?= build
BUILD_SAN ?= build-san
BUILD_TSAN ?= build-tsan
MESON_TEST_ARGS ?= --print-errorlogs

.PHONY: all deps build build-san build-tsan demo image test test-build test-san test-tsan clean

all: build

deps:
	bash scripts/install-deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=debugoptimized -Dwerror=true

$(BUILD_SAN)/build.ninja:
	meson setup $(BUILD_SAN) --buildtype=debug -Db_sanitize=address,undefined

# ThreadSanitizer. gcc links it without -Db_lundef=false (clang needs that, as for ASan).
$(BUILD_TSAN)/build.ninja:
	meson setup $(BUILD_TSAN) --buildtype=debug -Db_sanitize=thread

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

build-san: deps $(BUILD_SAN)/build.ninja
	ninja -C $(BUILD_SAN)

build-tsan: deps $(BUILD_TSAN)/build.ninja
	ninja -C $(BUILD_TSAN)

demo: build
	bash scripts/demo.sh $(BUILD)

# pilotfish's image from deploy/Dockerfile, built with podman (base image made with debootstrap
# when it is missing: no registry needed).
image:
	bash scripts/image.sh $(BUILD)

# Every suite (unit, conformance, e2e, fuzz corpus, lint, runtime) in a -Werror build, then
# again, less runtime, under AddressSanitizer and UndefinedBehaviorSanitizer, then what runs
# threads under ThreadSanitizer.
test: test-build test-san test-tsan

test-build: build
	meson test -C $(BUILD) $(MESON_TEST_ARGS)

# The runtime suite (podman pods from the image) runs once, above: the image holds its own build.
test-san: build-san
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		meson test -C $(BUILD_SAN) $(MESON_TEST_ARGS) --no-suite runtime

# Under ThreadSanitizer: every unit test (the proxy's, the relay's and the logger's among
# them: suite unit) and the e2e tests that run the proxy with several workers and its admin
# thread, or the webhook with a thread per connection (suite threads, tests/e2e/meson.build).
# A report stops the process (halt_on_error) and goes to a file in a fresh directory
# (log_path) instead of stderr: the e2e tests start the proxy in the background, as UID 1337,
# and kill it at the end, so neither its exit status nor its log would show the race. Any
# report there fails the target, printed whole. No suppressions: none has been needed.
test-tsan: build-tsan
	@reports=$$(mktemp -d /tmp/pilotfish-tsan.XXXXXX) && chmod 1777 "$$reports" && \
	start=$$(date +%s); \
	TSAN_OPTIONS="halt_on_error=1:second_deadlock_stack=1:log_path=$$reports/report" \
		meson test -C $(BUILD_TSAN) $(MESON_TEST_ARGS) --suite unit --suite threads; rc=$$?; \
	echo "ThreadSanitizer stage: $$(( $$(date +%s) - start )) s of tests"; \
	if [ -n "$$(ls -A "$$reports")" ]; then \
		cat "$$reports"/*; echo "ThreadSanitizer reported the data races above"; rc=1; \
	fi; \
	rm -rf "$$reports"; exit $$rc

clean:
	rm -rf $(BUILD) $(BUILD_SAN) $(BUILD_TSAN)
