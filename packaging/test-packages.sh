#!/bin/bash
# packaging/test-packages.sh BUILD_DIR
#
# Builds the deb and rpm packages from BUILD_DIR (a build tree configured with -DCMAKE_INSTALL_PREFIX=/usr),
# checks them (lintian, rpm queries), installs the debs with apt, runs the installed volume-host, a consumer
# project built against the installed -dev package and Nova's real LibvirtDriver with the installed Python
# packages and module, then removes and purges them and checks nothing is left.
#
# Runs unattended as root on Debian 12; it installs and removes system packages, so it is not a ctest test.
# Environment:
#   JOBS=N                   parallel build jobs (default 2)
#   IVD_NO_RECOMMENDS=1      install without Recommends (qemu-block-extra, open-iscsi, multipath-tools)
#   KEEP_WORKDIR=1           keep the scratch directory even when everything passed
# Prints "N passed, N failed" last and exits non-zero on any failure.
set -u
set -o pipefail

RUNTIME_PKG=iscsi-volume-driver
DEV_PKG=iscsi-volume-driver-dev
DEV_RPM_PKG=iscsi-volume-driver-devel
PY_PKG=python3-volume-driver
NOVA_PKG=python3-volume-driver-nova
PY_DIR=/usr/lib/python3/dist-packages
CONF=/etc/volume-host/volume-host.conf

passed=0
failed=0
WORK=""
installed_by_us=0

pass() { passed=$((passed + 1)); echo "PASS: $*"; }
fail() { failed=$((failed + 1)); echo "FAIL: $*"; }
# check DESCRIPTION COMMAND...: runs COMMAND with its output in the log; PASS or FAIL (showing the output).
check() {
    local desc=$1
    shift
    local out
    if out=$("$@" 2>&1); then
        pass "$desc"
    else
        fail "$desc"
        printf '%s\n' "$out" | sed 's/^/    | /' | tail -n 40
    fi
    printf '== %s\n%s\n' "$desc" "$out" >>"$WORK/log"
}
has_line() { grep -qxF -- "$2" <<<"$1"; }
contains() { grep -qF -- "$2" <<<"$1"; }

pkg_status() { dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null | tr -d ' '; }

cleanup_packages() {
    local p
    for p in "$NOVA_PKG" "$PY_PKG" "$DEV_PKG" "$RUNTIME_PKG"; do
        if [ -n "$(pkg_status "$p")" ] && [ "$(pkg_status "$p")" != "un" ]; then
            DEBIAN_FRONTEND=noninteractive dpkg --purge "$p" >>"$WORK/log" 2>&1 || true
        fi
    done
}

finish() {
    trap - EXIT
    if [ "$installed_by_us" = 1 ]; then cleanup_packages; fi
    if [ -n "$WORK" ] && [ -d "$WORK" ]; then
        if [ "$failed" -eq 0 ] && [ "${KEEP_WORKDIR:-0}" != 1 ]; then
            rm -rf "$WORK"
        else
            echo "scratch directory kept: $WORK (log: $WORK/log)"
        fi
    fi
    echo "$passed passed, $failed failed"
    if [ "$failed" -eq 0 ]; then exit 0; else exit 1; fi
}
abort() {
    fail "$*"
    finish
}
trap finish EXIT

