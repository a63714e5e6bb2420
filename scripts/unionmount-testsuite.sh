#!/usr/bin/env bash
# Runs amir73il/unionmount-testsuite (fetched separately, never committed) against layerfs or a peer,
# one test per `./run` invocation (the suite stops at its first failure otherwise), in several modes,
# and prints per-mode passed/failed counts and the names of the failures.
#
# Usage: scripts/unionmount-testsuite.sh [options] PATH_TO_SUITE [MODE...] [-- TEST...]
#   MODE    ov | ov-xdev | ov2 | ov3          (default: all four)
#   TEST    test names (e.g. rename-dir); default: the suite's own list for the mode
# Options:
#   --target=T     layerfs (default) | fuse-overlayfs | unionfs-fuse | overlay (kernel)
#   --bin=PATH     layerfs executable (default: bin/layerfs of this checkout)
#   --logs=DIR     keep per-test logs in DIR (default: a fresh dir under /tmp, printed at the end)
#   --timeout=S    per-test timeout in seconds (default 300)
#   -v             pass -v to the suite
# Needs root (the suite mounts). Everything is mounted under a private temp dir (never /mnt, /lower,
# /upper), and every mount made here is unmounted on exit. Exit status: 0 if every test passed.
set -u

die() { echo "unionmount-testsuite.sh: $*" >&2; exit 2; }

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
target=layerfs
bin="$here/../bin/layerfs"
logs=""
per_test_timeout=300
verbose=""
while [ $# -gt 0 ]; do
  case "$1" in
    --target=*) target=${1#--target=} ;;
    --bin=*) bin=${1#--bin=} ;;
    --logs=*) logs=${1#--logs=} ;;
    --timeout=*) per_test_timeout=${1#--timeout=} ;;
    -v) verbose="-v" ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) break ;;
  esac
  shift
done
[ $# -ge 1 ] || die "usage: $0 [--target=T] PATH_TO_SUITE [MODE...] [-- TEST...]"
suite=$(cd "$1" 2>/dev/null && pwd) || die "no suite at $1"
shift
[ -x "$suite/run" ] || die "$suite/run is not the unionmount-testsuite runner"
[ "$(id -u)" = 0 ] || die "must run as root (the suite mounts)"

modes=()
tests_override=()
while [ $# -gt 0 ]; do
  if [ "$1" = "--" ]; then shift; tests_override=("$@"); break; fi
  case "$1" in
    ov|ov-xdev|ov2|ov3) modes+=("$1") ;;
    *) die "unknown mode $1 (ov, ov-xdev, ov2, ov3)" ;;
  esac
  shift
done
[ ${#modes[@]} -gt 0 ] || modes=(ov ov-xdev ov2 ov3)

# The FUSE type given to `./run --fuse=`; the suite then runs `mount -t fuse.<it> <it> MNT -o ...`.
fuse_arg=""
wrapper=""
case "$target" in
  layerfs)
    bin=$(readlink -f "$bin") || die "no layerfs binary at $bin"
    [ -x "$bin" ] || die "layerfs binary $bin is not executable"
    case "$bin" in *.*) die "the layerfs path $bin contains a '.': mount -t fuse.<path> would split it" ;; esac
    fuse_arg="--fuse=$bin" ;;
  fuse-overlayfs)
    command -v fuse-overlayfs >/dev/null || die "fuse-overlayfs is not installed"
    fuse_arg="--fuse=fuse-overlayfs" ;;
  unionfs-fuse) command -v unionfs >/dev/null || die "unionfs-fuse is not installed" ;;
  overlay) ;;
  *) die "unknown target $target" ;;
esac

work=$(mktemp -d /tmp/layerfs-umts-XXXXXX) || die "mktemp failed"
chmod 755 "$work"  # the suite checks some things as uid 1: it must reach the mount
[ -n "$logs" ] || logs="$work-logs"
mkdir -p "$logs" || die "cannot create $logs"
lower="$work/lower"; base="$work/base"; mnt="$work/mnt"
mkdir -p "$lower" "$base" "$mnt" "$work/bin"

if [ "$target" = unionfs-fuse ]; then
  # unionfs-fuse has no overlay-style options: translate them. Called by mount.fuse3 as
  # WRAPPER SOURCE MNT -o opts, so it takes the layers from lowerdir=/upperdir= and drops the rest.
  wrapper="$work/bin/unionfs-ov"
  cat >"$wrapper" <<'EOF'
#!/bin/sh
src=$1; mnt=$2; shift 2
opts=""
while [ $# -gt 0 ]; do
  case "$1" in -o) opts="$opts,$2"; shift ;; -o*) opts="$opts,${1#-o}" ;; esac
  shift
