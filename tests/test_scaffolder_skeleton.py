"""fetch:template's copying: options as Backstage has them, and nothing written outside the
workspace whatever the template, the skeleton or the values say."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.scaffolder.model import ScaffolderError
from bot.scaffolder.skeleton import CopyOptions, copy_skeleton, skeleton_dir
from bot.scaffolder.workspace import Workspace


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return root


def copy(tmp_path: Path, files: dict[str, str | bytes], target: str = ".", **options) -> tuple[Workspace, list[str]]:
    source = write(tmp_path / "template" / "skeleton", files)
    workspace = Workspace.create(tmp_path / "work", "ws-")
    log: list[str] = []
    copy_skeleton(source.resolve(), workspace, target, CopyOptions(**options), log.append)
    return workspace, log


def test_names_and_contents_are_rendered_binary_and_modes_kept(tmp_path):
    png = b"\x89PNG\r\n\x1a\n\x00${{ values.name }}\xff"
    skeleton = write(tmp_path / "template" / "skeleton", {"${{ values.name }}/README.md": "# ${{ values.name }}\n",
                                                          "bin/run-${{ values.name }}.sh": "#!/bin/sh\necho ${{ values.name }}\n",
                                                          "logo.png": png})
    os.chmod(skeleton / "bin/run-${{ values.name }}.sh", 0o755)
    workspace = Workspace.create(tmp_path / "work", "ws-")
    copy_skeleton(skeleton.resolve(), workspace, "out", CopyOptions(values={"name": "web"}), lambda _: None)
    assert workspace.files() == {"out/web/README.md": b"# web\n", "out/bin/run-web.sh": b"#!/bin/sh\necho web\n",
                                 "out/logo.png": png}
    assert os.stat(workspace.path("out/bin/run-web.sh")).st_mode & 0o777 == 0o755
    assert os.stat(workspace.path("out/logo.png")).st_mode & 0o111 == 0


def test_copy_without_render_templating_and_extension(tmp_path):
    files = {".github/workflows/ci.yml": "run: ${{ github.sha }}\n",
             "${{ values.name }}/raw.txt": "${{ values.name }}\n",
             "plain/${{ values.name }}.txt": "${{ values.name }}\n",
             "page.html.njk": "<h1>${{ values.name }}</h1>\n"}
    workspace, _ = copy(tmp_path, files, values={"name": "web"}, without_render=(".github/workflows/*",),
                        without_templating=("plain/*",), extension=".njk")
    assert workspace.files() == {
        ".github/workflows/ci.yml": b"run: ${{ github.sha }}\n",  # untouched
        "web/raw.txt": b"${{ values.name }}\n",  # name rendered; contents only for .njk files
        "plain/web.txt": b"${{ values.name }}\n",  # name rendered, contents kept
        "page.html": b"<h1>web</h1>\n",
    }


def test_cookiecutter_skeletons_and_names_that_render_empty(tmp_path):
    workspace, log = copy(tmp_path, {"{{ cookiecutter.name }}.md": "{{ cookiecutter.name | jsonify }}\n",
                                     "{% if cookiecutter.docs %}docs.md{% endif %}": "docs\n"},
                          values={"name": "web", "docs": False}, cookiecutter=True)
    assert workspace.files() == {"web.md": b'"web"\n'}
    assert any("renders empty" in line for line in log)


def test_existing_files_are_kept_unless_replace(tmp_path):
    workspace, log = copy(tmp_path, {"a.txt": "new\n"})
    workspace.path("a.txt").write_text("old\n")
    copy_skeleton((tmp_path / "template/skeleton").resolve(), workspace, ".", CopyOptions(), log.append)
    assert workspace.path("a.txt").read_text() == "old\n"
    copy_skeleton((tmp_path / "template/skeleton").resolve(), workspace, ".", CopyOptions(replace=True), log.append)
    assert workspace.path("a.txt").read_text() == "new\n"


@pytest.mark.parametrize("target", ["../escape", "a/../../escape", "/tmp/escape", "//etc"])
def test_target_paths_outside_the_workspace_are_refused(tmp_path, target):
    with pytest.raises(ScaffolderError, match="targetPath"):
        copy(tmp_path, {"a.txt": "x"}, target=target)
    assert not (tmp_path / "escape").exists() and not (tmp_path / "work" / "escape").exists()


@pytest.mark.parametrize("name", ["${{ values.absolute }}.txt", "${{ values.evil }}/x.txt", "a/${{ values.dots }}/b.txt"])
def test_rendered_names_cannot_leave_the_workspace(tmp_path, name):
    with pytest.raises(ScaffolderError, match="leaves the workspace|must be relative"):
        copy(tmp_path, {name: "x"}, values={"absolute": str(tmp_path / "pwned"), "evil": "../../../pwned", "dots": "../../.."})
    assert not list(tmp_path.rglob("pwned*"))


def test_symlinks_leaving_the_skeleton_are_refused(tmp_path):
    secret = write(tmp_path / "outside", {"secret.txt": "s3cr3t"})
    skeleton = write(tmp_path / "template" / "skeleton", {"ok.txt": "ok"})
    (skeleton / "link.txt").symlink_to(secret / "secret.txt")
    workspace = Workspace.create(tmp_path / "work", "ws-")
    with pytest.raises(ScaffolderError, match="link.txt: a symlink leaves the template"):
        copy_skeleton(skeleton.resolve(), workspace, ".", CopyOptions(), lambda _: None)
    (skeleton / "link.txt").unlink()
    (skeleton / "dir").symlink_to(secret, target_is_directory=True)
    with pytest.raises(ScaffolderError, match="symlink leaves the template"):
        copy_skeleton(skeleton.resolve(), workspace, ".", CopyOptions(), lambda _: None)
    assert "s3cr3t" not in str([p.read_text() for p in workspace.root.rglob("*") if p.is_file()])


def test_symlinks_inside_the_skeleton_are_copied_as_files(tmp_path):
    skeleton = write(tmp_path / "template" / "skeleton", {"real.txt": "${{ values.name }}"})
    (skeleton / "alias.txt").symlink_to("real.txt")
    workspace = Workspace.create(tmp_path / "work", "ws-")
    copy_skeleton(skeleton.resolve(), workspace, ".", CopyOptions(values={"name": "web"}), lambda _: None)
    assert workspace.files() == {"alias.txt": b"web", "real.txt": b"web"}
    assert not workspace.path("alias.txt").is_symlink()


@pytest.mark.parametrize("url, message", [("../../etc", "leaves the template's folder"), ("/etc", "leaves the template's folder"),
                                          ("file:///etc", "not remote URLs"), ("https://example.com/x", "not remote URLs"),
                                          ("./missing", "is not a folder")])
def test_skeleton_urls_stay_in_the_template_folder(tmp_path, url, message):
    (tmp_path / "template" / "skeleton").mkdir(parents=True)
    with pytest.raises(ScaffolderError, match=message):
        skeleton_dir(tmp_path / "template", url)
