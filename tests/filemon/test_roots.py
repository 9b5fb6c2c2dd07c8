"""Recursive roots: every watched folder covered, by as few streams as the project needs,
never one wider than the project for a file outside it."""

from __future__ import annotations

from devreload.filemon.roots import Roots


def test_folders_of_a_project_share_one_root() -> None:
    roots = Roots("/p")
    assert roots.cover("/p/app/views") == ("/p/app/views", [])
    assert roots.cover("/p/app/views/admin") == (None, []), "covered already"
    assert roots.cover("/p/app/models") == ("/p/app", ["/p/app/views"])
    assert roots.cover("/p/tests") == ("/p", ["/p/app"])
    assert roots.cover("/p/deep/er/still") == (None, [])
    assert roots.roots == {"/p"}


def test_a_folder_outside_the_project_is_a_root_of_its_own() -> None:
    roots = Roots("/home/me/p")
    roots.cover("/home/me/p/app")
    assert roots.cover("/home/me/shared/conf") == ("/home/me/shared/conf", [])
    assert roots.cover("/etc/app") == ("/etc/app", [])
    assert roots.roots == {"/home/me/p/app", "/home/me/shared/conf", "/etc/app"}, (
        "never merged into /home/me or / for one file")


def test_a_root_that_is_gone_is_laid_again_when_needed() -> None:
    roots = Roots("/p")
    roots.cover("/p/app")
    assert roots.drop("/p/app") and not roots.drop("/p/app/x")
    assert roots.cover("/p/app") == ("/p/app", [])