done
lower=""; upper=""
IFS=,
for o in $opts; do
  case "$o" in lowerdir=*) lower=${o#lowerdir=} ;; upperdir=*) upper=${o#upperdir=} ;; esac
done
branches="$upper=RW"
IFS=:
for l in $lower; do branches="$branches:$l=RO"; done
unset IFS
exec /usr/bin/unionfs -o cow,allow_other,default_permissions,suid,dev,hide_meta_files "$branches" "$mnt"
EOF
  chmod +x "$wrapper"
  fuse_arg="--fuse=$wrapper"
fi

# mount(8) splits `fuse.<path>` at a '.', so helper paths (and thus $work) must not contain one.
# Abort a FUSE connection whose server hangs, so umount cannot block forever.
abort_fuse() {
  local dev minor
  dev=$(mountpoint -d "$1" 2>/dev/null) || return 0
  minor=${dev#*:}
  [ "${dev%%:*}" = 0 ] && [ -w "/sys/fs/fuse/connections/$minor/abort" ] &&
    echo 1 >"/sys/fs/fuse/connections/$minor/abort" 2>/dev/null
  return 0
}

# Unmount everything at or below $1, deepest first; lazy + abort if a plain umount fails or hangs.
unmount_below() {
  local root=$1 m
  for _ in 1 2 3 4 5; do
    mapfile -t ms < <(awk -v r="$root" '$2 == r || index($2, r "/") == 1 { print $2 }' /proc/mounts | sort -r)
    [ ${#ms[@]} -gt 0 ] || return 0
    for m in "${ms[@]}"; do
      timeout 20 umount "$m" 2>/dev/null || { abort_fuse "$m"; timeout 20 umount -l "$m" 2>/dev/null; }
    done
  done
}

cleanup() {
  unmount_below "$work"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The suite's own test lists: [base, added when dir renames give EXDEV, added when they work].
mapfile -t lists < <(python3 - "$suite/run" <<'EOF'
import re, sys
src = open(sys.argv[1]).read()
blocks = re.findall(r'tests\s*\+?=\s*\[(.*?)\]', src, re.S)
for b in blocks[:3]:
    print(" ".join(re.findall(r'"([^"]+)"', b)))
EOF
)
[ ${#lists[@]} -eq 3 ] || die "cannot read the test list from $suite/run"

# tmpfs names must not end in "_layer": the suite's clean-up unmounts those.
mount -t tmpfs umtslower "$lower" || die "cannot mount tmpfs"
mount -t tmpfs umtsbase "$base" || die "cannot mount tmpfs"

total_failed=0
summary=""
for mode in "${modes[@]}"; do
  ov="--ov"; flags=(); opts=""
  case "$mode" in
    ov) ;;
    ov-xdev) flags=(--xdev)
      case "$target" in
        layerfs) opts="dirrename=exdev" ;;
        overlay) opts="redirect_dir=off" ;;
      esac ;;
    ov2) ov="--ov=2" ;;
    ov3) ov="--ov=3" ;;
  esac
  if [ ${#tests_override[@]} -gt 0 ]; then
    tests=("${tests_override[@]}")
  elif [ "$mode" = ov-xdev ]; then
    read -r -a tests <<<"${lists[0]} ${lists[1]}"
  else
    read -r -a tests <<<"${lists[0]} ${lists[2]}"
  fi
  passed=0; failed=0; failures=""
  echo "=== mode $mode (target $target): ${#tests[@]} tests"
  for t in "${tests[@]}"; do
    log="$logs/$mode.$t.log"
    args=("$ov")
    [ -n "$fuse_arg" ] && args+=("$fuse_arg")
    args+=("${flags[@]}")
    [ -n "$verbose" ] && args+=("$verbose")
    args+=("$t")
    (
      cd "$suite" || exit 2
      export UNIONMOUNT_LOWERDIR="$lower" UNIONMOUNT_BASEDIR="$base" UNIONMOUNT_MNTPOINT="$mnt"
      if [ -n "$opts" ]; then export UNIONMOUNT_MNTOPTIONS="$opts"; else unset UNIONMOUNT_MNTOPTIONS; fi
      echo "+ ./run ${args[*]}  (UNIONMOUNT_MNTOPTIONS=${opts})"
      exec timeout -k 10 "$per_test_timeout" ./run "${args[@]}"
    ) >"$log" 2>&1
    rc=$?
    # The suite leaves the union mounted after each run ("for further playing").
    unmount_below "$mnt"
    find "$base" -mindepth 1 -maxdepth 1 -exec rm -rf {} + 2>/dev/null
    if [ $rc -eq 0 ]; then
      passed=$((passed + 1))
    else
      failed=$((failed + 1))
      where=$(grep -E '^TEST ' "$log" | tail -n 1)
      why=$(grep -vE '^( \./run |TEST |\*\*\*|$)' "$log" | tail -n 1)
      [ $rc -eq 124 ] && why="timed out after ${per_test_timeout}s"
      failures="$failures  FAIL $t: ${where#TEST } -- $why"$'\n'
      echo "  FAIL $t (log: $log)"
    fi
  done
  echo "mode $mode: $passed passed, $failed failed"
  printf '%s' "$failures"
  summary="${summary}mode $mode: $passed passed, $failed failed"$'\n'"$failures"
  total_failed=$((total_failed + failed))
done

echo
echo "=== summary (target $target, logs in $logs)"
printf '%s' "$summary"
[ $total_failed -eq 0 ]
