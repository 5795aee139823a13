#!/usr/bin/env bash
# test.sh is rekey's whole test suite, the one command CI runs
# (.ci/run calls it). It installs what the tests need (scripts/ci-deps.sh:
# Prometheus, PostgreSQL, moto_server, the Vault build), checks formatting
# and vet, runs every package's tests with the race detector against the
# real servers, and gives every fuzz target a short run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

bash scripts/ci-deps.sh

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './tools/*'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"; echo "$unformatted"; exit 1
fi

echo "== go vet"
go vet ./...

echo "== go test -race"
go test -race -count=1 -timeout 20m ./...

echo "== fuzz (short runs)"
fuzztime=${REKEY_FUZZTIME:-3s}
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
		echo "-- $pkg $target"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" >/dev/null
	done
done
echo "== all tests passed"
