# yurtadm build, test and release entry points. `make help` lists them.
SHELL := /bin/bash
GO ?= go
BIN ?= bin
PKG := github.com/yurtadm/yurtadm
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo v0.0.0-dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -s -w -X $(PKG)/pkg/version.gitVersion=$(VERSION) -X $(PKG)/pkg/version.gitCommit=$(COMMIT) -X $(PKG)/pkg/version.buildDate=$(DATE)
GOBUILD := CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)'

.PHONY: help build cross test test-unit test-integration lint docs bench clean quickstart quickstart-down e2e e2e-multinode

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-18s %s\n", $$1, $$2}'

build: ## build bin/yurtadm and the bin/yurtctl link
	$(GOBUILD) -o $(BIN)/yurtadm ./cmd/yurtadm
	ln -sf yurtadm $(BIN)/yurtctl

cross: ## build for linux/amd64, linux/arm64 and linux/arm into bin/<os>-<arch>/
	for p in linux/amd64 linux/arm64 linux/arm; do \
	  os=$${p%/*}; arch=$${p#*/}; \
	  GOOS=$$os GOARCH=$$arch GOARM=7 $(GOBUILD) -o $(BIN)/$$os-$$arch/yurtadm ./cmd/yurtadm || exit 1; \
	  ln -sf yurtadm $(BIN)/$$os-$$arch/yurtctl; \
	done

test: ## everything CI runs: install what is missing, unit and real-apiserver tests
	bash hack/test.sh

test-unit: ## unit tests only (no root, no cluster)
	$(GO) test ./...

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...

docs: build ## regenerate the CLI reference in docs/cli
	$(BIN)/yurtadm docs --dir docs/cli

bench: build ## binary size, start-up time and memory, preflight time (see docs/benchmarks.md)
	bash hack/bench.sh

quickstart: ## as root: a local edge cluster of nspawn nodes (kubeadm init, two edge nodes, a cloud node joined by yurtadm join)
	bash hack/quickstart.sh up

quickstart-down: ## as root: take the quickstart cluster down, leaving nothing behind
	bash hack/quickstart.sh down

e2e: ## as root: the end-to-end scenarios on the multi-node harness (docs/e2e.md)
	bash hack/e2e-multinode.sh

e2e-multinode: ## as root: the same as e2e (test/cluster nodes with systemd)
	bash hack/e2e-multinode.sh

clean: ## remove build output
	rm -rf $(BIN)
