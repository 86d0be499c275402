#!/bin/bash
# make deb-test: install menshen_*.deb in a clean Debian 12 chroot and use it as an
# operator would.
#
#   tests/packaging/deb-test.sh dist/menshen_VERSION_all.deb [SOURCE.tar]
#
# SOURCE.tar is the tree the package was built from (make deb writes it), whose tests are
# run; without it, the working tree is copied.
#
# 1. a fresh copy of a cached debootstrap (bookworm, minbase) with Postfix, man-db,
#    systemd and the test tools from Debian;
# 2. apt-get install ./menshen_*.deb, which pulls python3-milter & co. from Debian;
#    user, directories, conffiles, man pages, systemd-analyze verify, menshen configtest;
# 3. Postfix with the shipped main.cf snippet and a discard transport, the daemon started
#    as the unit starts it (its user, groups, umask and ExecStart), a clean message
#    (queued and delivered) and a keyword message (5xx) sent through Postfix;
# 4. the unit tests (tests/unit, tests/qa) with /usr/bin/python3 on Debian's libraries;
# 5. apt-get purge menshen: nothing may be left but the documented audit trail.
#
# Needs root. The cache (DEB_TEST_CACHE, default /var/cache/menshen-deb-test) keeps the
# debootstrap tree, the same with the test tools installed (rebuilt weekly) and every
# downloaded .deb between runs; DEB_TEST_REFRESH=1 rebuilds both trees. Mounts and
# processes in the chroot are always cleaned up on exit.
set -euo pipefail

