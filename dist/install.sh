#!/bin/sh
# Installs edgegw from this directory (an unpacked `cargo xtask dist` tarball,
# or the staging directory of `cargo xtask install`). Needs no network.
#
#   ./install.sh [--prefix DIR] [--root DIR]
#
#   --prefix DIR  where bin/ and share/ go (default /usr/local); the unit
#                 files are rewritten to start DIR/bin/edgegw.
#   --root DIR    install under DIR as if it were / (packaging, tests); the
#                 system user is then not created and systemd not reloaded.
#
# Creates /etc/edgegw and /var/lib/edgegw. Never overwrites an existing
# /etc/edgegw/edgegw.toml: the shipped one is always at
# PREFIX/share/edgegw/edgegw.toml.example for comparison.
set -eu

prefix=/usr/local
root=
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) [ $# -ge 2 ] || { echo "install.sh: --prefix needs a directory" >&2; exit 2; }; prefix=$2; shift 2 ;;
        --prefix=*) prefix=${1#--prefix=}; shift ;;
        --root) [ $# -ge 2 ] || { echo "install.sh: --root needs a directory" >&2; exit 2; }; root=$2; shift 2 ;;
        --root=*) root=${1#--root=}; shift ;;
        -h|--help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "install.sh: unknown argument \"$1\"; use --prefix DIR and/or --root DIR" >&2; exit 2 ;;
    esac
done
case "$prefix" in
    /*) ;;
    *) echo "install.sh: --prefix must be an absolute path, got \"$prefix\"" >&2; exit 2 ;;
esac

src=$(cd "$(dirname "$0")" && pwd)
[ -x "$src/bin/edgegw" ] || { echo "install.sh: $src/bin/edgegw missing: run me from the unpacked tarball" >&2; exit 1; }

say() { echo "install.sh: $*"; }

install -d -m 0755 "$root$prefix/bin" "$root$prefix/share/edgegw" "$root$prefix/share/doc/edgegw"
for bin in "$src"/bin/*; do
    # Copy then rename: replacing a running binary must not truncate it.
    name=$(basename "$bin")
    install -m 0755 "$bin" "$root$prefix/bin/.$name.new"
    mv -f "$root$prefix/bin/.$name.new" "$root$prefix/bin/$name"
    say "installed $prefix/bin/$name"
done
install -m 0644 "$src/config/edgegw.toml" "$root$prefix/share/edgegw/edgegw.toml.example"
install -m 0644 "$src/doc/operator-guide.md" "$root$prefix/share/doc/edgegw/operator-guide.md"

install -d -m 0750 "$root/etc/edgegw" "$root/var/lib/edgegw"
if [ -e "$root/etc/edgegw/edgegw.toml" ]; then
    say "keeping existing /etc/edgegw/edgegw.toml (the shipped default is $prefix/share/edgegw/edgegw.toml.example)"
else
    install -m 0640 "$src/config/edgegw.toml" "$root/etc/edgegw/edgegw.toml"
    say "installed /etc/edgegw/edgegw.toml: set xdp.iface and your APIs, then check it with: edgegw config validate /etc/edgegw/edgegw.toml"
fi

install -d -m 0755 "$root/etc/systemd/system"
for unit in "$src"/systemd/*.service; do
    name=$(basename "$unit")
    # Only install a unit whose binary ships in this bundle.
    case "$name" in
        edgegw-cp.service) [ -x "$src/bin/edgegw-cp" ] || continue ;;
    esac
    sed "s#/usr/local/#$prefix/#g" "$unit" > "$root/etc/systemd/system/.$name.new"
    chmod 0644 "$root/etc/systemd/system/.$name.new"
    mv -f "$root/etc/systemd/system/.$name.new" "$root/etc/systemd/system/$name"
    say "installed /etc/systemd/system/$name"
done

if [ -z "$root" ]; then
    if ! id -u edgegw >/dev/null 2>&1; then
        useradd --system --no-create-home --home-dir /var/lib/edgegw --shell /usr/sbin/nologin edgegw
        say "created system user edgegw"
    fi
    if [ -x "$src/bin/edgegw-cp" ] && ! id -u edgegw-cp >/dev/null 2>&1; then
        useradd --system --no-create-home --home-dir /var/lib/edgegw-cp --shell /usr/sbin/nologin edgegw-cp
        say "created system user edgegw-cp"
    fi
    chown -R edgegw:edgegw /etc/edgegw /var/lib/edgegw
    if [ -d /run/systemd/system ]; then
        systemctl daemon-reload
        say "systemd reloaded; start with: systemctl enable --now edgegw"
    fi
fi
say "done"
