#!/usr/bin/env bash
# test.sh is rekey's whole test suite, the one command CI runs
# (.ci/run calls it). It installs what the tests need (scripts/ci-deps.sh:
# Prometheus, PostgreSQL, moto_server, the Vault build), checks formatting
# and vet, runs every package's tests with the race detector against the
# real servers, and gives every fuzz target a short run.
#
# Every stage that fails says so on a line of its own, "FAILED: <stage>",
# after the output that explains why; go test's own lines (ok/FAIL per
# package, --- FAIL per test) are printed unchanged for CI to count.
#
# Environment:
#   REKEY_FUZZTIME      length of each fuzz run (default 3s)
#   REKEY_TEST_TIMEOUT  go test -timeout, per test binary (default 20m)
#   REKEY_TEST_P        go test -p, test binaries run at once (default 4)
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

logs=$(mktemp -d "${TMPDIR:-/tmp}/rekey-test.XXXXXX")

stage() { printf '== %s\n' "$*"; }
failed() {
	printf 'FAILED: %s\n' "$*"
	printf '(logs kept in %s)\n' "$logs"
	exit 1
}

stage "ci-deps"
bash scripts/ci-deps.sh || failed "ci-deps (scripts/ci-deps.sh exited $?; see its messages above)"

stage "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './tools/*')) ||
	failed "gofmt (gofmt itself failed; see above)"
if [ -n "$unformatted" ]; then
	echo "gofmt would change:"
	echo "$unformatted"
	failed "gofmt"
fi

stage "go vet"
go vet ./... || failed "go vet"

stage "alert rules (promtool)"
# promtool comes with Debian's prometheus package (ci-deps). Rules that use a
# metric rekey does not export yet are listed under "Proposed" in
# docs/METRICS.md; their unit tests feed the series by hand.
promtool check rules deploy/prometheus/rekey-rules.yaml || failed "alert rules (promtool check rules deploy/prometheus/rekey-rules.yaml)"
promtool test rules deploy/prometheus/rekey-rules_test.yaml || failed "alert rules (promtool test rules deploy/prometheus/rekey-rules_test.yaml)"

stage "helm chart"
# helm lint and helm template with the default values and with
# ci/postgres-values.yaml (PostgreSQL, split listeners, every optional
# resource); tools/kubecheck decodes every rendered manifest strictly into
# its Kubernetes API type (offline: kubeconform would fetch schemas from the
# internet); the rendered rekey.yaml must pass `rekey validate` with the
# listen override the pod gets.
helm=${REKEY_HELM_BIN:-$HOME/.cache/rekey/helm-$(awk '$1 == "helm.sh/helm/v3" {print $2}' tools/helm/go.mod)}
chart=deploy/helm/rekey
go build -o "$logs/rekey" ./cmd/rekey || failed "helm chart (building rekey to validate the rendered config)"
# kubecheck is its own module (go vet/test ./... above do not reach it).
(cd tools/kubecheck && go vet . && go test -count=1 .) || failed "helm chart (tools/kubecheck's own tests)"
for values in "" ci/postgres-values.yaml; do
	name=${values:-default values}
	args=()
	if [ -n "$values" ]; then
		args=(-f "$chart/$values")
	fi
	"$helm" lint --strict "$chart" "${args[@]}" || failed "helm chart (helm lint, $name)"
	out="$logs/helm-template-$(basename "${values:-default}" .yaml).yaml"
	"$helm" template rekey "$chart" "${args[@]}" >"$out" || failed "helm chart (helm template, $name)"
	(cd tools/kubecheck && go run . -config-out "$out.rekey.yaml" "$out") ||
		failed "helm chart (manifests rendered with $name are not valid Kubernetes objects; see above)"
	REKEY_DAEMON__LISTEN=0.0.0.0:8080 "$logs/rekey" validate -c "$out.rekey.yaml" ||
		failed "helm chart (the rekey.yaml rendered with $name does not validate)"
done

