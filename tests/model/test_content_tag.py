"""The content tag moves exactly when pulumi-docker's context hash does (model/content_tag.py).

The matcher is checked against moby/patternmatcher v0.6.0's own test tables (`patternmatcher_test.go`
`TestMatches`, `TestCompile`; `ignorefile/ignorefile_test.go` `TestReadAll`), recorded here; the walk
against an oracle written independently below (os.walk, and the docker SDK's pattern translation).
"""

from __future__ import annotations

import os
import posixpath
import re
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from docker.utils.fnmatch import translate
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from model import content_tag as content_tag_module
from model.config import parse_config
from model.config_reader import ConfigError
from model.content_tag import (
    CHUNK_BYTES,
    MAX_IGNORE_FILE_BYTES,
    ContextError,
    clear_scans,
    content_tag,
    context_digest,
    go_mode_string,
    sent_entries,
)
from model.dockerignore import (
    IgnoreFileError,
    Pattern,
    PatternMatcher,
    _compile,
    go_clean,
    read_patterns,
    walk,
)
from model.stack_files import read_stack_config

# -- moby/patternmatcher v0.6.0's tables ------------------------------------------------------------

MATCHES = [
    ("**", "file", True), ("**", "file/", True), ("**/", "file", True), ("**/", "file/", True),
    ("**", "/", True), ("**/", "/", True), ("**", "dir/file", True), ("**/", "dir/file", True),
    ("**", "dir/file/", True), ("**/", "dir/file/", True), ("**/**", "dir/file", True),
    ("**/**", "dir/file/", True), ("dir/**", "dir/file", True), ("dir/**", "dir/file/", True),
    ("dir/**", "dir/dir2/file", True), ("dir/**", "dir/dir2/file/", True), ("**/dir", "dir", True),
    ("**/dir", "dir/file", True), ("**/dir2/*", "dir/dir2/file", True), ("**/dir2/*", "dir/dir2/file/", True),
    ("**/dir2/**", "dir/dir2/dir3/file", True), ("**/dir2/**", "dir/dir2/dir3/file/", True),
    ("**file", "file", True), ("**file", "dir/file", True), ("**/file", "dir/file", True),
    ("**file", "dir/dir/file", True), ("**/file", "dir/dir/file", True), ("**/file*", "dir/dir/file", True),
    ("**/file*", "dir/dir/file.txt", True), ("**/file*txt", "dir/dir/file.txt", True),
    ("**/file*.txt", "dir/dir/file.txt", True), ("**/file*.txt*", "dir/dir/file.txt", True),
    ("**/**/*.txt", "dir/dir/file.txt", True), ("**/**/*.txt2", "dir/dir/file.txt", False),
    ("**/*.txt", "file.txt", True), ("**/**/*.txt", "file.txt", True), ("a**/*.txt", "a/file.txt", True),
    ("a**/*.txt", "a/dir/file.txt", True), ("a**/*.txt", "a/dir/dir/file.txt", True),
    ("a/*.txt", "a/dir/file.txt", False), ("a/*.txt", "a/file.txt", True), ("a/*.txt**", "a/file.txt", True),
    ("a[b-d]e", "ae", False), ("a[b-d]e", "ace", True), ("a[b-d]e", "aae", False), ("a[^b-d]e", "aze", True),
    (".*", ".foo", True), (".*", "foo", False), ("abc.def", "abcdef", False), ("abc.def", "abc.def", True),
    ("abc.def", "abcZdef", False), ("abc?def", "abcZdef", True), ("abc?def", "abcdef", False),
    ("a\\\\", "a\\", True), ("**/foo/bar", "foo/bar", True), ("**/foo/bar", "dir/foo/bar", True),
    ("**/foo/bar", "dir/dir2/foo/bar", True), ("abc/**", "abc", False), ("abc/**", "abc/def", True),
    ("abc/**", "abc/def/ghi", True), ("**/.foo", ".foo", True), ("**/.foo", "bar.foo", False),
    ("a(b)c/def", "a(b)c/def", True), ("a(b)c/def", "a(b)c/xyz", False), ("a.|)$(}+{bc", "a.|)$(}+{bc", True),
    ("dist/*.whl", "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", True), ("a\\*b", "a*b", True),
]  # fmt: skip
MULTI = [
    (["**", "!util/docker/web"], "util/docker/web/foo", False),
    (["**", "!util/docker/web", "util/docker/web/foo"], "util/docker/web/foo", True),
    (["**", "!dist/*.whl"], "dist/proxy.py-2.4.0rc3.dev36+g08acad9-py3-none-any.whl", False),
    (["docs", "!docs/README.md"], "docs/README.md", False),
    (["*.go", "!fileutils.go"], "fileutils.go", False),
    (["!fileutils.go", "*.go"], "fileutils.go", True),
]
COMPILE = [
    ("*", "regexp", r"^[^/]*\Z"), ("file*", "regexp", r"^file[^/]*\Z"), ("a*/b", "regexp", r"^a[^/]*/b\Z"),
    ("**", "suffix", ""), ("**/**", "regexp", r"^(.*/)?.*\Z"), ("dir/**", "prefix", ""),
    ("**/dir", "suffix", ""),
    ("**/dir2/*", "regexp", r"^(.*/)?dir2/[^/]*\Z"), ("**file", "suffix", ""),
    ("**/**/*.txt", "regexp", r"^(.*/)?(.*/)?[^/]*\.txt\Z"), ("a[b-d]e", "regexp", r"^a[b-d]e\Z"),
    (".*", "regexp", r"^\.[^/]*\Z"), ("abc.def", "exact", ""), ("abc?def", "regexp", r"^abc[^/]def\Z"),
    ("a(b)c/def", "exact", ""), ("a.|)$(}+{bc", "exact", ""),
]  # fmt: skip


