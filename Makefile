# The two commands of the README:
#   make run    rekey's daemon on config.example.yaml (SQLite, random issuer, file sink, log notifier)
#   make test   the whole test suite, installing what it needs (what CI runs)

.PHONY: run test build bench

run:
	go run ./cmd/rekey run -c config.example.yaml

test:
	bash scripts/test.sh

VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo "(devel)")
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null)

build:
	CGO_ENABLED=0 go build -trimpath -ldflags="-X main.version=$(VERSION) -X main.commit=$(COMMIT)" -o bin/rekey ./cmd/rekey

bench:
	go test -run '^$$' -bench . -benchmem ./bench/...
