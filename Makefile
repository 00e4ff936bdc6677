# mamori: build, run and test. `make run` and `make test` do all set-up on a
# fresh Debian 12 machine with Go (they install what they need with apt-get).

GO       ?= go
PKG      := github.com/mamori-agent/mamori
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X $(PKG)/agent.Version=$(VERSION)
BIN      := bin/mamori
HUB      := bin/mamori-hub
STATE    := .state

.PHONY: all build run test lint vet unit fuzz bench e2e clean wine-test package package-test

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/mamori
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w -X main.version=$(VERSION)' -o $(HUB) ./cmd/mamori-hub

# The whole system on one machine: a hub on SQLite and the agent reporting
# to it, with the example configs; state under the working tree. Ctrl-C
# stops both (the agent records a stop event first).
run: build
	STATE=$(STATE) scripts/run.sh

test: lint unit package-test wine-test

lint:
	@scripts/test-deps.sh
	@echo '== gofmt'; out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	@echo '== go vet (linux)'; GOOS=linux $(GO) vet ./...
	@echo '== go vet (linux, libusb)'; GOOS=linux CGO_ENABLED=1 $(GO) vet -tags libusb ./...
	@echo '== staticcheck'; $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./... && $(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 -tags e2e ./e2e/...
	@echo '== go vet (windows)'; GOOS=windows $(GO) vet ./...
	@echo '== go test builds for windows'; GOOS=windows $(GO) test -count=1 -exec=true ./... >/dev/null
	@echo '== CGO_ENABLED=0 build'; CGO_ENABLED=0 $(GO) build -o /dev/null ./cmd/mamori
	@echo '== go mod tidy leaves no diff'; cp go.mod /tmp/mamori-go.mod.bak; cp go.sum /tmp/mamori-go.sum.bak; $(GO) mod tidy; \
	  if ! git diff --quiet -- go.mod go.sum; then git diff -- go.mod go.sum; cp /tmp/mamori-go.mod.bak go.mod; cp /tmp/mamori-go.sum.bak go.sum; echo "go mod tidy changes go.mod/go.sum"; exit 1; fi

# Unit and integration tests with the race detector; fuzz seeds run as
# ordinary tests.
unit:
	scripts/test-deps.sh
	$(GO) test -race -count=1 ./...
	CGO_ENABLED=1 $(GO) test -race -count=1 -tags libusb ./collector/usb/

# Windows unit tests under Wine 8.0 (scripts/wine/README): the packages
# whose tests run there, and collector/usb's Windows backend and parsers
# (its sysfs fixture tests need Linux). test-deps installs Wine and mingw.
WINE_PKGS ?= ./internal/wintest/ ./agent/report/ ./internal/safe/ ./wire/ ./policy/ ./notify/ ./agent/localapi/ ./collector/usbids/ ./collector/media/ ./collector/network/
WINE_USB_TESTS := ^(TestWalkAncestors|TestEnumerateAll|TestParse(InstanceID|USBInstanceID|USBStorInstanceID|USBHardwareIDs|InterfacePath|MultiSZ|SZ|NotifyEventData|StorageDescriptor)|TestEncodeMultiSZRoundTrip|TestAssembleWindows.*|TestChangeOf|TestChangeQueue|TestNewHotplugUnsupported|TestWindowsGUIDs|TestSetupAPI.*|TestReadNodesAllClasses|TestHotplugWindows|Fuzz.*)$$
# The agent on Windows end to end (its Windows tests only: the others
# read Linux fixtures): the USB backend's wiring, the warning, the state
# dir's ACL, the service's life and an agent run by mamori.exe itself.
WINE_AGENT_PKGS := ./agent/ ./agent/audit/ ./internal/fsguard/ ./internal/svc/ ./cmd/mamori/ ./cmd/mamori-hub/
wine-test:
	scripts/test-deps.sh
	scripts/wine/test.sh -count=1 $(WINE_PKGS)
	scripts/wine/test.sh -count=1 -run '$(WINE_USB_TESTS)' ./collector/usb/
	scripts/wine/test.sh -count=1 -run '^TestWindows' $(WINE_AGENT_PKGS)
	MAMORI_WINE_BOOT=1 $(GO) test -count=1 -run TestWineServiceAutoStart ./cmd/mamori/

# Short fuzzing of every fuzz target (seeds are kept under testdata/fuzz).
FUZZTIME ?= 20s
fuzz:
	@for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "== $$pkg $$f"; $(GO) test -run='^$$' -fuzz="^$$f$$" -fuzztime=$(FUZZTIME) $$pkg || exit 1; \
	  done; \
	done

bench:
	$(GO) test -run='^$$' -bench=. -benchmem -count=6 ./... | tee bench.txt

e2e:
	scripts/e2e.sh

# .deb and .rpm of mamori and mamori-hub into dist/, by nfpm (a pinned
# version through go run); the version comes from git describe
# (scripts/package.sh; PKG_VERSION=... overrides it). And the agent's
# Windows installer, dist/mamori-VERSION-x64.msi, by Debian's wixl
# (scripts/msi.sh, packaging/msi/).
package: build
	scripts/package.sh
	scripts/msi.sh

# The packages built twice and installed, upgraded, removed and purged with
# dpkg in throw-away sandboxes, without and with systemd as PID 1; lintian,
# rpm -qp, systemd-analyze verify and security (scripts/package-test.sh).
package-test:
	scripts/test-deps.sh
	scripts/package-test.sh

clean:
	rm -rf bin dist $(STATE)