def _parent_results(pm: PatternMatcher, text: str) -> bool:
    """As the Go test drives `MatchesUsingParentResults`: each parent first, passing its results on."""
    info: list[bool] | None = None
    parent = posixpath.dirname(text)
    if parent not in ("", "."):
        parts = parent.split("/")
        for i in range(len(parts)):
            _, info = pm.matches("/".join(parts[: i + 1]), info)
    return pm.matches(text, info)[0]


@pytest.mark.parametrize(("pattern", "text", "excluded"), MATCHES)
def test_moby_patternmatcher_matches_table(pattern: str, text: str, excluded: bool) -> None:
    assert _parent_results(PatternMatcher.new([pattern]), text) is excluded
    assert PatternMatcher.new([pattern]).matches(text, None)[0] is excluded


@pytest.mark.parametrize(("patterns", "text", "excluded"), MULTI)
def test_moby_patternmatcher_exceptions(patterns: list[str], text: str, excluded: bool) -> None:
    assert _parent_results(PatternMatcher.new(patterns), text) is excluded


@pytest.mark.parametrize(("pattern", "kind", "regexp"), COMPILE)
def test_moby_patternmatcher_compile_table(pattern: str, kind: str, regexp: str) -> None:
    p = Pattern(posixpath.normpath(pattern), False)
    _compile(p)
    assert (p.kind, p.regexp.pattern if p.regexp else "") == (kind, regexp)


def test_read_all_as_ignorefile_does() -> None:
    text = b"test1\n/test2\n/a/file/here\n\nlastfile\n# this is a comment\n! /inverted/abs/path\n!\n! "
    expected = ["test1", "test2", "a/file/here", "lastfile", "!inverted/abs/path", "!", "!"]
    assert read_patterns(text) == expected
    assert read_patterns(b"\xef\xbb\xbf#c\r\n x/../y \r\n #z\n//a\n") == ["y", "#z", "a"]


