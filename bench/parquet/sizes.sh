#!/usr/bin/env bash
# sizes.sh: dependency weight and CGO_ENABLED=0 binary size of each Parquet
# library. For each probe in sizes/ it makes a scratch module in a temporary
# directory holding only that probe and its one dependency (at the version
# this module pins), then prints the modules in its graph (go list -m all,
# which includes the probe module itself), the packages linked, and the size
# of the binary, plain and with -ldflags='-s -w'. Binaries go to a temporary
# directory that is removed at the end.
set -euo pipefail
cd "$(dirname "$0")"
ver() { go list -m -f '{{.Version}}' "$1"; }
declare -A dep=(
	[baseline]=""
	[parquetgo]="github.com/parquet-go/parquet-go@$(ver github.com/parquet-go/parquet-go)"
	[arrowgo]="github.com/apache/arrow-go/v18@$(ver github.com/apache/arrow-go/v18)"
)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
printf '%-10s %-45s %8s %9s %12s %12s\n' probe dependency modules packages bytes bytes-s-w
for p in baseline parquetgo arrowgo; do
	d="$tmp/$p"
	mkdir -p "$d"
	cp "sizes/$p/main.go" "$d/"
	(
		cd "$d"
		go mod init example.com/probe/$p >/dev/null 2>&1
		if [ -n "${dep[$p]}" ]; then go get "${dep[$p]}" >/dev/null 2>&1; fi
		go mod tidy >/dev/null 2>&1
		mods=$(go list -m all | wc -l)
		pkgs=$(CGO_ENABLED=0 go list -deps . | wc -l)
		CGO_ENABLED=0 go build -trimpath -o "$tmp/$p.bin" .
		CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o "$tmp/$p.sw.bin" .
		"$tmp/$p.bin" "$tmp/$p.out"
		printf '%-10s %-45s %8d %9d %12d %12d\n' "$p" "${dep[$p]:--}" "$mods" "$pkgs" \
			"$(stat -c %s "$tmp/$p.bin")" "$(stat -c %s "$tmp/$p.sw.bin")"
	)
done
