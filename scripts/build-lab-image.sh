#!/usr/bin/env bash
# Build the lab's systemd host images locally, with no image registry: debootstrap a minimal
# rootfs, add the operator account, import it into podman. An image built from the same recipe is kept.
#
#   scripts/build-lab-image.sh [--rebuild] [PLATFORM ...]    (default: every platform in lab/platforms.tsv)
#
# Mirrors: LAB_DEBIAN_MIRROR (default: the Debian URI in this host's apt sources),
#          LAB_UBUNTU_MIRROR (default: Ubuntu's public archive).
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
platforms_file="$top/lab/platforms.tsv"
cache_dir="${XDG_CACHE_HOME:-$HOME/.cache}/llm-stack-lab"
work_root="${LAB_BUILD_DIR:-/var/tmp/llm-stack-lab}"
lab_user="labops"
lab_uid=1000
packages="systemd,systemd-sysv,dbus,python3,python3-apt,sudo,acl,ca-certificates,libpam-systemd,dbus-user-session,iproute2,procps,openssh-server"
# Debian 12 has no ubuntu-keyring package: take the archive key from Ubuntu's own package, pinned.
ubuntu_keyring_deb="ubuntu-keyring_2023.11.28.1_all.deb"
ubuntu_keyring_sha256="36de43b15853ccae0028e9a767613770c704833f82586f28eb262f0311adb8a8"

log() { printf '[%s] %s: %s\n' "$(date +%H:%M:%S)" "${platform:-lab}" "$*" >&2; }
die() { log "ERROR: $*" >&2; exit 1; }

debian_mirror() {
  if [ -n "${LAB_DEBIAN_MIRROR:-}" ]; then echo "$LAB_DEBIAN_MIRROR"; return; fi
  local uri
  uri=$(grep -hoE '(^URIs:|^deb) +https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list 2>/dev/null \
        | awk '{print $2}' | head -n1 || true)
  echo "${uri:-http://deb.debian.org/debian}"
}

ubuntu_keyring() {
  local deb="$cache_dir/$ubuntu_keyring_deb" keyring="$cache_dir/ubuntu-archive-keyring.gpg"
  mkdir -p "$cache_dir"
  if ! echo "$ubuntu_keyring_sha256  $deb" | sha256sum --check --status 2>/dev/null; then
    log "downloading $ubuntu_keyring_deb"
    curl -fsSL -o "$deb.part" "$1/pool/main/u/ubuntu-keyring/$ubuntu_keyring_deb"
    echo "$ubuntu_keyring_sha256  $deb.part" | sha256sum --check --status \
      || die "$ubuntu_keyring_deb does not match its pinned sha256; refusing to trust it"
    mv "$deb.part" "$deb"
  fi
  local x; x=$(mktemp -d)
  dpkg-deb -x "$deb" "$x"
  cp "$x/usr/share/keyrings/ubuntu-archive-keyring.gpg" "$keyring"
  rm -rf "$x"
  echo "$keyring"
}

apt_sources() {  # distribution suite mirror
  case "$1" in
    debian)
      local security="${LAB_DEBIAN_SECURITY_MIRROR:-${3%/debian}/debian-security}"
      printf 'deb %s %s main\ndeb %s %s-updates main\ndeb %s %s-security main\n' "$3" "$2" "$3" "$2" "$security" "$2" ;;
    ubuntu)
      printf 'deb %s %s main universe\ndeb %s %s-updates main universe\ndeb %s %s-security main universe\n' "$3" "$2" "$3" "$2" "$3" "$2" ;;
  esac
}

# Every lab host is reached over SSH as real hosts are. A host key made at image build would be shared by
# every container of the image: each container makes its own at first boot instead, and lab/up.yml reads
# it through podman to write the controller's known hosts. The lab's client key is installed by lab/up.yml.
ssh_host_keys_per_container() {
  local rootfs=$1
  rm -f "$rootfs"/etc/ssh/ssh_host_*
  cat > "$rootfs/etc/systemd/system/lab-ssh-host-keys.service" <<'UNIT'
[Unit]
Description=Make this lab host's own SSH host keys
ConditionPathExists=!/etc/ssh/ssh_host_ed25519_key
# Not before ssh.socket: sockets come before every ordinary service, so that would be an ordering cycle.
Before=ssh.service

[Service]
Type=oneshot
ExecStart=/usr/bin/ssh-keygen -A

[Install]
WantedBy=multi-user.target ssh.service
UNIT
  chroot "$rootfs" systemctl enable --quiet lab-ssh-host-keys.service
  # A container may not set its audit login uid: a required pam_loginuid refuses every SSH login.
  sed -i 's/^session\s\+required\s\+pam_loginuid.so/session optional pam_loginuid.so/' "$rootfs/etc/pam.d/sshd"
}