@pytest.mark.parametrize("bad", [["!"], ["["], ["a\\"], ["[]a]"], ["[a-]"], ["a" * 70_000]])
def test_patterns_docker_refuses_are_refused(bad: list[str]) -> None:
    with pytest.raises(IgnoreFileError):
        PatternMatcher.new(read_patterns("\n".join(bad).encode()))


def test_go_mode_strings() -> None:
    assert go_mode_string(stat.S_IFREG | 0o644) == "-rw-r--r--"
    assert go_mode_string(stat.S_IFREG | 0o4755) == "urwxr-xr-x"
    assert go_mode_string(stat.S_IFLNK | 0o777) == "Lrwxrwxrwx"
    assert go_mode_string(stat.S_IFCHR | 0o600) == "Dcrw-------"
    assert go_mode_string(stat.S_IFIFO | 0o1644) == "ptrw-r--r--"
    assert go_mode_string(stat.S_IFSOCK | 0o755) == "-rwxr-xr-x", "fsutil clears the socket bit"


# -- the tag on real trees --------------------------------------------------------------------------


def _tree(root: Path, files: dict[str, str], ignore: str | None = None) -> Path:
    context = root / "ctx"
    context.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        (context / name).write_text(text)
    (context / "Dockerfile").write_text("FROM scratch\nCOPY . /\n")
    if ignore is not None:
        (context / ".dockerignore").write_text(ignore)
    return context


def _tag(context: Path, root: Path) -> str:
    clear_scans()
    return content_tag(context, context / "Dockerfile", "linux/amd64", {}, root=root)


def test_double_star_ignores_the_root_readme(tmp_path: Path) -> None:
    """`**/*.md` matches README.md at the root too: editing it gives the same tag."""
    context = _tree(tmp_path, {"README.md": "a", "docs/x.md": "b", "app.py": "c"}, "**/*.md\n")
    before = _tag(context, tmp_path)
    (context / "README.md").write_text("edited")
    (context / "docs/x.md").write_text("edited")
    assert _tag(context, tmp_path) == before
    (context / "app.py").write_text("edited")
    assert _tag(context, tmp_path) != before


def test_single_star_is_the_top_level_only(tmp_path: Path) -> None:
    """`*.md` leaves docs/x.md in the context: a change there is a new tag."""
    context = _tree(tmp_path, {"README.md": "a", "docs/x.md": "b"}, "*.md\n")
    before = _tag(context, tmp_path)
    (context / "README.md").write_text("edited")
    assert _tag(context, tmp_path) == before
    (context / "docs/x.md").write_text("edited")
    assert _tag(context, tmp_path) != before


def test_exceptions_reinclude(tmp_path: Path) -> None:
    context = _tree(tmp_path, {"docs/keep.md": "a", "docs/drop.md": "b"}, "docs\n!docs/keep.md\n")
    before = _tag(context, tmp_path)
    (context / "docs/drop.md").write_text("edited")
    assert _tag(context, tmp_path) == before
    (context / "docs/keep.md").write_text("edited")
    assert _tag(context, tmp_path) != before


def test_mode_counts(tmp_path: Path) -> None:
    context = _tree(tmp_path, {"run.sh": "echo"})
    before = _tag(context, tmp_path)
    (context / "run.sh").chmod(0o755)
    assert _tag(context, tmp_path) != before


def test_nothing_is_skipped_unless_ignored(tmp_path: Path) -> None:
    """pulumi-docker hashes .git, node_modules, __pycache__ and .venv like anything else."""
    for name in (".git/HEAD", "node_modules/x.js", "__pycache__/a.pyc", ".venv/pyvenv.cfg"):
        context = _tree(tmp_path / name.split("/")[0], {name: "a"})
        before = _tag(context, tmp_path)
        (context / name).write_text("b")
        assert _tag(context, tmp_path) != before, name


