# The two commands of the README:
#   make run    rekey's daemon on config.example.yaml (SQLite, random issuer, file sink, log notifier)
#   make test   the whole test suite, installing what it needs (what CI runs)

.PHONY: run test build bench

run:
	go run ./cmd/rekey run -c config.example.yaml

test:
	bash scripts/test.sh

build:
	CGO_ENABLED=0 go build -trimpath -o bin/rekey ./cmd/rekey

bench:
	go test -run '^$$' -bench . -benchmem ./bench/...