stage "go test -race"
# -p 4 on two cores: the packages mostly wait (for servers to start, quiet
# periods, retries), not compute, and e2e alone takes ~80 s, so it should
# overlap the rest. Measured on a shared 2-core machine, go test -race ./...
# took 220 s with -p 1, 114 s with -p 2 (go's default here) and 83 s with
# -p 4, each package's own time barely changing (e2e 78-80 s throughout).
go test -race -count=1 -timeout "${REKEY_TEST_TIMEOUT:-20m}" -p "${REKEY_TEST_P:-4}" ./... 2>&1 | tee "$logs/go-test.log"
if [ "${PIPESTATUS[0]}" -ne 0 ]; then
	echo "failing tests and packages:"
	grep -E '^(--- FAIL|FAIL|panic:)' "$logs/go-test.log" | sed 's/^/  /'
	failed "go test -race"
fi

# fuzz runs one short fuzzing session of target in pkg and tells apart:
#   - a pass;
#   - a finding: the target failed on an input; Go saved it under
#     testdata/fuzz/<target>/ and it fails again when replayed;
#   - a hang: a fuzz worker hung or died (Go's "fuzzing process hung or
#     terminated unexpectedly", or a deadline exceeded) on an input that
#     passes when replayed alone — a loaded machine, not a bug.
# It prints the run's output and the input on anything but a pass, and
# returns 0 (pass), 1 (finding or other failure) or 2 (hang).
#
# -fuzzminimizetime 1s: Go minimizes every new interesting input for up
# to 60 s by default; the executions stop meanwhile ("0/sec") and a 3 s
# session outran its deadline ("context deadline exceeded"), which was
# most of the "hung worker" hiccups CI reported.
fuzz() {
	local pkg=$1 dir=$2 target=$3 out=$4
	go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" -fuzzminimizetime 1s -timeout 10m "$pkg" >"$out" 2>&1
	local rc=$?
	if [ "$rc" -eq 0 ]; then
		return 0
	fi
	cat "$out"
	local inputs
	inputs=$(grep -o 'testdata/fuzz/[^ ]*' "$out" | sort -u)
	for input in $inputs; do
		echo "failing input $dir/$input:"
		sed 's/^/  | /' "$dir/$input" 2>/dev/null || echo "  (not found)"
	done
	if ! grep -qE 'fuzzing process hung or terminated unexpectedly|deadline exceeded' "$out"; then
		return 1
	fi
	# A worker hung or died: a finding only if the input fails again alone.
	for input in $inputs; do
		local name=${input##*/}
		echo "replaying $name alone:"
		if ! go test -count=1 -run "^${target}\$/^${name}\$" "$pkg"; then
			echo "the input fails when replayed: a finding"
			return 1
		fi
		# Not a finding: keep the input out of the seed corpus, but keep it.
		mkdir -p "$logs/hung-inputs/$target"
		mv "$dir/$input" "$logs/hung-inputs/$target/$name"
		rmdir --ignore-fail-on-non-empty "$dir/testdata/fuzz/$target" "$dir/testdata/fuzz" "$dir/testdata" 2>/dev/null
		echo "it passes alone; moved to $logs/hung-inputs/$target/$name"
	done
	return 2
}

stage "fuzz (short runs)"
fuzztime=${REKEY_FUZZTIME:-3s}
hiccups=()
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	for target in $(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u); do
		echo "-- $pkg $target"
		out="$logs/fuzz-${target}.log"
		fuzz "$pkg" "$dir" "$target" "$out"
		case $? in
		0) tail -n 1 "$out" ;;
		1) failed "fuzz $pkg $target (a finding; the failing input is printed above and kept under $dir/testdata/fuzz/$target/)" ;;
		2)
			echo "infrastructure hiccup: a fuzz worker of $target hung; retrying once"
			fuzz "$pkg" "$dir" "$target" "$out.retry"
			case $? in
			0)
				tail -n 1 "$out.retry"
				hiccups+=("$pkg $target (the hung input: $logs/hung-inputs/$target/)")
				;;
			1) failed "fuzz $pkg $target (a finding on the retry after a hung worker; the input is printed above)" ;;
			2) failed "fuzz $pkg $target (a fuzz worker hung twice in a row)" ;;
			esac
			;;
		esac
	done
done
if [ "${#hiccups[@]}" -gt 0 ]; then
	echo "infrastructure hiccups (a fuzz worker hung once, the retry passed):"
	printf '  %s\n' "${hiccups[@]}"
fi
if [ "${#hiccups[@]}" -eq 0 ]; then
	rm -rf "$logs"
fi
echo "== all tests passed"
