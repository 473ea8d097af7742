# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""A host's deployment lock: one file that names the run holding it, so two runs never deploy at once."""

from __future__ import annotations

import json
import os
import stat
import time

# What a run says about itself in the lock; the module adds when it took it.
HOLDER_FIELDS = ("id", "user", "controller", "playbook")


class LockError(Exception):
    """The lock cannot be taken or read; the message says by whom it is held and what to do."""


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as handle:
            return handle.read().strip()
    except OSError:
        return ""


def read_holder(path: str) -> dict | None:
    """The holder recorded in the lock file, or None when there is no lock.

    The file must be a regular file owned by the user reading it (a lock someone else planted is refused,
    never obeyed or removed), and it must parse."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise LockError(f"Cannot read the deployment lock {path}: {exc}. Remove it if it is not a file.") from exc
    with os.fdopen(fd, encoding="utf-8") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.geteuid():
            raise LockError(
                f"The deployment lock {path} is not a regular file owned by uid {os.geteuid()} (it is owned by uid "
                f"{info.st_uid}): something else put it there. Remove it by hand after checking what it is."
            )
        text = handle.read()
    try:
        holder = json.loads(text)
    except ValueError:
        holder = None
    if not isinstance(holder, dict) or not isinstance(holder.get("id"), str) or not holder["id"]:
        # A run killed while it wrote the lock; naming it lets the operator break it like any other.
        return {"id": "unreadable", "user": "?", "controller": "?", "playbook": "?", "acquired": "?", "boot_id": ""}
    return holder


def held_message(path: str, holder: dict, waited: float) -> str:
    waited_text = f" after waiting {waited:.0f} s" if waited >= 1 else ""
    return (
        f"Another run holds the deployment lock {path}{waited_text}: run {holder['id']} by "
        f"{holder.get('user', '?')}@{holder.get('controller', '?')} ({holder.get('playbook', '?')}), since "
        f"{holder.get('acquired', '?')}. Wait for it to end (llm_stack_run_lock_wait: seconds to wait for it), or, "
        f"if that run is over (killed, or its controller lost), break its lock: "
        f"-e llm_stack_run_lock_break={holder['id']}"
    )


def _write_staging(path: str, content: str) -> str:
    staging = f"{path}.{os.getpid()}.new"
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content)
        handle.flush()
        os.fsync(handle.fileno())
    return staging


def _write_new(path: str, content: str) -> bool:
    """Create the lock with content, whole (a link to a finished file); False when it exists already."""
    staging = _write_staging(path, content)
    try:
        os.link(staging, path)
    except FileExistsError:
        return False
    finally:
        os.unlink(staging)
    return True


def _replace(path: str, content: str) -> None:
    os.replace(_write_staging(path, content), path)


def acquire(
    path: str,
    run: dict,
    *,
    wait: float = 0.0,
    break_run: str = "",
    dry_run: bool = False,
    poll: float = 1.0,
) -> dict:
    """Take the lock for run (its id and who started it), waiting up to wait seconds for another run.

    Taking a lock this run holds already changes nothing. A lock of an earlier boot (a host restarted
    while a run held it) is taken over. A lock held by the run named break_run is taken over. Anything
    else raises LockError once wait has passed."""
    record = {key: str(run.get(key, "")) for key in HOLDER_FIELDS}
    if not record["id"]:
        raise LockError("The run has no id: the lock needs one to tell runs apart.")
    boot = _boot_id()
    started = time.monotonic()
    while True:
        waited = time.monotonic() - started
        holder = read_holder(path)
        result = {"acquired": True, "held_by": record, "waited": round(waited, 1), "broke": None, "path": path}
        if holder is None:
            if dry_run:
                return {**result, "acquired": False}
            stamp = {**record, "acquired": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "boot_id": boot}
            if _write_new(path, json.dumps(stamp, sort_keys=True) + "\n"):
                return {**result, "held_by": stamp}
            continue
        if holder["id"] == record["id"]:
            return {**result, "held_by": holder, "already_held": True}
        stale = bool(boot) and bool(holder.get("boot_id")) and holder["boot_id"] != boot
        if stale or (break_run and holder["id"] == break_run):
            if dry_run:
                return {**result, "acquired": False, "broke": holder}
            stamp = {**record, "acquired": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "boot_id": boot}
            _replace(path, json.dumps(stamp, sort_keys=True) + "\n")
            now_held = read_holder(path)
            if now_held is not None and now_held["id"] == record["id"]:
                reason = "held before the host restarted" if stale else "broken as asked"
                return {**result, "held_by": now_held, "broke": {**holder, "reason": reason}}
            continue
        if waited >= wait:
            raise LockError(held_message(path, holder, waited))
        time.sleep(max(0.0, min(poll, wait - waited)))


def release(path: str, run_id: str, dry_run: bool = False) -> dict:
    """Remove the lock when this run holds it; a lock of another run is left alone and named."""
    holder = read_holder(path)
    if holder is None:
        return {"released": False, "held_by": None, "path": path}
    if holder["id"] != run_id:
        return {"released": False, "held_by": holder, "path": path}
    if not dry_run:
        os.unlink(path)
    return {"released": True, "held_by": holder, "path": path}
