# The project's commands. The README's two: `make demo` and `make test`.

CARGO ?= cargo
export CARGO_TARGET_DIR ?= $(CURDIR)/target
# SQLITE=system links the platform's libsqlite3 (3.35 or later) instead of the bundled SQLite.
SQLITE ?= bundled
ifeq ($(SQLITE),system)
CARGO_FEATURES := --no-default-features --features system-sqlite
else ifeq ($(SQLITE),bundled)
CARGO_FEATURES :=
else
$(error SQLITE is "bundled" (the default) or "system")
endif
PREFIX ?= /usr/local
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)

.PHONY: demo test sanitize setup lib release install

# Two processes, an app and an extension, share one database: the lock and the transactions at work.
demo: setup release
	$(MAKE) -C examples/c run LIBDIR=$(CARGO_TARGET_DIR)/release

# Every test suite, ending with one line that counts them all. Fails if any suite fails or
# cannot run where it could.
test: setup
	@scripts/test

# The tests again under AddressSanitizer (Rust and C, with LeakSanitizer) and ThreadSanitizer,
# with a nightly Rust; says that it skipped where there is none. `make test` runs it too.
sanitize: setup
	@scripts/sanitize

setup:
	@scripts/setup

lib:
	$(CARGO) build -p liblease $(CARGO_FEATURES)

release:
	$(CARGO) build -p liblease --release $(CARGO_FEATURES)

# Installs the shared and static libraries, the header and a pkg-config file under PREFIX.
install: release
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 644 include/lease.h $(DESTDIR)$(PREFIX)/include/
	install -m 755 $(CARGO_TARGET_DIR)/release/liblease.so $(DESTDIR)$(PREFIX)/lib/
	install -m 644 $(CARGO_TARGET_DIR)/release/liblease.a $(DESTDIR)$(PREFIX)/lib/
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' liblease.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/liblease.pc
	$(CARGO) build -p lease-cli --release $(CARGO_FEATURES)
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(CARGO_TARGET_DIR)/release/lease $(DESTDIR)$(PREFIX)/bin/
