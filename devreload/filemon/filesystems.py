"""Which mount a folder is on, and whether OS file events arrive there.

inotify (and watchdog, and watchman on Linux) only sees changes made through this
kernel. On a network or host-shared mount a change made on the other side (the file
server, the Windows or macOS host, another VM) produces no event at all, and the watch
does not fail either: such folders must be polled. Linux says which mount is which in
``/proc/self/mountinfo``; elsewhere the table is empty and every folder counts as local.

The types below follow what other watchers decided: IntelliJ's fsnotifier polls nfs,
cifs and every ``fuse*`` type but ``fuseblk``; watchman's FSDetect flags nfs, cifs, smb
and fuse; watchfiles (issue #187) and Revise.jl (pull 1055) poll WSL's 9p / drvfs
mounts; Docker Desktop's bind mounts do forward events, but lose them (docker/for-mac
#4731, #6350, #7034), so they are polled too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

MOUNTINFO = "/proc/self/mountinfo"

#: Network, cluster and host-shared file systems: changes made elsewhere send no event.
UNRELIABLE_TYPES = frozenset({
    "nfs", "nfs4", "cifs", "smb3", "smbfs", "ncpfs", "afs", "coda", "davfs",  # network
    "ceph", "glusterfs", "lustre", "gpfs", "beegfs", "orangefs", "ocfs2", "gfs2",  # cluster
    "9p",  # WSL2's /mnt/c, QEMU / Lima / Podman machine shares, ChromeOS
    "drvfs",  # WSL1's /mnt/c
    "virtiofs",  # Lima, Podman machine, Kata and Docker Desktop VMs
    "fakeowner",  # Docker Desktop's bind mounts (virtiofs seen from a container)
    "vboxsf", "vmhgfs", "prl_fs",  # VirtualBox, VMware and Parallels shared folders
})

#: FUSE types known to be local. Every other FUSE type (plain ``fuse`` and ``fuse.*``:
#: sshfs, rclone, s3fs, gvfs, vmhgfs-fuse, grpcfuse, osxfs, ceph-fuse, ...) is polled,
#: as fsnotifier does: most FUSE file systems serve storage someone else changes, and
#: polling a local one only costs a stat per file, while a missed change costs a reload.
LOCAL_FUSE_TYPES = frozenset({
    "fuseblk",  # ntfs-3g, exfat-fuse: a disk of this machine
    "fuse.fuse-overlayfs",  # rootless containers' root file system
    "fuse.squashfuse", "fuse.squashfuse_ll", "fuse.snapfuse",  # read-only images
})

_ESCAPE = re.compile(r"\\([0-7]{3})")


@dataclass(frozen=True)
class Mount:
    point: str
    fstype: str
    source: str


def _unescape(field: str) -> str:
    """The kernel writes space, tab, newline and backslash in paths as ``\\040`` etc."""
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 8)), field)


def _unreliable(fstype: str) -> bool:
    if fstype in UNRELIABLE_TYPES:
        return True
    return (fstype == "fuse" or fstype.startswith("fuse.")) and fstype not in LOCAL_FUSE_TYPES


class MountTable:
    """The mounts of this process, looked up by folder: a dict by mount point, so that a
    lookup costs one probe per level of the folder's path, cached per folder."""

    def __init__(self, mounts: Iterable[Mount] = ()) -> None:
        # A later line of mountinfo is mounted over an earlier one at the same point.
        self.by_point = {mount.point: mount for mount in mounts}
        self._cache: dict[str, Mount | None] = {}

    @classmethod
    def parse(cls, text: str) -> MountTable:
        """The table of a ``/proc/self/mountinfo`` text: ``id parent dev root point options
        [optional fields...] - fstype source super-options``; malformed lines are skipped."""
        mounts = []
        for line in text.splitlines():
            fields = line.split()
            try:
                dash = fields.index("-", 6)
                mounts.append(Mount(_unescape(fields[4]), fields[dash + 1],
                                    _unescape(fields[dash + 2])))
            except (ValueError, IndexError):
                continue
        return cls(mounts)

    @classmethod
    def read(cls) -> MountTable:
        """This process's mounts; an empty table where there is no mountinfo (macOS,
        Windows) or it cannot be read."""
        try:
            with open(MOUNTINFO, "rb") as f:
                return cls.parse(os.fsdecode(f.read()))
        except OSError:
            return cls()

    def mount_of(self, folder: str) -> Mount | None:
        """The mount holding ``folder`` (symlinks resolved): the longest mount point
        containing it."""
        if folder in self._cache:
            return self._cache[folder]
        path = os.path.realpath(folder)
        found = None
        while True:
            found = self.by_point.get(path)
            parent = os.path.dirname(path)
            if found is not None or parent == path:
                break
            path = parent
        self._cache[folder] = found
        return found

    def events_unreliable(self, folder: str) -> Mount | None:
        """The mount of ``folder`` if changes made there from elsewhere send no OS event."""
        mount = self.mount_of(folder)
        return mount if mount is not None and _unreliable(mount.fstype) else None


def describe(mount: Mount) -> str:
    """The mount in a few words for a log line, with its source where that tells more:
    ``9p mount /mnt/c (C:\\)``, ``nfs4 mount /home/ann (files:/export/ann)``."""
    shown = f"{mount.fstype} mount {mount.point}"
    if mount.source and mount.source not in ("none", mount.fstype):
        shown += f" ({mount.source})"
    return shown