def test_the_dockerfile_specific_ignore_file_wins(tmp_path: Path) -> None:
    context = _tree(tmp_path, {"a.txt": "a", "b.txt": "b"}, "a.txt\n")
    dockerfile = tmp_path / "build" / "App.Dockerfile"
    dockerfile.parent.mkdir()
    dockerfile.write_text("FROM scratch\n")
    Path(f"{dockerfile}.dockerignore").write_text("b.txt\n")

    def tag() -> str:
        clear_scans()
        return content_tag(context, dockerfile, "linux/amd64", {}, root=tmp_path)

    before = tag()
    (context / "b.txt").write_text("edited")
    assert tag() == before, "b.txt is ignored by App.Dockerfile.dockerignore"
    (context / "a.txt").write_text("edited")
    assert tag() != before, "the context's .dockerignore is not read when the Dockerfile's own exists"


def test_what_is_sent_is_the_walk_with_the_directories_it_keeps(tmp_path: Path) -> None:
    context = _tree(tmp_path, {"a.txt": "a", "out/x": "x", "in/y": "y", "in/z": "z"}, "a.txt\n")
    (context / "empty").mkdir()
    dockerfile = tmp_path / "App.Dockerfile"
    dockerfile.write_text("FROM scratch\n")
    Path(f"{dockerfile}.dockerignore").write_text("out\nin/z\n")
    sent = [e.path for e in sent_entries(context, dockerfile, tmp_path)]
    files = [e.path for e in walk(context, PatternMatcher.new(["out", "in/z"]))]
    assert sent == [".dockerignore", "Dockerfile", "a.txt", "empty", "in", "in/y"]
    assert [p for p in sent if p not in ("empty", "in")] == files, "the files are the hash's walk"


def test_the_digest_is_pulumi_dockers_for_a_known_tree(tmp_path: Path) -> None:
    """hashPath's input, written out by hand from provider.go for a two-file tree."""
    import hashlib

    context = _tree(tmp_path, {"a.txt": "hello\n"}, "")
    (context / "a.txt").chmod(0o644)
    (context / "Dockerfile").chmod(0o600)
    (context / ".dockerignore").chmod(0o644)
    h = hashlib.sha256
    dockerfile = (context / "Dockerfile").read_bytes()
    expected = (
        b"Dockerfile----------" + h(dockerfile).digest() + b"\0"
        + b".dockerignore-rw-r--r--" + h(b"").digest() + b"\0"
        + b"Dockerfile-rw-------" + h(dockerfile).digest() + b"\0"
        + b"a.txt-rw-r--r--" + h(b"hello\n").digest() + b"\0"
    )  # fmt: skip
    clear_scans()
    assert context_digest(context, context / "Dockerfile", tmp_path) == h(expected).hexdigest()


def test_a_symlink_counts_by_its_target_inside_the_repository(tmp_path: Path) -> None:
    context = _tree(tmp_path, {"a.txt": "a", "b.txt": "b"})
    (context / "link").symlink_to("a.txt")
    before = _tag(context, tmp_path)
    (context / "a.txt").write_text("edited")
    after_edit = _tag(context, tmp_path)
    assert after_edit != before, "a.txt itself changed"
    (context / "link").unlink()
    (context / "link").symlink_to("b.txt")
    assert _tag(context, tmp_path) != after_edit, "the link points elsewhere"


BAD_LINKS = [("/etc", "points outside it"), ("missing", "points at nothing"), ("ABSOLUTE", "is absolute")]


@pytest.mark.parametrize(("target", "says"), BAD_LINKS)
def test_a_bad_symlink_is_refused_without_reading_through_it(tmp_path: Path, target: str, says: str) -> None:
    context = _tree(tmp_path / "repo", {"a.txt": "a"})
    if target == "ABSOLUTE":  # inside the repository, but its path moves with the checkout
        target = str(context / "a.txt")
    (context / "leak").symlink_to(target)
    with pytest.raises(ContextError, match=re.escape(f"ctx/leak -> '{target}' {says}")):
        _tag(context, tmp_path / "repo")
    (context / ".dockerignore").write_text("leak\n")
    _tag(context, tmp_path / "repo")  # an ignored link is never sent, so it does not matter


