"""Which mount a folder is on, read from /proc/self/mountinfo, and which mounts send no OS
file events for changes made on the other side (network and host-shared file systems)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from devreload.filemon import filesystems
from devreload.filemon.filesystems import Mount, MountTable, describe

# The first lines are this test machine's; the rest are made up after real systems: an
# NFS home with a tmpfs inside, Samba, WSL2's C: drive, a Lima share, Docker Desktop bind
# mounts, sshfs, a USB disk whose label has a space, an automount point with its NFS mount
# over it, and two local FUSE mounts.
MOUNTINFO = r"""22 27 0:21 / /proc rw,relatime - proc proc rw
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
24 27 0:6 / /dev rw,relatime - devtmpfs devtmpfs rw,size=12334432k,nr_inodes=3083608,mode=755
25 24 0:23 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24683656k
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard,resv_strict,resuid=65534,resgid=65534
30 25 0:27 / /dev/shm rw,relatime - tmpfs tmpfs rw,size=24683656k
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
60 27 0:50 / /home/ann rw,relatime shared:30 - nfs4 files.example.com:/export/home/ann rw,vers=4.2,rsize=1048576,wsize=1048576,namlen=255,hard,proto=tcp,timeo=600,retrans=2,sec=sys,clientaddr=10.0.0.7
61 60 0:51 / /home/ann/src/build rw,nosuid,nodev shared:31 - tmpfs tmpfs rw,size=1048576k
62 27 0:52 / /mnt/projects rw,relatime shared:32 - cifs //nas.example.com/projects rw,vers=3.1.1,cache=strict,username=ann,uid=1000,noforceuid,gid=1000
63 27 0:53 / /mnt/c rw,noatime,dirsync shared:33 - 9p C:\134 rw,dirsync,aname=drvfs;path=C:\134;uid=1000;gid=1000;symlinkroot=/mnt/,mmap,access=client,msize=65536,trans=fd,rfd=5,wfd=5
64 27 0:54 / /Users/ann rw,relatime shared:34 - virtiofs mount0 rw
65 27 0:55 / /app rw,relatime - fuse.grpcfuse grpcfuse rw,user_id=0,group_id=0,allow_other,max_read=1048576
66 27 0:56 /Users/ann/site /site rw,relatime - fakeowner /run/host_mark/Users rw,fakeowner
67 27 0:57 / /home/bob/remote rw,nosuid,nodev,relatime shared:35 - fuse.sshfs bob@build.example.com:/srv rw,user_id=1000,group_id=1000
68 27 8:17 / /media/ann/USB\040Disk rw,nosuid,nodev,relatime shared:36 - vfat /dev/sdb1 rw,fmask=0022,dmask=0022
69 27 0:58 / /net/srv rw,relatime shared:37 - autofs /etc/auto.net rw,fd=7,pgrp=1,timeout=300,minproto=5,maxproto=5,indirect
70 69 0:59 / /net/srv rw,relatime shared:38 - nfs srv:/export rw,vers=3,hard,proto=tcp
71 27 8:33 / /media/ann/windows rw,relatime shared:39 - fuseblk /dev/sdc1 rw,user_id=0,group_id=0,allow_other,blksize=4096
72 27 0:60 / /home/ann/.local/share/containers/storage/overlay/abc/merged rw,nodev,relatime - fuse.fuse-overlayfs fuse-overlayfs rw,user_id=1000,group_id=1000
this line is not a mount
"""  # noqa: E501 (the lines are as the kernel writes them)


@pytest.fixture
def table() -> MountTable:
    return MountTable.parse(MOUNTINFO)


def test_parse(table: MountTable) -> None:
    assert table.by_point["/"] == Mount("/", "ext4", "/dev/vda")
    assert table.by_point["/mnt/c"] == Mount("/mnt/c", "9p", "C:\\")
    assert table.by_point["/home/ann"].source == "files.example.com:/export/home/ann"
    assert table.by_point["/media/ann/USB Disk"].fstype == "vfat"
    assert len(table.by_point) == 18  # two mounts over others, one line that is no mount


@pytest.mark.parametrize(
    ("folder", "point", "unreliable"),
    [
        ("/home/ann/src/app", "/home/ann", True),
        ("/home/ann", "/home/ann", True),
        ("/home/annex/app", "/", False),  # "/home/ann" is a prefix of the string only
        ("/home/ann/src/build/lib", "/home/ann/src/build", False),  # a tmpfs in the NFS home
        ("/mnt/projects/site", "/mnt/projects", True),
        ("/mnt/c/Users/ann/site", "/mnt/c", True),
        ("/mnt/cache", "/", False),
        ("/Users/ann/site", "/Users/ann", True),
        ("/app/pkg", "/app", True),
        ("/site", "/site", True),
        ("/home/bob/remote/app", "/home/bob/remote", True),
        ("/media/ann/USB Disk/site", "/media/ann/USB Disk", False),
        ("/net/srv/site", "/net/srv", True),  # the NFS mount, not the automount below it
        ("/media/ann/windows/site", "/media/ann/windows", False),
        ("/home/ann/.local/share/containers/storage/overlay/abc/merged/app",
         "/home/ann/.local/share/containers/storage/overlay/abc/merged", False),
        ("/dev/shm/x", "/dev/shm", False),
    ],
)
def test_mount_of_and_reliability(
    table: MountTable, folder: str, point: str, unreliable: bool
) -> None:
    mount = table.mount_of(folder)
    assert mount is not None
    assert mount.point == point
    assert (table.events_unreliable(folder) == mount) is unreliable
    assert (table.events_unreliable(folder) is None) is not unreliable


def test_plain_and_unknown_fuse_are_polled() -> None:
    table = MountTable([Mount("/", "ext4", "/dev/sda1"), Mount("/eden", "fuse", "edenfs"),
                        Mount("/gdrive", "fuse.rclone", "gdrive:")])
    assert table.events_unreliable("/eden/repo") == Mount("/eden", "fuse", "edenfs")
    assert table.events_unreliable("/gdrive/docs") is not None
    assert table.events_unreliable("/srv") is None


def test_a_link_is_resolved_first(tmp_path: Path) -> None:
    (tmp_path / "share" / "project").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "share" / "project", target_is_directory=True)
    share = str(tmp_path / "share")
    table = MountTable([Mount("/", "ext4", "/dev/sda1"), Mount(share, "nfs", "srv:/export")])
    assert table.events_unreliable(str(tmp_path / "link")) == Mount(share, "nfs", "srv:/export")
    assert table.events_unreliable(str(tmp_path)) is None


def test_describe(table: MountTable) -> None:
    assert describe(table.by_point["/mnt/c"]) == "9p mount /mnt/c (C:\\)"
    assert describe(table.by_point["/dev/shm"]) == "tmpfs mount /dev/shm"
    assert describe(Mount("/x", "virtiofs", "none")) == "virtiofs mount /x"


def test_read_this_machine(tmp_path: Path) -> None:
    table = MountTable.read()
    root = table.mount_of("/")
    assert root is not None and root.point == "/"
    assert table.events_unreliable("/") is None
    assert table.mount_of(str(tmp_path)) is not None


def test_read_without_mountinfo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(filesystems, "MOUNTINFO", str(tmp_path / "missing"))
    table = MountTable.read()
    assert table.by_point == {}
    assert table.mount_of(os.getcwd()) is None
    assert table.events_unreliable(os.getcwd()) is None
