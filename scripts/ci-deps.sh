#!/usr/bin/env bash
# ci-deps.sh installs or builds the servers rekey's tests run for real
# (testing/testenv): Prometheus and PostgreSQL 15 from Debian, moto_server
# from pip, and Vault 1.13.0 built from the tools/vault module into
# $HOME/.cache/rekey; and the tools that check the deployment kit: promtool
# (Debian's prometheus package) and helm, built from the tools/helm module
# into the same cache. Run it as root on Debian 12. It is idempotent and does
# nothing but check when everything is present.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
vault_bin=${REKEY_VAULT_BIN:-$HOME/.cache/rekey/vault-1.13.0}
# The helm version is the one tools/helm/go.mod pins (scripts/test.sh reads it too).
helm_version=$(awk '$1 == "helm.sh/helm/v3" {print $2}' "$repo/tools/helm/go.mod")
helm_bin=${REKEY_HELM_BIN:-$HOME/.cache/rekey/helm-$helm_version}
pg_bindir=${REKEY_PG_BINDIR:-/usr/lib/postgresql/15/bin}
moto_version=5.2.1

say() { printf 'ci-deps: %s\n' "$*"; }
# Whatever step fails, say which: set -e alone would end the script silently.
trap 'say "FAILED (exit $?) at line $LINENO: $BASH_COMMAND" >&2' ERR

apt_updated=
apt_install() {
	if [ "$(id -u)" -ne 0 ]; then
		say "need root to apt-get install $*" >&2
		exit 1
	fi
	if [ -z "$apt_updated" ]; then
		say "apt-get update"
		apt-get update -qq
		apt_updated=1
	fi
	say "apt-get install $*"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

# Prometheus 2.42 (Debian). The package enables a systemd unit; there is no
# systemd on CI machines, and tests start their own servers anyway.
if command -v prometheus >/dev/null 2>&1; then
	say "prometheus present: $(command -v prometheus)"
else
	apt_install prometheus
fi

# promtool checks the alert rules; it ships in the same Debian package.
if ! command -v promtool >/dev/null 2>&1; then
	say "FAILED: prometheus is installed but promtool is not on \$PATH" >&2
	exit 1
fi
say "promtool present: $(command -v promtool)"

# PostgreSQL 15 (Debian). Tests run initdb and postgres themselves.
if [ -x "$pg_bindir/initdb" ]; then
	say "postgresql present: $pg_bindir"
else
	apt_install postgresql-15
fi

# moto_server (preinstalled on the CI image under pyenv).
moto=$(command -v moto_server 2>/dev/null || true)
if [ -z "$moto" ] && [ -x "$HOME/.pyenv/shims/moto_server" ]; then
	moto=$HOME/.pyenv/shims/moto_server
fi
if [ -n "$moto" ]; then
	say "moto_server present: $moto"
else
	say "moto_server missing: pip install 'moto[server]==$moto_version'"
	if ! pip install --quiet "moto[server]==$moto_version" || ! command -v moto_server >/dev/null 2>&1; then
		say "FAILED to install moto_server; the AWS tests will fail until it is on \$PATH (or \$REKEY_MOTO_BIN)" >&2
		exit 1
	fi
	say "moto_server installed: $(command -v moto_server)"
fi

# Vault 1.13.0, the last open-source release, built from source; about two
# minutes on two cores once the modules are in the cache.
if [ -x "$vault_bin" ]; then
	say "vault present: $vault_bin"
else
	say "building vault into $vault_bin"
	mkdir -p "$(dirname "$vault_bin")"
	(cd "$repo/tools/vault" && go build -trimpath -o "$vault_bin.tmp" github.com/hashicorp/vault)
	mv "$vault_bin.tmp" "$vault_bin"
	say "vault built: $("$vault_bin" version)"
fi

# Helm (v3, pinned by tools/helm/go.mod), built from source like Vault:
# about two minutes on two cores once the modules are in the cache. The
# version is stamped as helm's own release builds do.
if [ -z "$helm_version" ]; then
	say "FAILED: no helm.sh/helm/v3 requirement in tools/helm/go.mod" >&2
	exit 1
fi
if [ -x "$helm_bin" ]; then
	say "helm present: $helm_bin"
else
	say "building helm $helm_version into $helm_bin"
	mkdir -p "$(dirname "$helm_bin")"
	(cd "$repo/tools/helm" && go build -trimpath \
		-ldflags "-X helm.sh/helm/v3/internal/version.version=$helm_version" \
		-o "$helm_bin.tmp" helm.sh/helm/v3/cmd/helm)
	mv "$helm_bin.tmp" "$helm_bin"
	say "helm built: $("$helm_bin" version --short)"
fi