def test_an_ignore_file_past_its_bound_is_refused_not_truncated(tmp_path: Path) -> None:
    context = _tree(tmp_path, {"a.txt": "a"})

    def ignore_file(size: int) -> str:
        """`a.txt` and comment lines (each well under Docker's line limit), `size` bytes in all."""
        lines, rest = divmod(size - len("a.txt\n"), 1000)
        return "a.txt\n" + ("#" * 999 + "\n") * lines + "#" * rest

    (context / ".dockerignore").write_text(ignore_file(MAX_IGNORE_FILE_BYTES + 1))
    with pytest.raises(ContextError, match=f"an ignore file of at most {MAX_IGNORE_FILE_BYTES} bytes"):
        _tag(context, tmp_path)
    (context / ".dockerignore").write_text(ignore_file(MAX_IGNORE_FILE_BYTES))
    before = _tag(context, tmp_path)  # at the bound: read, and its rules apply
    (context / "a.txt").write_text("changed")
    assert _tag(context, tmp_path) == before


def test_a_fifo_is_never_opened(tmp_path: Path) -> None:
    """hashPath hashes nothing for a named pipe; opening one would wait for a writer forever."""
    context = _tree(tmp_path, {"a.txt": "a"})
    before = _tag(context, tmp_path)
    os.mkfifo(context / "pipe")
    assert _tag(context, tmp_path) != before


def test_a_3_gib_file_is_hashed_in_chunks(tmp_path: Path) -> None:
    """A sparse 3 GiB file: the peak resident memory of the hashing process stays near the chunk size."""
    context = _tree(tmp_path, {})
    with (context / "big.bin").open("wb") as f:
        f.truncate(3 << 30)
    script = (
        "import resource, sys\nfrom pathlib import Path\nfrom model.content_tag import content_tag\n"
        "c = Path(sys.argv[1]); before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "print(content_tag(c, c / 'Dockerfile', 'linux/amd64', {}, root=c.parent))\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before)\n"
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script, str(context)], cwd=root, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    tag, grown_kib = done.stdout.split()
    assert tag.startswith("ctx-")
    assert int(grown_kib) * 1024 < 16 * CHUNK_BYTES, f"resident memory grew by {grown_kib} KiB"


# -- the property: the walk is what Docker sends, and the tag moves with it -------------------------

NAMES = ["a", "b", "c.md", "d.txt", ".e"]
PATTERN_PARTS = ["a", "b", "*", "**", "?", "*.md", "c.md", "b*", ".e", ".", ".."]


def _oracle_patterns(text: str) -> list[tuple[bool, re.Pattern[str]]]:
    """The ignore file read as Docker documents it, with the docker SDK's glob translation."""
    out = []
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        line = line.strip()
        negate = line.startswith("!")
        body = posixpath.normpath(line[1:].strip() if negate else line).lstrip("/") or "/"
        out.append((negate, re.compile(translate(body).removesuffix("$") + r"\Z")))
    return out


def _oracle_excluded(patterns: list[tuple[bool, re.Pattern[str]]], path: str) -> bool:
    """BuildKit's rule: each pattern decides by the path or an ancestor, evaluated parent-first.

    A pattern is looked at only while it could change the outcome; what it found for a parent is
    inherited only if it was looked at there (moby/patternmatcher `MatchesUsingParentResults`).
    """
    parts = path.split("/")
    inherited = [False] * len(patterns)
    excluded = False
    for depth in range(1, len(parts) + 1):
        current = "/".join(parts[:depth])
        found = [False] * len(patterns)
        excluded = False
        for i, (negate, regex) in enumerate(patterns):
            hit = inherited[i]
            if not hit:
                if negate != excluded:
                    continue
                hit = regex.match(current) is not None
            found[i] = hit
            if hit:
                excluded = not negate
        inherited = found
    return excluded


