"""When a run's image is gone: can it be rebuilt from its commit, and is the rebuilt one the run's?"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from app import settings
from app.launch import rebuild
from app.launch.errors import UsageError

LOCK, CODE = "1" * 64, "2" * 64


def record(**git) -> dict:
    return {
        "image": {"id": "sha256:" + "a" * 64, "tag": "trainbox:cpu", "code_sha256": CODE},
        "git": {"commit": "c" * 40, "dirty": False, **git},
        "environment": {"lock_sha256": LOCK, "variant": "cpu"},
    }


def test_a_clean_commit_with_both_hashes_can_be_rebuilt():
    assert rebuild.why_not_rebuildable(record()) is None


@pytest.mark.parametrize(
    ("git", "phrase"),
    [
        ({"dirty": True}, "uncommitted changes on cccccccccccc"),
        ({"dirty": None}, "uncommitted changes"),  # unknown is not clean
        ({"commit": "unknown"}, "recorded no git commit"),
    ],
)
def test_a_dirty_or_unknown_tree_cannot_be_rebuilt(git, phrase):
    assert phrase in rebuild.why_not_rebuildable(record(**git))


def test_a_run_from_before_code_hashes_were_recorded_cannot_be_checked():
    old = record()
    del old["image"]["code_sha256"]
    assert rebuild.why_not_rebuildable(old) == "recorded no code_sha256 to check a rebuilt image against"


def test_labels_equal_to_the_run_are_no_mismatch():
    labels = {settings.LOCK_LABEL: LOCK, settings.CODE_LABEL: CODE, "other": "x"}
    assert rebuild.mismatches(labels, record()) == []


def test_a_different_lock_is_named_with_both_values():
    labels = {settings.LOCK_LABEL: "9" * 64, settings.CODE_LABEL: CODE}
    assert rebuild.mismatches(labels, record()) == ["lock_sha256 111111111111 -> 999999999999"]


def test_missing_labels_differ_from_every_hash():
    assert [line.split()[0] for line in rebuild.mismatches({}, record())] == ["lock_sha256", "code_sha256"]


def test_the_rebuild_tag_names_the_commit_in_the_configured_repository():
    assert rebuild.rebuild_tag("0123456789abcdef") == f"{settings.IMAGE_REPOSITORY}:reproduce-0123456789ab"


def git(repo: Path, *args: str) -> str:
    command = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@example.org", *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path) -> Path:
    git(tmp_path, "init", "-q")
    (tmp_path / "file.txt").write_text("first\n")
    git(tmp_path, "add", "file.txt")
    git(tmp_path, "commit", "-q", "-m", "first")
    return tmp_path


def test_the_worktree_holds_the_commit_and_leaves_the_work_tree_alone(repo):
    first = git(repo, "rev-parse", "HEAD")
    (repo / "file.txt").write_text("second\n")
    git(repo, "commit", "-q", "-am", "second")
    (repo / "file.txt").write_text("uncommitted\n")

    with rebuild.worktree(first, repo) as tree:
        assert (tree / "file.txt").read_text() == "first\n"
    assert not tree.exists() and not tree.parent.exists()
    assert (repo / "file.txt").read_text() == "uncommitted\n"
    assert git(repo, "worktree", "list").count("\n") == 0  # only the main work tree


def test_the_worktree_is_removed_when_the_build_fails(repo):
    head = git(repo, "rev-parse", "HEAD")
    with pytest.raises(KeyboardInterrupt), rebuild.worktree(head, repo) as tree:
        raise KeyboardInterrupt
    assert not tree.parent.exists()
    assert git(repo, "worktree", "list").count("\n") == 0


def test_a_commit_not_in_the_repository_is_known_before_any_checkout(repo):
    assert rebuild.has_commit(git(repo, "rev-parse", "HEAD"), repo)
    assert not rebuild.has_commit("f" * 40, repo)
    refused = pytest.raises(UsageError, match="cannot check out commit ffffffffffff")
    with refused, rebuild.worktree("f" * 40, repo):
        pass


def test_a_run_without_recorded_hashes_matches_no_image_and_its_differences_still_print():
    bare = {"image": {"id": "sha256:" + "a" * 64}, "git": {"commit": "c" * 40, "dirty": False}}
    assert rebuild.matching_image(bare) is None  # asks the engine nothing: no label to match
    labels = {settings.LOCK_LABEL: LOCK, settings.CODE_LABEL: CODE}
    assert rebuild.mismatches(labels, bare) == [
        "lock_sha256 none -> 111111111111",
        "code_sha256 none -> 222222222222",
    ]