# ---------------------------------------------------------------------------------------------------------------------
# Preconditions
[ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; abort "usage"; }
[ "$(id -u)" -eq 0 ] || abort "must run as root (installs packages)"
BUILD=$(realpath -e "$1" 2>/dev/null) || abort "build dir $1 does not exist"
SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[ -f "$BUILD/CMakeCache.txt" ] || abort "$BUILD is not a configured CMake build tree"
prefix=$(sed -n 's/^CMAKE_INSTALL_PREFIX:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
[ "$prefix" = /usr ] || abort "$BUILD is configured with CMAKE_INSTALL_PREFIX=$prefix; reconfigure with -DCMAKE_INSTALL_PREFIX=/usr"
VERSION=$(sed -n 's/^CMAKE_PROJECT_VERSION:[A-Z]*=//p' "$BUILD/CMakeCache.txt")
[ -n "$VERSION" ] || abort "cannot read CMAKE_PROJECT_VERSION from $BUILD/CMakeCache.txt"
for tool in cmake cpack lintian rpm dpkg-deb dpkg-query apt-get pkg-config cc readelf gzip; do
    command -v "$tool" >/dev/null || abort "missing tool: $tool"
done
WORK=$(mktemp -d /tmp/ivd-package-test.XXXXXX) || abort "mktemp failed"
chmod 755 "$WORK"  # apt's _apt user reads the .debs from here
: >"$WORK/log"
DEB_ARCH=$(dpkg --print-architecture)
MULTIARCH=$(dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || gcc -print-multiarch)
DRIVER_DIR=/usr/lib/$MULTIARCH/volume-drivers
echo "source $SRC, build $BUILD, version $VERSION, scratch $WORK"

# ---------------------------------------------------------------------------------------------------------------------
# Build the packages
check "build tree builds (cmake --build -j${JOBS:-2})" cmake --build "$BUILD" -j"${JOBS:-2}"
mkdir -p "$WORK/pkgs"
check "cpack builds the DEB and RPM packages" \
    bash -c "cd '$WORK/pkgs' && cpack --config '$BUILD/CPackConfig.cmake' -B '$WORK/pkgs'"
RUNTIME_DEB="$WORK/pkgs/${RUNTIME_PKG}_${VERSION}-1_${DEB_ARCH}.deb"
DEV_DEB="$WORK/pkgs/${DEV_PKG}_${VERSION}-1_${DEB_ARCH}.deb"
PY_DEB="$WORK/pkgs/${PY_PKG}_${VERSION}-1_${DEB_ARCH}.deb"
NOVA_DEB="$WORK/pkgs/${NOVA_PKG}_${VERSION}-1_all.deb"
RUNTIME_RPM=$(ls "$WORK/pkgs/${RUNTIME_PKG}-${VERSION}"-*.rpm 2>/dev/null | head -n1)
DEV_RPM=$(ls "$WORK/pkgs/${DEV_RPM_PKG}-${VERSION}"-*.rpm 2>/dev/null | head -n1)
PY_RPM=$(ls "$WORK/pkgs/${PY_PKG}-${VERSION}"-*.rpm 2>/dev/null | head -n1)
NOVA_RPM=$(ls "$WORK/pkgs/${NOVA_PKG}-${VERSION}"-*.noarch.rpm 2>/dev/null | head -n1)
for f in "$RUNTIME_DEB" "$DEV_DEB" "$PY_DEB" "$NOVA_DEB"; do
    [ -f "$f" ] || abort "expected package $(basename "$f") was not built (have: $(ls "$WORK/pkgs" | tr '\n' ' '))"
done
[ -n "$PY_RPM" ] && [ -n "$NOVA_RPM" ] || abort "expected ${PY_PKG}-${VERSION}-*.rpm and ${NOVA_PKG}-${VERSION}-*.noarch.rpm"
[ -n "$RUNTIME_RPM" ] && [ -n "$DEV_RPM" ] || abort "expected ${RUNTIME_PKG}-${VERSION}-*.rpm and ${DEV_RPM_PKG}-${VERSION}-*.rpm"
pass "package files: $(cd "$WORK/pkgs" && ls ./*.deb ./*.rpm | tr '\n' ' ')"

# ---------------------------------------------------------------------------------------------------------------------
# DEB metadata and contents
deb_paths() { dpkg-deb -c "$1" | awk '{print $6}' | sed -e 's|^\./|/|' -e 's|/$||' | grep -v '^$'; }
RUNTIME_FILES=$(deb_paths "$RUNTIME_DEB")
DEV_FILES=$(deb_paths "$DEV_DEB")
PY_FILES=$(deb_paths "$PY_DEB")
NOVA_FILES=$(deb_paths "$NOVA_DEB")

expect_field() {  # deb field expected-regex
    local v
    v=$(dpkg-deb -f "$1" "$2")
    if grep -qE -- "$3" <<<"$v"; then pass "$(basename "$1"): $2 matches /$3/"; else fail "$(basename "$1"): $2 is '$v', expected /$3/"; fi
}
expect_field "$RUNTIME_DEB" Package "^${RUNTIME_PKG}\$"
expect_field "$RUNTIME_DEB" Version "^${VERSION//./\\.}-[0-9]+\$"
expect_field "$RUNTIME_DEB" Architecture "^${DEB_ARCH}\$"
expect_field "$RUNTIME_DEB" Maintainer '^.+ <[^ @]+@[^ ]+>$'
expect_field "$RUNTIME_DEB" Depends '(^|, )libc6( |,|$)'
expect_field "$RUNTIME_DEB" Depends '(^|, )libvirt0( |,|$)'
expect_field "$RUNTIME_DEB" Depends '(^|, )libiscsi7( |,|$)'
for r in qemu-block-extra open-iscsi multipath-tools; do
    expect_field "$RUNTIME_DEB" Recommends "(^|, )${r}(,|\$)"
done
expect_field "$DEV_DEB" Package "^${DEV_PKG}\$"
expect_field "$DEV_DEB" Version "^${VERSION//./\\.}-[0-9]+\$"
expect_field "$DEV_DEB" Section '^libdevel$'
expect_field "$PY_DEB" Section '^python$'
expect_field "$PY_DEB" Depends '(^|, )python3:any(,|$)'
expect_field "$NOVA_DEB" Architecture '^all$'
for d in "$PY_PKG \\(= ${VERSION//./\\.}-[0-9]+\\)" python3-nova python3-libvirt python3-oslo\\.privsep; do
    expect_field "$NOVA_DEB" Depends "(^|, )${d}(,|\$)"
done
for f in postinst prerm; do
    for d in "$PY_DEB" "$NOVA_DEB"; do
        if dpkg-deb --info "$d" "$f" 2>/dev/null | grep -q 'py3compile\|py3clean'; then
            pass "$(basename "$d") has a $f that byte-compiles / cleans"
        else
            fail "$(basename "$d") lacks its $f"
        fi
    done
done
expect_field "$NOVA_DEB" Enhances '^nova-compute$'
if dpkg-deb -f "$NOVA_DEB" Recommends | grep -q 'nova-compute'; then
    fail "$NOVA_PKG recommends nova-compute (apt would install a whole compute service with it)"
else
    pass "$NOVA_PKG enhances nova-compute without pulling it in"
fi
conffiles=$(dpkg-deb --info "$RUNTIME_DEB" conffiles 2>/dev/null)
if has_line "$conffiles" "$CONF"; then pass "$CONF is a conffile"; else fail "$CONF is not listed in conffiles ('$conffiles')"; fi

for p in /usr/bin/volume-host "$DRIVER_DIR/iscsi_volume_driver.so" "$CONF" /usr/share/man/man1/volume-host.1.gz \
    /usr/share/doc/$RUNTIME_PKG/copyright /usr/share/doc/$RUNTIME_PKG/changelog.Debian.gz \
    /usr/share/doc/$RUNTIME_PKG/README.md /usr/share/doc/$RUNTIME_PKG/examples/connection_info.json; do
    if has_line "$RUNTIME_FILES" "$p"; then pass "runtime deb has $p"; else fail "runtime deb lacks $p"; fi
done
for p in /usr/include/volume_driver/volume_driver.h "/usr/lib/$MULTIARCH/pkgconfig/volume-driver-abi.pc" \
    "/usr/lib/$MULTIARCH/cmake/VolumeDriverAbi/VolumeDriverAbiConfig.cmake" \
    "/usr/lib/$MULTIARCH/cmake/VolumeDriverAbi/VolumeDriverAbiConfigVersion.cmake" \
    "/usr/lib/$MULTIARCH/cmake/VolumeDriverAbi/VolumeDriverAbiTargets.cmake" \
    /usr/share/doc/$DEV_PKG/copyright /usr/share/doc/$DEV_PKG/changelog.Debian.gz; do
    if has_line "$DEV_FILES" "$p"; then pass "dev deb has $p"; else fail "dev deb lacks $p"; fi
done
for p in $PY_DIR/volume_driver/__init__.py $PY_DIR/volume_driver/_config.py $PY_DIR/volume_driver/module.py \
    /usr/share/doc/$PY_PKG/copyright; do
    if has_line "$PY_FILES" "$p"; then pass "python deb has $p"; else fail "python deb lacks $p"; fi
done
for p in $PY_DIR/nova_volume_modules/driver.py $PY_DIR/nova_volume_modules/privsep.py \
    $PY_DIR/nova/virt/libvirt_volume_modules/__init__.py /usr/share/doc/$NOVA_PKG/copyright; do
    if has_line "$NOVA_FILES" "$p"; then pass "nova deb has $p"; else fail "nova deb lacks $p"; fi
done
# Nova's own package owns nova/__init__.py and nova/virt/__init__.py: ours must not ship them.
for p in $PY_DIR/nova/__init__.py $PY_DIR/nova/virt/__init__.py; do
    if has_line "$NOVA_FILES" "$p"; then fail "nova deb ships $p (python3-nova's file)"; else pass "nova deb leaves $p to python3-nova"; fi
done
if grep -qF "DRIVER_DIR = \"$DRIVER_DIR\"" <(dpkg-deb --fsys-tarfile "$PY_DEB" | tar -xO ".$PY_DIR/volume_driver/_config.py"); then
    pass "the installed binding's default driver directory is $DRIVER_DIR"
else
    fail "volume_driver/_config.py in $PY_PKG does not name $DRIVER_DIR"
fi

# ---------------------------------------------------------------------------------------------------------------------
# lintian: errors fail; every warning must be documented in packaging/README.md
lintian --fail-on error --tag-display-limit 0 "$RUNTIME_DEB" "$DEV_DEB" "$PY_DEB" "$NOVA_DEB" >"$WORK/lintian.out" 2>&1
lintian_rc=$?
lintian_out=$(grep -v 'running with root privileges' "$WORK/lintian.out")
printf '== lintian (rc %s)\n%s\n' "$lintian_rc" "$lintian_out" >>"$WORK/log"
errors=$(grep -E '^E: ' <<<"$lintian_out")
if [ -n "$errors" ]; then
    fail "lintian errors:"
    printf '    %s\n' "$errors"
elif [ "$lintian_rc" -ne 0 ]; then
    fail "lintian failed (exit $lintian_rc): $(tail -n 5 "$WORK/lintian.out")"
else
    pass "lintian reports no errors"
fi
warn_tags=$(grep -E '^W: ' <<<"$lintian_out" | awk '{print $3}' | sort -u)
for tag in $warn_tags; do
    if grep -qF -- "\`$tag\`" "$SRC/packaging/README.md"; then
        pass "lintian warning $tag is documented as kept in packaging/README.md"
    else
        fail "lintian warning $tag is not documented in packaging/README.md:"
        grep -F " $tag" <<<"$lintian_out" | sed 's/^/    /'
    fi
done
[ -n "$lintian_out" ] && printf '%s\n' "$lintian_out" | sed 's/^/    lintian: /'

# ---------------------------------------------------------------------------------------------------------------------
# RPM contents and requirements
rpm_files=$(rpm -qpl "$RUNTIME_RPM" 2>/dev/null)
rpm_dev_files=$(rpm -qpl "$DEV_RPM" 2>/dev/null)
rpm_reqs=$(rpm -qpR "$RUNTIME_RPM" 2>/dev/null)
rpm_weak=$(rpm -qp --recommends "$RUNTIME_RPM" 2>/dev/null)
printf '== rpm\n%s\n%s\n%s\n%s\n' "$rpm_files" "$rpm_dev_files" "$rpm_reqs" "$rpm_weak" >>"$WORK/log"
for p in /usr/bin/volume-host "$DRIVER_DIR/iscsi_volume_driver.so" "$CONF" /usr/share/man/man1/volume-host.1.gz \
    /usr/share/doc/$RUNTIME_PKG/copyright /usr/share/doc/$RUNTIME_PKG/examples/connection_info.json; do
    if has_line "$rpm_files" "$p"; then pass "runtime rpm has $p"; else fail "runtime rpm lacks $p"; fi
done
for p in /usr/include/volume_driver/volume_driver.h "/usr/lib/$MULTIARCH/pkgconfig/volume-driver-abi.pc" \
    "/usr/lib/$MULTIARCH/cmake/VolumeDriverAbi/VolumeDriverAbiConfig.cmake"; do
    if has_line "$rpm_dev_files" "$p"; then pass "devel rpm has $p"; else fail "devel rpm lacks $p"; fi
done
conf_flags=$(rpm -qp --qf '[%{FILENAMES} %{FILEFLAGS:fflags}\n]' "$RUNTIME_RPM" 2>/dev/null | awk -v f="$CONF" '$1 == f {print $2}')
if [ "$conf_flags" = cn ]; then pass "rpm: $CONF is %config(noreplace)"; else fail "rpm: $CONF has file flags '$conf_flags', expected cn"; fi
# Every library the packaged ELF files need must be an automatic rpm requirement.
mkdir -p "$WORK/runtime-root"
dpkg-deb -x "$RUNTIME_DEB" "$WORK/runtime-root"
needed=$(readelf -d "$WORK/runtime-root/usr/bin/volume-host" "$WORK/runtime-root$DRIVER_DIR/iscsi_volume_driver.so" |
    sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort -u)
[ -n "$needed" ] || fail "no NEEDED entries found in the packaged binaries"
for lib in $needed; do
    if grep -qF -- "$lib()" <<<"$rpm_reqs"; then pass "rpm requires $lib (autoreq)"; else fail "rpm -qpR lacks $lib()"; fi
done
for r in qemu-block-iscsi iscsi-initiator-utils device-mapper-multipath; do
    if has_line "$rpm_weak" "$r"; then pass "rpm recommends $r"; else fail "rpm does not recommend $r ('$rpm_weak')"; fi
done
if rpm -qpR "$DEV_RPM" 2>/dev/null | grep -qv '^rpmlib('; then
    fail "devel rpm has unexpected requirements: $(rpm -qpR "$DEV_RPM" | grep -v '^rpmlib(' | tr '\n' ' ')"
else
    pass "devel rpm requires nothing but rpmlib features (header only)"
fi
rpm_nova_files=$(rpm -qpl "$NOVA_RPM" 2>/dev/null)
rpm_nova_reqs=$(rpm -qpR "$NOVA_RPM" 2>/dev/null)
for p in $PY_DIR/nova_volume_modules/driver.py $PY_DIR/nova/virt/libvirt_volume_modules/__init__.py; do
    if has_line "$rpm_nova_files" "$p"; then pass "nova rpm has $p"; else fail "nova rpm lacks $p"; fi
done
for r in python3-nova "$PY_PKG = $VERSION"; do
    if has_line "$rpm_nova_reqs" "$r"; then pass "nova rpm requires $r"; else fail "nova rpm does not require $r"; fi
done
if has_line "$(rpm -qpl "$PY_RPM" 2>/dev/null)" "$PY_DIR/volume_driver/driver.py"; then
    pass "python rpm has $PY_DIR/volume_driver/driver.py"
else
    fail "python rpm lacks $PY_DIR/volume_driver/driver.py"
fi

# ---------------------------------------------------------------------------------------------------------------------
# Install the debs
installed_by_us=1
cleanup_packages  # a previous run's leftovers would spoil the "left behind" checks
ALL_FILES=$(printf '%s\n%s\n%s\n%s\n' "$RUNTIME_FILES" "$DEV_FILES" "$PY_FILES" "$NOVA_FILES" | sort -u)
preexisting=""
for p in $ALL_FILES; do
    if [ -e "$p" ]; then preexisting+="$p"$'\n'; fi
done
# Paths our packages bring that were not there before: these must go again.
NEW_PATHS=$(for p in $ALL_FILES; do has_line "$preexisting" "$p" || echo "$p"; done)

if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
    check "apt-get update (no package lists yet)" apt-get update
fi
apt_opts=(-y -o Dpkg::Options::=--force-confnew)
[ "${IVD_NO_RECOMMENDS:-0}" = 1 ] && apt_opts+=(--no-install-recommends)
check "apt-get install ./${RUNTIME_PKG}.deb ./${DEV_PKG}.deb ./${PY_PKG}.deb ./${NOVA_PKG}.deb" \
    env DEBIAN_FRONTEND=noninteractive apt-get install "${apt_opts[@]}" "$RUNTIME_DEB" "$DEV_DEB" "$PY_DEB" "$NOVA_DEB"
[ "$(pkg_status "$RUNTIME_PKG")" = ii ] || abort "$RUNTIME_PKG is not installed (status '$(pkg_status "$RUNTIME_PKG")')"
[ "$(pkg_status "$DEV_PKG")" = ii ] || abort "$DEV_PKG is not installed (status '$(pkg_status "$DEV_PKG")')"
[ "$(pkg_status "$PY_PKG")" = ii ] || abort "$PY_PKG is not installed (status '$(pkg_status "$PY_PKG")')"
[ "$(pkg_status "$NOVA_PKG")" = ii ] || abort "$NOVA_PKG is not installed (status '$(pkg_status "$NOVA_PKG")')"
pass "all four packages are installed"
if dpkg-query -W -f='${Conffiles}\n' "$RUNTIME_PKG" | grep -qF " $CONF "; then
    pass "dpkg records $CONF as a conffile"
else
    fail "dpkg does not record $CONF as a conffile"
fi

# ---------------------------------------------------------------------------------------------------------------------
# The installed volume-host with the installed example config
run_expect() {  # description expected-exit-code command...
    local desc=$1 want=$2 out rc
    shift 2
    out=$("$@" 2>&1)
    rc=$?
    printf '== %s (rc %s)\n%s\n' "$desc" "$rc" "$out" >>"$WORK/log"
    LAST_OUT=$out
    if [ "$rc" -eq "$want" ]; then pass "$desc (exit $rc)"; else fail "$desc: exit $rc, expected $want"; printf '%s\n' "$out" | sed 's/^/    | /' | tail -n 20; fi
}
run_expect "volume-host drivers (default config $CONF)" 0 /usr/bin/volume-host drivers
if grep -qE '"abi_version"[[:space:]]*:[[:space:]]*2[[:space:]]*,?$' <<<"$LAST_OUT"; then
    pass "volume-host drivers prints abi_version 2"
else
    fail "volume-host drivers does not print abi_version 2"
fi
if contains "$LAST_OUT" "\"$DRIVER_DIR/iscsi_volume_driver.so\""; then
    pass "the bare name resolves to $DRIVER_DIR/iscsi_volume_driver.so"
else
    fail "the driver path is not $DRIVER_DIR/iscsi_volume_driver.so"
fi
run_expect "volume-host --config $CONF drivers" 0 /usr/bin/volume-host --config "$CONF" drivers
run_expect "volume-host connector" 0 /usr/bin/volume-host connector
if grep -q '^{.*"initiator"' <<<"$LAST_OUT"; then pass "connector prints a JSON object with initiator"; else fail "connector output is not the expected JSON"; fi
run_expect "exit code: unknown command is a usage error" 2 /usr/bin/volume-host no-such-command
run_expect "exit code: missing config file is a config error" 3 /usr/bin/volume-host --config "$WORK/missing.conf" drivers
printf '[DEFAULT]\nvolume_drivers = iscsi=no_such_driver.so\n' >"$WORK/bad-driver.conf"
run_expect "exit code: missing driver module is a load error" 4 /usr/bin/volume-host --config "$WORK/bad-driver.conf" drivers
check "man page volume-host(1) is installed and readable" \
    bash -c 'gzip -t /usr/share/man/man1/volume-host.1.gz && zcat /usr/share/man/man1/volume-host.1.gz | grep -q "^\.SH EXIT STATUS"'
if command -v man >/dev/null; then
    check "man -l renders volume-host(1) without warnings" \
        bash -c 'out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l /usr/share/man/man1/volume-host.1.gz 2>&1 >/dev/null); [ -z "$out" ] || { echo "$out"; false; }'
fi

# ---------------------------------------------------------------------------------------------------------------------
# A consumer project built against the installed -dev package (copied away from the source tree)
cp -r "$SRC/tests/packaging/consumer" "$WORK/consumer-src"
pc_version=$(pkg-config --modversion volume-driver-abi 2>&1)
if [ "$pc_version" = "$VERSION" ]; then pass "pkg-config volume-driver-abi is version $VERSION"; else fail "pkg-config --modversion volume-driver-abi: '$pc_version'"; fi
pc_driverdir=$(pkg-config --variable=driverdir volume-driver-abi 2>&1)
if [ "$pc_driverdir" = "$DRIVER_DIR" ]; then pass "pkg-config driverdir is $DRIVER_DIR"; else fail "pkg-config driverdir is '$pc_driverdir'"; fi
check "consumer builds with cc and pkg-config" \
    bash -c "cc -std=c99 -Wall -Wextra -Werror \$(pkg-config --cflags volume-driver-abi) \
        -DCONSUMER_DRIVER_DIR='\"$pc_driverdir\"' '$WORK/consumer-src/consumer.c' -o '$WORK/consumer-pc' \
        \$(pkg-config --libs volume-driver-abi) -ldl"
run_expect "consumer (pkg-config build) loads the installed module" 0 "$WORK/consumer-pc"
if grep -qx 'abi_version 2 driver iscsi .*' <<<"$LAST_OUT" && grep -q '^connector_properties {' <<<"$LAST_OUT"; then
    pass "consumer (pkg-config build) negotiated ABI 1 and printed connector_properties"
else
    fail "consumer (pkg-config build) output is unexpected"
fi
check "consumer configures with find_package(VolumeDriverAbi)" \
    cmake -S "$WORK/consumer-src" -B "$WORK/consumer-cmake"
check "consumer builds with find_package(VolumeDriverAbi)" cmake --build "$WORK/consumer-cmake"
run_expect "consumer (find_package build) loads the installed module" 0 "$WORK/consumer-cmake/consumer"
if grep -qx 'abi_version 2 driver iscsi .*' <<<"$LAST_OUT" && grep -q '^connector_properties {' <<<"$LAST_OUT"; then
    pass "consumer (find_package build) negotiated ABI 1 and printed connector_properties"
else
    fail "consumer (find_package build) output is unexpected"
fi
check "consumer configures and builds with CMake's pkg_check_modules(volume-driver-abi)" \
    bash -c "cmake -S '$WORK/consumer-src' -B '$WORK/consumer-cmake-pc' -DCONSUMER_USE_PKGCONFIG=ON && cmake --build '$WORK/consumer-cmake-pc' && '$WORK/consumer-cmake-pc/consumer'"

# ---------------------------------------------------------------------------------------------------------------------
# Nova's real LibvirtDriver with the installed Python packages and module (python3 -I: no source tree, no PYTHONPATH)
mkdir -p "$WORK/nova" && chmod 700 "$WORK/nova"
run_expect "Nova loads libvirt_volume_modules.LibvirtDriver with the installed module" 0 \
    env -u PYTHONPATH /usr/bin/python3 -I "$SRC/tests/packaging/nova_installed_check.py" "$DRIVER_DIR" "$WORK/nova"
printf '%s\n' "$LAST_OUT" | grep '^ok: ' | sed 's/^/    /'
if [ "$(grep -c '^ok: ' <<<"$LAST_OUT")" -eq 3 ]; then pass "all three Nova checks reported ok"; else fail "Nova checks: $(grep -c '^ok: ' <<<"$LAST_OUT") of 3 ok"; fi

# ---------------------------------------------------------------------------------------------------------------------
# Remove: only the (edited) conffiles stay; purge: nothing stays
marker="# edited by test-packages.sh $$"
echo "$marker" >>"$CONF"
check "apt-get remove the four packages" \
    env DEBIAN_FRONTEND=noninteractive apt-get remove -y "$NOVA_PKG" "$PY_PKG" "$RUNTIME_PKG" "$DEV_PKG"
st=$(pkg_status "$RUNTIME_PKG")
if [ "$st" = rc ]; then pass "$RUNTIME_PKG is in config-files state after remove"; else fail "$RUNTIME_PKG status after remove is '$st', expected rc"; fi
st=$(pkg_status "$DEV_PKG")
if [ -z "$st" ] || [ "$st" = un ] || [ "$st" = pn ]; then pass "$DEV_PKG is gone after remove (it has no conffiles)"; else fail "$DEV_PKG status after remove is '$st'"; fi
left=$(for p in $NEW_PATHS; do [ -e "$p" ] && [ "$p" != "$CONF" ] && [ "$p" != "$(dirname "$CONF")" ] && echo "$p"; done)
if [ -z "$left" ]; then pass "remove leaves nothing behind but the conffiles (byte-code included)"; else fail "left behind after remove: $(echo $left)"; fi
if [ -f "$CONF" ] && grep -qxF "$marker" "$CONF"; then pass "the edited conffile survives remove"; else fail "$CONF was not kept (with its edit) on remove"; fi

check "dpkg --purge $RUNTIME_PKG" env DEBIAN_FRONTEND=noninteractive dpkg --purge "$RUNTIME_PKG"
st=$(pkg_status "$RUNTIME_PKG")
if [ -z "$st" ] || [ "$st" = un ] || [ "$st" = pn ]; then pass "$RUNTIME_PKG is gone after purge"; else fail "$RUNTIME_PKG status after purge is '$st'"; fi
left=$(for p in $NEW_PATHS; do [ -e "$p" ] && echo "$p"; done)
if [ -z "$left" ]; then pass "purge leaves nothing behind"; else fail "left behind after purge: $(echo $left)"; fi
installed_by_us=0
finish