def _oracle(context: Path, ignore: str) -> list[tuple[str, str, bytes]]:
    patterns = _oracle_patterns(ignore)
    out = []
    for dirpath, dirnames, filenames in os.walk(context):
        rel_dir = Path(dirpath).relative_to(context).as_posix()
        for name in filenames + [d for d in dirnames if (Path(dirpath) / d).is_symlink()]:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            if _oracle_excluded(patterns, rel):
                continue
            full = Path(dirpath) / name
            mode = full.lstat().st_mode
            if full.is_symlink():
                data = str(full.resolve().relative_to(context.parent)).encode()
            else:
                data = full.read_bytes()
            out.append((rel, oct(mode), data))
    return sorted(out)


def _ours(context: Path, ignore_text: str) -> list[tuple[str, str, bytes]]:
    out = []
    for entry in walk(context, PatternMatcher.new(read_patterns(ignore_text.encode()))):
        full = context / entry.path
        link = full.is_symlink()
        data = str(full.resolve().relative_to(context.parent)).encode() if link else full.read_bytes()
        out.append((entry.path, oct(entry.stat.st_mode), data))
    return sorted(out)


paths = st.lists(st.sampled_from(NAMES), min_size=1, max_size=3).map("/".join)


def _pattern(parts: list[str], negate: bool, lead: bool, trail: bool) -> str:
    return ("!" if negate else "") + ("/" if lead else "") + "/".join(parts) + ("/" if trail else "")


@st.composite
def trees(draw: st.DrawFn) -> dict[str, Any]:
    """A few files and links, and an ignore file whose patterns often name those very paths."""
    modes = st.sampled_from([0o644, 0o755, 0o600])
    files = draw(st.dictionaries(paths, st.tuples(st.binary(max_size=4), modes)))
    links = draw(st.lists(st.tuples(paths, paths), max_size=2))
    prefixes = sorted({"/".join(p.split("/")[:n]) for p in files for n in range(1, p.count("/") + 2)})
    part = st.sampled_from(PATTERN_PARTS)
    named = st.sampled_from(prefixes or ["a"]).map(lambda p: [p])
    parts = st.one_of(st.lists(part, min_size=1, max_size=3), named)
    line = st.builds(_pattern, parts, st.booleans(), st.booleans(), st.booleans())
    return {"files": files, "links": links, "ignore": "\n".join(draw(st.lists(line, max_size=4)))}


patterns = st.builds(
    _pattern, st.lists(st.sampled_from(PATTERN_PARTS), min_size=1, max_size=3), st.booleans(), st.booleans(),
    st.booleans(),
)  # fmt: skip


def _build(root: Path, tree: dict[str, Any]) -> Path | None:
    """The tree on disk, or None when its paths clash (a file where a directory must be)."""
    context = root / "ctx"
    try:
        for name, (data, mode) in sorted(tree["files"].items()):
            (context / name).parent.mkdir(parents=True, exist_ok=True)
            (context / name).write_bytes(data)
            (context / name).chmod(mode)
        for link, target in tree["links"]:
            if (context / target).exists() and not (context / link).exists():
                (context / link).parent.mkdir(parents=True, exist_ok=True)
                (context / link).symlink_to(os.path.relpath(context / target, (context / link).parent))
    except (FileExistsError, NotADirectoryError, IsADirectoryError):
        return None
    context.mkdir(exist_ok=True)
    (root / "Dockerfile").write_text("FROM scratch\n")
    Path(f"{root / 'Dockerfile'}.dockerignore").write_text(tree["ignore"])
    return context


def _accepted(ignore: str) -> bool:
    """Whether Docker takes the ignore file (`!/.` cleans to a lone `!`, which it refuses), leaving out
    the `!..` lines whose `!` Go's Clean eats (tested on their own below; the oracle does not model it)."""
    try:
        patterns = read_patterns(ignore.encode())
        PatternMatcher.new(patterns)
    except IgnoreFileError:
        return False
    return not any(p.startswith("!") and not go_clean(p).startswith("!") for p in patterns)


