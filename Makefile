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
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR ?= $(PREFIX)/bin
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
MAJOR := $(word 1,$(subst ., ,$(VERSION)))
MINOR := $(word 2,$(subst ., ,$(VERSION)))
RELEASE_DIR := $(CARGO_TARGET_DIR)/release

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

# The release build (the library and the lease tool), and a note of its SQLite for `make install`.
release:
	$(CARGO) build -p liblease -p lease-cli --release $(CARGO_FEATURES)
	echo $(SQLITE) > $(RELEASE_DIR)/liblease-sqlite

# What the static library needs beside it: the Rust standard library's system libraries (rustc
# --print native-static-libs, less libc), and with SQLITE=system (as the note of the build that
# `make install` installs says) libsqlite3, and the linker's --gc-sections: the archive keeps
# rusqlite functions that liblease never calls, which call functions of SQLite 3.41 to 3.44
# (sqlite3_is_interrupted, sqlite3_set_clientdata) that an older libsqlite3 lacks. The linker then
# drops them, as it does when rustc links liblease.so, instead of failing.
BUILT_SQLITE = $(shell cat $(RELEASE_DIR)/liblease-sqlite 2>/dev/null)
STATIC_LIBS = $(if $(filter system,$(BUILT_SQLITE)),-lsqlite3 )-lgcc_s -lutil -lrt -lpthread -lm -ldl
STATIC_LINK_OPTIONS = $(if $(filter system,$(BUILT_SQLITE)),--gc-sections)
comma := ,
space := $(subst ,, )
# $(call substitute,DIR,LIBS,OPTIONS): a sed filling in a template. DIR is how its directories
# under PREFIX begin: ${prefix} in the .pc, so that pkg-config --define-prefix can move them,
# PREFIX itself in the CMake package (which finds its place otherwise). LIBS and OPTIONS are
# STATIC_LIBS and STATIC_LINK_OPTIONS as the file spells them (the .pc has both in LIBS).
substitute = sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' -e 's|@MAJOR@|$(MAJOR)|' \
	-e 's|@MINOR@|$(MINOR)|' -e 's|@LIBDIR@|$(patsubst $(PREFIX)/%,$(1)/%,$(LIBDIR))|' \
	-e 's|@INCLUDEDIR@|$(patsubst $(PREFIX)/%,$(1)/%,$(INCLUDEDIR))|' -e 's|@STATIC_LIBS@|$(2)|' \
	-e 's|@STATIC_LINK_OPTIONS@|$(3)|'

# Installs what `make release` built, under PREFIX (default /usr/local): the shared library as
# LIBDIR/liblease.so.$(VERSION) with the links liblease.so.$(MAJOR) (its soname) and liblease.so,
# the static library, lease.h in INCLUDEDIR, LIBDIR/pkgconfig/liblease.pc, the CMake package in
# LIBDIR/cmake/liblease, and the lease tool in BINDIR. LIBDIR defaults to PREFIX/lib, INCLUDEDIR to
# PREFIX/include and BINDIR to PREFIX/bin; DESTDIR
# stages the whole tree under another root. It builds nothing, so that `sudo make install` does
# not run cargo as root: it fails, saying so, when the release build is missing.
install:
	@for built in $(RELEASE_DIR)/liblease.so $(RELEASE_DIR)/liblease.a $(RELEASE_DIR)/liblease-sqlite $(RELEASE_DIR)/lease; do \
	  test -f $$built || { echo "make install: $$built is missing: run 'make release' first (make install does not build)" >&2; exit 1; }; \
	done
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(LIBDIR)/cmake/liblease $(DESTDIR)$(INCLUDEDIR) $(DESTDIR)$(BINDIR)
	install -m 755 $(RELEASE_DIR)/lease $(DESTDIR)$(BINDIR)/
	install -m 644 include/lease.h $(DESTDIR)$(INCLUDEDIR)/
	install -m 755 $(RELEASE_DIR)/liblease.so $(DESTDIR)$(LIBDIR)/liblease.so.$(VERSION)
	ln -sf liblease.so.$(VERSION) $(DESTDIR)$(LIBDIR)/liblease.so.$(MAJOR)
	ln -sf liblease.so.$(MAJOR) $(DESTDIR)$(LIBDIR)/liblease.so
	install -m 644 $(RELEASE_DIR)/liblease.a $(DESTDIR)$(LIBDIR)/
	$(call substitute,$${prefix},$(strip $(patsubst %,-Wl$(comma)%,$(STATIC_LINK_OPTIONS)) $(STATIC_LIBS))) \
	  liblease.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/liblease.pc
	for file in liblease-config.cmake liblease-config-version.cmake; do \
	  $(call substitute,$(PREFIX),$(subst $(space),;,$(patsubst -l%,%,$(STATIC_LIBS))),$(patsubst %,LINKER:%,$(STATIC_LINK_OPTIONS))) \
	    cmake/$$file.in > $(DESTDIR)$(LIBDIR)/cmake/liblease/$$file; \
	done
