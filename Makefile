# Thin wrapper around Meson: the README's two commands are `make demo` and `make test`.
# Both install what they need from Debian first (scripts/install-deps.sh).

BUILD ?= build
BUILD_SAN ?= build-san
MESON_TEST_ARGS ?= --print-errorlogs

.PHONY: all deps build build-san demo image test test-build test-san clean

all: build

deps:
	bash scripts/install-deps.sh

$(BUILD)/build.ninja:
	meson setup $(BUILD) --buildtype=debugoptimized -Dwerror=true

$(BUILD_SAN)/build.ninja:
	meson setup $(BUILD_SAN) --buildtype=debug -Db_sanitize=address,undefined

build: deps $(BUILD)/build.ninja
	ninja -C $(BUILD)

build-san: deps $(BUILD_SAN)/build.ninja
	ninja -C $(BUILD_SAN)

demo: build
	bash scripts/demo.sh $(BUILD)

# pilotfish's image from deploy/Dockerfile, built with podman (base image made with debootstrap
# when it is missing: no registry needed).
image:
	bash scripts/image.sh $(BUILD)

# Every suite (unit, conformance, e2e, fuzz corpus, lint, runtime) in a -Werror build, then
# again, less runtime, under AddressSanitizer and UndefinedBehaviorSanitizer.
test: test-build test-san

test-build: build
	meson test -C $(BUILD) $(MESON_TEST_ARGS)

# The runtime suite (podman pods from the image) runs once, above: the image holds its own build.
test-san: build-san
	ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
		meson test -C $(BUILD_SAN) $(MESON_TEST_ARGS) --no-suite runtime

clean:
	rm -rf $(BUILD) $(BUILD_SAN)