build() {
  local distribution=$1 suite=$2 image=$3
  # The recipe is this script and the platform's line: an image built from another recipe is rebuilt.
  local recipe have
  recipe=$( (cat "$0"; echo "$distribution $suite $image") | sha256sum | cut -c1-16)
  have=$(podman image inspect --format '{{ index .Labels "llm-stack-lab.recipe" }}' "$image" 2>/dev/null || true)
  if [ "$have" = "$recipe" ] && [ "$rebuild" = no ]; then
    log "image $image is up to date, skipping (use --rebuild to rebuild)"
    return
  fi
  local mirror keyring_args=() script_args=()
  case "$distribution" in
    debian) mirror=$(debian_mirror) ;;
    ubuntu)
      mirror="${LAB_UBUNTU_MIRROR:-http://archive.ubuntu.com/ubuntu}"
      keyring_args=(--keyring "$(ubuntu_keyring "$mirror")")
      # This debootstrap predates noble; gutsy is the script every later Ubuntu release uses.
      [ -e "/usr/share/debootstrap/scripts/$suite" ] || script_args=(/usr/share/debootstrap/scripts/gutsy) ;;
    *) die "unknown distribution '$distribution' in $platforms_file" ;;
  esac

  local rootfs="$work_root/$platform"
  rm -rf "$rootfs"; mkdir -p "$rootfs"
  log "debootstrap $suite from $mirror (about 2 minutes)"
  local started=$SECONDS
  debootstrap --variant=minbase --include="$packages" "${keyring_args[@]}" "$suite" "$rootfs" "$mirror" "${script_args[@]}" 2>&1 \
    | grep --line-buffered -E '^(E:|W:|I: (Retrieving Release|Resolving dependencies|Checking component|Installing (core|base)|Base system installed))' \
    | sed -u "s/^/[$platform] /" || true
  [ -x "$rootfs/sbin/init" ] || die "debootstrap did not produce /sbin/init; see the lines above"

  log "configuring the rootfs (apt sources, operator account '$lab_user')"
  apt_sources "$distribution" "$suite" "$mirror" > "$rootfs/etc/apt/sources.list"
  chroot "$rootfs" useradd --create-home --shell /bin/bash --uid "$lab_uid" --user-group "$lab_user"
  echo "$lab_user ALL=(ALL) NOPASSWD: ALL" > "$rootfs/etc/sudoers.d/$lab_user"
  chmod 0440 "$rootfs/etc/sudoers.d/$lab_user"
  ssh_host_keys_per_container "$rootfs"
  # A real host has package lists (check mode cannot refresh them); the downloaded .debs go.
  chroot "$rootfs" apt-get update -qq
  : > "$rootfs/etc/machine-id"
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/cache/apt/*.bin

  log "importing into podman as $image"
  local old
  old=$(podman image inspect --format '{{ .Id }}' "$image" 2>/dev/null || true)
  tar -C "$rootfs" -c . | podman import --quiet \
    --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL=SIGRTMIN+3' --change "ENV container=podman" \
    --change "LABEL llm-stack-lab.recipe=$recipe" - "$image" >/dev/null
  rm -rf "$rootfs"
  # The replaced image goes unless a container still uses it.
  [ -z "$old" ] || podman rmi "$old" >/dev/null 2>&1 || true
  log "built $image in $((SECONDS - started)) s"
}

rebuild=no
if [ "${1:-}" = --rebuild ]; then rebuild=yes; shift; fi
[ "$(id -u)" = 0 ] || die "debootstrap and rootful podman need root"
command -v debootstrap >/dev/null || die "debootstrap is missing: run scripts/setup-controller.sh first"

wanted=("$@")
found=0
while IFS=$'\t' read -r platform distribution suite image; do
  case "$platform" in ''|'#'*) continue ;; esac
  if [ ${#wanted[@]} -gt 0 ] && [[ ! " ${wanted[*]} " == *" $platform "* ]]; then continue; fi
  found=$((found + 1))
  build "$distribution" "$suite" "$image"
done < "$platforms_file"
[ "$found" -gt 0 ] || die "no platform named '${wanted[*]}' in $platforms_file"