def test_a_re_include_whose_bang_clean_eats_is_an_exclude() -> None:
    """patternmatcher.New cleans the whole line, `!` included: `!../../a` is `a`, an exclude, as in Go."""
    matcher = PatternMatcher.new(read_patterns(b"!../../a"))
    assert [(p.cleaned, p.exclusion) for p in matcher.patterns] == [("a", False)]


_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@_SETTINGS
@given(tree=trees())
def test_the_walk_is_the_set_docker_sends(
    tmp_path_factory: pytest.TempPathFactory, tree: dict[str, Any]
) -> None:
    root = tmp_path_factory.mktemp("walk")
    context = _build(root, tree)
    assume(context is not None and _accepted(tree["ignore"]))
    assert context is not None
    assert _ours(context, tree["ignore"]) == _oracle(context, tree["ignore"]), tree["ignore"]


mutations = st.sampled_from(["chmod", "edit", "add", "remove", "ignore"])


@_SETTINGS
@given(tree=trees(), mutation=mutations, which=st.integers(0, 10), line=patterns)
def test_the_tag_moves_exactly_when_what_docker_sends_does(
    tmp_path_factory: pytest.TempPathFactory,
    tree: dict[str, Any],
    mutation: str,
    which: int,
    line: str,
) -> None:
    root = tmp_path_factory.mktemp("tag")
    context = _build(root, tree)
    assume(context is not None and _accepted(tree["ignore"]) and _accepted(f"{tree['ignore']}\n{line}"))
    assert context is not None
    dockerfile = root / "Dockerfile"

    def tag() -> str:
        content_tag_module.clear_scans()
        return content_tag(context, dockerfile, "linux/amd64", {}, root=root)

    ignore = tree["ignore"]
    sent, before = _oracle(context, ignore), tag()
    linked = {p.resolve() for p in context.rglob("*") if p.is_symlink()}
    files = sorted(p for p in context.rglob("*") if p.is_file() and not p.is_symlink() and p not in linked)
    target = files[which % len(files)] if files else None
    if mutation == "chmod" and target:
        target.chmod(target.stat().st_mode ^ 0o100)
    elif mutation == "edit" and target:
        target.write_bytes(target.read_bytes() + b"!")
    elif mutation == "remove" and target:
        target.unlink()
    elif mutation == "add":
        (context / f"new{which}.md").write_bytes(b"new")
    elif mutation == "ignore":
        ignore = f"{ignore}\n{line}"
        Path(f"{dockerfile}.dockerignore").write_text(ignore)
    assert (tag() != before) == (_oracle(context, ignore) != sent), (mutation, ignore)


def test_apps_sharing_a_context_walk_it_once_a_parse_and_each_names_its_problem(
    example_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The config walks each build context once however many apps build from it; a bad one is each app's."""
    values = {k.removeprefix("gitops-deploy:"): v for k, v in read_stack_config("dev", example_copy).items()}
    first = values["apps"][0]
    values["apps"] = [{**first, "name": f"app{i}"} for i in range(5)]
    walks: list[Path] = []
    real_walk = content_tag_module._walk

    def counted(context: Path, dockerfile: Path, root: Path) -> Any:
        walks.append(context)
        return real_walk(context, dockerfile, root)

    monkeypatch.setattr(content_tag_module, "_walk", counted)
    parse_config(values, example_copy, stack="dev")
    assert len(walks) == 1
    (example_copy / first["image"]["context"] / "gone").symlink_to("nowhere")
    with pytest.raises(ConfigError) as refused:
        parse_config(values, example_copy, stack="dev")
    assert len(walks) == 2
    problems = [p for p in refused.value.problems if "gone -> 'nowhere'" in p]
    assert [p.split(":", 2)[1] for p in problems] == [f"apps[{i}] (app{i}).image.context" for i in range(5)]