DEB=$(readlink -f "$1")
SOURCE_TAR=${2:+$(readlink -f "$2")}
HERE=$(cd "$(dirname "$0")" && pwd)
SRC=$(cd "$HERE/../.." && pwd)
CACHE=${DEB_TEST_CACHE:-/var/cache/menshen-deb-test}
MIRROR=${DEB_TEST_MIRROR:-http://deb.debian.org/debian}
SUITE=bookworm
BASE=$CACHE/base-$SUITE
ARCHIVES=$CACHE/archives
ROOT=$CACHE/run
TOOLS=$CACHE/tools-$SUITE
START=$(date +%s)

# What the tests need besides the package: Postfix to talk to, man to read the pages,
# systemd for systemd-analyze, and the unit tests' own tools (the same as `make test`).
CHROOT_PACKAGES="postfix man-db systemd python3-pytest python3-hypothesis logrotate
                 unicode-data prometheus"

step() { printf '\n== [%3ss] %s\n' "$(($(date +%s) - START))" "$*"; }
fail() { printf 'deb-test: FAIL: %s\n' "$*" >&2; exit 1; }
in_root() {
    env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 \
        DEBIAN_FRONTEND=noninteractive chroot "$ROOT" "$@"
}

[ "$(id -u)" = 0 ] || fail "needs root (debootstrap, chroot, mount)"
[ -f "$DEB" ] || fail "no package: $1"
mkdir -p "$CACHE" "$ARCHIVES"
exec 9>"$CACHE/lock"
flock -w 1800 9 || fail "another deb-test holds $CACHE/lock"

mounts_under() {
    awk -v r="$1" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/self/mounts | sort -r
}
unmount_all() {
    local m
    for m in $(mounts_under "$ROOT") $(mounts_under "$BASE") $(mounts_under "$TOOLS"); do
        umount "$m" 2>/dev/null || umount -l "$m"
    done
}
# The processes whose root is the chroot: the ones this script started there.
chroot_pids() {
    local p
    for p in /proc/[0-9]*; do
        [ "$(readlink "$p/root" 2>/dev/null)" = "$ROOT" ] && echo "${p#/proc/}"
    done
    return 0
}
stop_chroot_processes() {
    local pids
    pids=$(chroot_pids)
    [ -z "$pids" ] && return 0
    kill $pids 2>/dev/null || true
    for _ in $(seq 50); do
        pids=$(chroot_pids)
        [ -z "$pids" ] && return 0
        sleep 0.1
    done
    kill -9 $pids 2>/dev/null || true
}
wipe_root() {
    [ -z "$(mounts_under "$ROOT")" ] || fail "$ROOT still has mounts; not removing it"
    rm -rf --one-file-system "$ROOT"
}
# Keep the packages the chroot downloaded for the next run.
save_archives() {
    if [ -d "$ROOT/var/cache/apt/archives" ]; then
        find "$ROOT/var/cache/apt/archives" -maxdepth 1 -name '*.deb' ! -name 'menshen_*' \
            -exec cp -aln -t "$ARCHIVES" {} + 2>/dev/null || true
    fi
}
cleanup() {
    local rc=$?
    set +e
    [ -d "$ROOT" ] && [ "$ROOT_READY" = 1 ] && stop_chroot_processes
    unmount_all
    save_archives
    if [ "$rc" = 0 ]; then
        wipe_root
    else
        echo "deb-test: failed (exit $rc); the chroot is kept in $ROOT" >&2
    fi
    exit "$rc"
}

# -- 1. the chroot -------------------------------------------------------------------------

ROOT_READY=0
trap cleanup EXIT
trap 'exit 130' INT TERM

if [ "${DEB_TEST_REFRESH:-}" = 1 ] || [ ! -f "$BASE/.complete" ]; then
    step "debootstrap $SUITE (minbase) into $BASE (cached for the next runs)"
    rm -rf --one-file-system "$BASE"
    mkdir -p "$CACHE/debootstrap-debs"
    debootstrap --variant=minbase --cache-dir="$CACHE/debootstrap-debs" \
        "$SUITE" "$BASE" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 ||
        { tail -20 "$CACHE/debootstrap.log"; fail "debootstrap"; }
    cat >"$BASE/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb ${MIRROR%/debian}/debian-security $SUITE-security main
EOF
    # As in any chroot: maintainer scripts must not start services.
    printf '#!/bin/sh\nexit 101\n' >"$BASE/usr/sbin/policy-rc.d"
    chmod 755 "$BASE/usr/sbin/policy-rc.d"
    rm -f "$BASE"/var/cache/apt/archives/*.deb
    touch "$BASE/.complete"
else
    step "reusing the debootstrap tree $BASE (from $(date -r "$BASE/.complete" +%F))"
fi

if [ -e "$ROOT" ]; then
    unmount_all
    wipe_root
fi
mount_root() {
    mount -t proc proc "$ROOT/proc"
    mount -t sysfs -o ro sysfs "$ROOT/sys"
    mount --bind /dev "$ROOT/dev"
    mount --bind /dev/pts "$ROOT/dev/pts"
    cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
    find "$ARCHIVES" -maxdepth 1 -name '*.deb' -exec cp -al -t "$ROOT/var/cache/apt/archives" {} +
}

# The tools layer: the base with Postfix, man-db, systemd and the test tools installed,
# cached too, and rebuilt when the list or the base changes, or after a week.
TOOLS_STAMP="$(echo $CHROOT_PACKAGES) base $(date -r "$BASE/.complete" +%s)"
if [ -f "$TOOLS/.complete" ] && [ "$(cat "$TOOLS/.complete")" = "$TOOLS_STAMP" ] &&
    [ -n "$(find "$TOOLS/.complete" -mtime -7)" ]; then
    step "fresh chroot $ROOT, from the cached tools layer $TOOLS"
    cp -a "$TOOLS" "$ROOT"
    ROOT_READY=1
    mount_root
    in_root apt-get update -qq
else
    step "fresh chroot $ROOT; Postfix, man-db, systemd and the test tools from Debian"
    cp -a "$BASE" "$ROOT"
    ROOT_READY=1
    mount_root
    in_root apt-get update -qq
    printf '%s\n' "postfix postfix/main_mailer_type select Local only" \
        "postfix postfix/mailname string deb-test.invalid" | in_root debconf-set-selections
    in_root apt-get install -y -qq --no-install-recommends $CHROOT_PACKAGES >"$CACHE/apt-tools.log" 2>&1 ||
        { tail -30 "$CACHE/apt-tools.log"; fail "installing $CHROOT_PACKAGES"; }
    step "caching the tools layer in $TOOLS"
    save_archives
    unmount_all
    rm -rf --one-file-system "$TOOLS" "$TOOLS.new"
    cp -a "$ROOT" "$TOOLS.new"
    rm -f "$TOOLS.new"/var/cache/apt/archives/*.deb
    printf '%s\n' "$TOOLS_STAMP" >"$TOOLS.new/.complete"
    mv "$TOOLS.new" "$TOOLS"
    mount_root
fi
in_root dpkg-query -W -f='  ${Package} ${Version}\n' postfix python3 python3-pytest python3-hypothesis
if in_root dpkg-query -W -f='${Status}\n' menshen python3-milter 2>/dev/null | grep -q 'install ok'; then
    fail "the fresh chroot already has menshen or python3-milter"
fi

snapshot() {
    in_root find / -xdev \( -path /proc -o -path /sys -o -path /dev -o -path /run \
        -o -path /tmp -o -path /root -o -path /var/cache/apt -o -path /var/lib/apt/lists \) \
        -prune -o -print | sort
}
snapshot >"$CACHE/before.list"

# -- 2. the package ------------------------------------------------------------------------

step "apt-get install ./$(basename "$DEB")"
cp "$DEB" "$ROOT/tmp/"
in_root sh -c "cd /tmp && apt-get install -y --no-install-recommends ./$(basename "$DEB")" 2>&1 |
    tee "$ROOT/tmp/apt-menshen.log" | grep -vE '^(Get|Selecting|Preparing|Unpacking|\(Reading)' || true
grep -q '^Setting up menshen ' "$ROOT/tmp/apt-menshen.log" || fail "menshen did not install"
grep -q 'smtpd_milters = unix:menshen/menshen.sock' "$ROOT/tmp/apt-menshen.log" ||
    fail "postinst did not print the main.cf line"
in_root dpkg-query -W -f='  ${Package} ${Version}\n' menshen python3-milter python3-ahocorasick \
    python3-yaml python3-prometheus-client

step "what the package installed"
in_root sh -ec '
    command -v menshen
    menshen --version
    id menshen
    id -Gn menshen | tr " " "\n" | grep -qx postfix
    stat -c "%A %U:%G %n" /var/spool/postfix/menshen /var/lib/menshen /var/log/menshen
    test "$(stat -c "%a %U:%G" /var/spool/postfix/menshen)" = "750 menshen:postfix"
    test "$(stat -c "%a %U:%G" /var/lib/menshen)" = "750 menshen:menshen"
    test "$(stat -c "%a %U:%G" /var/log/menshen)" = "2750 menshen:adm"
    echo "conffiles:"
    dpkg-query -W -f="\${Conffiles}\n" menshen | sed "/^$/d"
    dpkg-query -W -f="\${Conffiles}\n" menshen | grep -q "^ /etc/menshen/menshen.yml "
    dpkg-query -W -f="\${Conffiles}\n" menshen | grep -q "^ /etc/menshen/wordlists/invoice_fraud.txt "
    dpkg-query -W -f="\${Conffiles}\n" menshen | grep -q "^ /etc/logrotate.d/menshen "
    grep -qx "  target: file" /etc/menshen/menshen.yml
    grep -qx "  directory: /etc/menshen/wordlists" /etc/menshen/menshen.yml
    ls /usr/share/doc/menshen/postfix/
    test -L /etc/systemd/system/multi-user.target.wants/menshen.service
    echo "unit enabled: $(readlink /etc/systemd/system/multi-user.target.wants/menshen.service)"
'
step "man menshen, man menshen.yml"
in_root sh -ec '
    man -w menshen menshen.yml
    MANWIDTH=80 man -P cat 8 menshen 2>&1 | sed -n "1,4p"
    MANWIDTH=80 man -P cat 5 menshen.yml 2>&1 | sed -n "1,4p"
    MANWIDTH=80 man -P cat 8 menshen | grep -q "content-security milter for Postfix"
    MANWIDTH=80 man -P cat 5 menshen.yml | grep -q "configuration of the menshen"
'
step "systemd-analyze on the installed unit"
in_root systemd-analyze verify /lib/systemd/system/menshen.service
echo "systemd-analyze verify: no complaint"
in_root systemd-analyze security --offline=true /lib/systemd/system/menshen.service 2>&1 |
    grep 'Overall exposure level'

step "menshen configtest (root, then as user menshen)"
in_root menshen configtest
in_root runuser -u menshen -- menshen configtest

# -- 3. Postfix and the daemon -------------------------------------------------------------

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
step "Postfix on 127.0.0.1:$PORT (chrooted smtpd), with the shipped main.cf snippet"
snippet=/usr/share/doc/menshen/postfix/main.cf.snippet
[ -f "$ROOT$snippet" ] || fail "$snippet is not installed"
in_root postconf -e "maillog_file = /var/log/postfix.log" "inet_interfaces = loopback-only" \
    "inet_protocols = ipv4" "mydestination =" "default_transport = discard:delivered to the test sink"
{ echo; echo "# menshen (deb-test): $snippet"; cat "$ROOT$snippet"; } >>"$ROOT/etc/postfix/main.cf"
in_root postconf -M# smtp/inet
in_root postconf -Me "127.0.0.1:$PORT/inet = 127.0.0.1:$PORT inet n - y - - smtpd"
in_root postconf -M "127.0.0.1:$PORT/inet"
in_root postconf -n smtpd_milters non_smtpd_milters milter_default_action milter_protocol
in_root /usr/lib/postfix/configure-instance.sh -
in_root postfix check
in_root postfix start

unit=$ROOT/lib/systemd/system/menshen.service
unit_value() { sed -n "s/^$1=//p" "$unit" | head -1; }
U_USER=$(unit_value User)
U_GROUP=$(unit_value Group)
U_GROUPS=$(unit_value SupplementaryGroups | tr ' ' ',')
U_UMASK=$(unit_value UMask)
U_EXEC=$(unit_value ExecStart)
U_STATE=$(unit_value StateDirectory)
step "the daemon as the unit starts it: user $U_USER, group $U_GROUP, groups $U_GROUPS, umask $U_UMASK: $U_EXEC"
# Not through in_root (a function): backgrounded, it would be a subshell, and $! must be
# the daemon itself (env, chroot, setpriv and sh all exec).
env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8 chroot "$ROOT" \
    setpriv --reuid="$U_USER" --regid="$U_GROUP" --groups="$U_GROUPS" --inh-caps=-all \
    --bounding-set=-all --no-new-privs -- \
    /bin/sh -c "umask $U_UMASK; exec env STATE_DIRECTORY=/var/lib/$U_STATE $U_EXEC" \
    >"$ROOT/tmp/menshen.log" 2>&1 &
DAEMON=$!
sock=$ROOT/var/spool/postfix/menshen/menshen.sock
for _ in $(seq 300); do
    [ -S "$sock" ] && grep -q 'listening on' "$ROOT/tmp/menshen.log" && break
    kill -0 "$DAEMON" 2>/dev/null || { cat "$ROOT/tmp/menshen.log"; fail "the daemon exited"; }
    sleep 0.1
done
[ -S "$sock" ] || { cat "$ROOT/tmp/menshen.log"; fail "no socket after 30 s"; }
sed 's/^/  menshen: /' "$ROOT/tmp/menshen.log"
in_root stat -c '  %A %U:%G %n' /var/spool/postfix/menshen/menshen.sock
[ "$(in_root stat -c '%a %U:%G' /var/spool/postfix/menshen/menshen.sock)" = "660 menshen:postfix" ] ||
    fail "the socket is not 0660 menshen:postfix"
grep -E '^(Uid|Gid|Groups|NoNewPrivs|CapBnd):' "/proc/$DAEMON/status" | sed 's/^/  /'
echo "  umask $(sed -n 's/^Umask:[[:space:]]*//p' "/proc/$DAEMON/status")"

step "a clean and a keyword message through Postfix"
cp "$HERE/smtp_roundtrip.py" "$ROOT/tmp/"
in_root python3 /tmp/smtp_roundtrip.py "$PORT" | tee "$ROOT/tmp/roundtrip.log"
queue_id=$(sed -n 's/^clean-queued //p' "$ROOT/tmp/roundtrip.log")
for _ in $(seq 300); do
    grep -q "$queue_id: .*status=sent" "$ROOT/var/log/postfix.log" 2>/dev/null && break
    sleep 0.1
done
echo "Postfix's log:"
grep -E 'milter|status=|NOQUEUE' "$ROOT/var/log/postfix.log" | sed 's/^/  /'
grep -q "$queue_id: .*status=sent (delivered to the test sink)" "$ROOT/var/log/postfix.log" ||
    fail "the clean message $queue_id was not delivered"
grep -q 'milter-reject: END-OF-MESSAGE.*5.7.1 Message rejected by content policy' \
    "$ROOT/var/log/postfix.log" || fail "Postfix did not log the milter's 5xx"
echo "audit trail (/var/log/menshen/audit.log):"
sed 's/^/  /' "$ROOT/var/log/menshen/audit.log"
[ "$(grep -c '"action": *"accept"' "$ROOT/var/log/menshen/audit.log")" -ge 1 ] || fail "no accept in the audit trail"
[ "$(grep -c '"action": *"reject"' "$ROOT/var/log/menshen/audit.log")" -ge 1 ] || fail "no reject in the audit trail"
in_root stat -c '  %A %U:%G %n' /var/log/menshen/audit.log

step "stopping the daemon (SIGTERM) and Postfix"
kill -TERM "$DAEMON"
status=0
wait "$DAEMON" || status=$?
tail -2 "$ROOT/tmp/menshen.log" | sed 's/^/  menshen: /'
[ "$status" = 0 ] || fail "menshen serve exited $status on SIGTERM"
in_root postfix stop
for _ in $(seq 100); do [ -z "$(chroot_pids)" ] && break; sleep 0.1; done

# -- 4. the unit tests on Debian's libraries -----------------------------------------------

step "tests/unit and tests/qa with /usr/bin/python3 and Debian's packaged libraries"
if [ -n "$SOURCE_TAR" ]; then
    mkdir -p "$ROOT/tmp/menshen-src"
    tar -xf "$SOURCE_TAR" -C "$ROOT/tmp/menshen-src"
    echo "  the tests of the tree the package was built from ($(basename "$SOURCE_TAR"))"
else
    "$HERE/copy-source" "$ROOT/tmp/menshen-src"
    echo "  the tests of the working tree"
fi
in_root /usr/bin/python3 -c 'import menshen, milter, ahocorasick, yaml, prometheus_client, sys
print("  menshen from", menshen.__file__, "on python", sys.version.split()[0])'
in_root dpkg-query -W -f='  ${Package} ${Version}\n' python3-milter python3-ahocorasick \
    python3-yaml python3-prometheus-client python3-pytest python3-hypothesis
tests_status=0
# hypothesis_compat (tests/packaging) lets tests written for a newer Hypothesis run on
# bookworm's 6.67.1 and says so in the summary.
in_root env CI=true PYTHONDONTWRITEBYTECODE=1 \
    PYTHONPATH=/usr/lib/python3/dist-packages:/tmp/menshen-src/tests/packaging \
    sh -c 'cd /tmp/menshen-src && /usr/bin/python3 -m pytest -q -p no:cacheprovider \
        -p hypothesis_compat tests/unit tests/qa' ||
    tests_status=$?

# -- 5. purge ------------------------------------------------------------------------------

step "apt-get purge menshen (then autoremove its dependencies)"
in_root apt-get purge -y menshen 2>&1 | grep -vE '^\(Reading' || true
in_root apt-get autoremove --purge -y -qq >/dev/null
in_root dpkg-query -W menshen 2>/dev/null | grep -q . && fail "menshen is still known to dpkg"
snapshot >"$CACHE/after.list"
# Changes that are not menshen's: package manager state and logs, man-db's cache of
# formatted pages (the test ran man; mandb's daily job prunes it), Postfix's own queue and
# configuration (the test edited main.cf and ran mail), user database backups.
NOT_OURS='^/var/log/(apt|dpkg\.log|alternatives\.log|postfix\.log)|^/var/lib/dpkg/|^/var/cache/(debconf|man|ldconfig)/|^/etc/(passwd|group|shadow|gshadow|subuid|subgid)-?$|^/etc/postfix/|^/var/lib/postfix/|^/var/spool/postfix/(pid|private|public|maildrop|active|incoming|deferred|defer|bounce|corrupt|flush|hold|saved|trace|etc|lib|usr|dev)(/|$)|^/etc/ld\.so\.cache$'
# What menshen documents that it leaves: the audit trail (operator's data).
DOCUMENTED='^/var/log/menshen(/audit\.log)?$'
comm -13 "$CACHE/before.list" "$CACHE/after.list" | grep -Ev "$NOT_OURS" >"$CACHE/left.list" || true
echo "left after purge (new since before the install):"
sed 's/^/  /' "$CACHE/left.list"
undocumented=$(grep -Ev "$DOCUMENTED" "$CACHE/left.list" || true)
[ -z "$undocumented" ] || fail "purge left undocumented files: $undocumented"
removed=$(comm -23 "$CACHE/before.list" "$CACHE/after.list" | grep -Ev "$NOT_OURS" || true)
[ -z "$removed" ] || fail "purge removed files that were there before: $removed"
echo "the system user stays, as documented: $(in_root getent passwd menshen)"

[ "$tests_status" = 0 ] || fail "the unit tests failed on Debian's libraries (pytest exit $tests_status)"

# -- 6. Postfix installed after menshen ----------------------------------------------------

step "Postfix installed after menshen (a fresh chroot): the dpkg trigger joins group postfix"
stop_chroot_processes
save_archives
unmount_all
wipe_root
cp -a "$BASE" "$ROOT"
mount -t proc proc "$ROOT/proc"
find "$ARCHIVES" -maxdepth 1 -name '*.deb' -exec cp -al -t "$ROOT/var/cache/apt/archives" {} +
cp "$DEB" "$ROOT/tmp/"
in_root apt-get update -qq
in_root sh -c "cd /tmp && apt-get install -y -qq --no-install-recommends ./$(basename "$DEB")" >/dev/null 2>&1 ||
    fail "menshen did not install without Postfix"
in_root sh -ec '
    echo "  without Postfix: $(id menshen)"
    test ! -e /var/spool/postfix/menshen
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
'
in_root apt-get install -y -qq --no-install-recommends postfix 2>&1 | grep -E 'triggers for menshen' | sed 's/^/  /' || true
in_root sh -ec '
    echo "  with Postfix:    $(id menshen)"
    id -Gn menshen | tr " " "\n" | grep -qx postfix
    stat -c "  %A %U:%G %n" /var/spool/postfix/menshen
    test "$(stat -c "%a %U:%G" /var/spool/postfix/menshen)" = "750 menshen:postfix"
' || fail "installing Postfix after menshen did not set up the socket directory"
step "deb-test passed in $(($(date +%s) - START)) s"
