"""Docker's `.dockerignore` rules, ported from moby/patternmatcher and fsutil's walk, as pulumi-docker's
context hash applies them; docker-py's matcher is not faithful
(docs/engine-rules.md#pulumi-dockers-context-hash)."""

from __future__ import annotations

import os
import posixpath
import re
import stat
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from model.errors import GitopsError

MAX_LINE_BYTES = 64 * 1024
"""Go's `bufio.Scanner` default token limit: a longer `.dockerignore` line fails the read there too."""
_GO_SPACE = "".join(map(chr, (*range(9, 14), 32, 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028, 0x2029)))
_GO_SPACE += "\u202f\u205f\u3000"
"""What Go's `strings.TrimSpace` trims (`unicode.IsSpace`); Python's `str.strip()` also trims \\x1c-\\x1f."""
_REGEX_ESCAPED = set(".+()|{}$")
"""Characters patternmatcher escapes (`shouldEscape`); the rest pass into the regexp as written."""
_PATTERN_CHARS = "*[]?^\\"
"""fsutil's `patternChars` on a `/` platform: an exception without them can only re-include its own prefix."""

_EXACT, _PREFIX, _SUFFIX, _REGEXP = "exact", "prefix", "suffix", "regexp"


class IgnoreFileError(GitopsError, ValueError):
    """A `.dockerignore` Docker would refuse (a lone `!`, a malformed pattern, an over-long line)."""


def go_clean(path: str) -> str:
    """Go's `path.Clean`: `posixpath.normpath`, except that Go keeps no leading `//`."""
    cleaned = posixpath.normpath(path)
    return "/" + cleaned.lstrip("/") if cleaned.startswith("//") else cleaned


def read_patterns(data: bytes) -> list[str]:
    """`ignorefile.ReadAll`: a pattern a line, less `#` comments, BOM and blanks; cleaned; no leading `/`."""
    patterns: list[str] = []
    lines = data.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()  # a final newline ends the last line; it does not start another
    for number, raw in enumerate(lines, 1):
        if len(raw) > MAX_LINE_BYTES:
            raise IgnoreFileError(f"line {number} is longer than {MAX_LINE_BYTES} bytes")
        if number == 1:
            raw = raw.removeprefix(b"\xef\xbb\xbf")
        line = raw.removesuffix(b"\r").decode("utf-8", "surrogateescape")
        if line.startswith("#"):
            continue
        pattern = line.strip(_GO_SPACE)
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip(_GO_SPACE)
        if pattern:
            pattern = go_clean(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        patterns.append("!" + pattern if invert else pattern)
    return patterns


@dataclass
class Pattern:
    """One compiled pattern (`patternmatcher.Pattern`)."""

    cleaned: str
    exclusion: bool
    kind: str = _EXACT
    regexp: re.Pattern[str] | None = None

    def match(self, path: str) -> bool:
        """`Pattern.match`, including its exact, prefix and suffix shortcuts (`**x` matches `ax`)."""
        if self.kind == _EXACT:
            return path == self.cleaned
        if self.kind == _PREFIX:
            return path.startswith(self.cleaned[:-2])
        if self.kind == _SUFFIX:
            suffix = self.cleaned[2:]
            return path.endswith(suffix) or (suffix[:1] == "/" and path == suffix[1:])
        assert self.regexp is not None
        return self.regexp.match(path) is not None

    def without_trailing_glob(self) -> str:
        """fsutil's `patternWithoutTrailingGlob`."""
        return self.cleaned.removesuffix("/**").removesuffix("/*")


def _compile(p: Pattern) -> None:
    """`Pattern.compile`: the match kind, and for `regexp` the expression (anchored as Go's `^...$`)."""
    text, i, n = p.cleaned, 0, len(p.cleaned)
    regex = ""
    kind = _EXACT
    first = True
    while i < n:
        ch = text[i]
        i += 1
        if ch == "*":
            if i < n and text[i] == "*":
                i += 1
                if i < n and text[i] == "/":
                    i += 1
                if i >= n:
                    if kind == _EXACT:
                        kind = _PREFIX
                    else:
                        regex += ".*"
                        kind = _REGEXP
                else:
                    regex += "(.*/)?"
                    kind = _REGEXP
                if first:
                    kind = _SUFFIX
            else:
                regex += "[^/]*"
                kind = _REGEXP
        elif ch == "?":
            regex += "[^/]"
            kind = _REGEXP
        elif ch in _REGEX_ESCAPED:
            regex += "\\" + ch
        elif ch == "\\":
            if i < n:
                escaped = text[i]
                i += 1
                # Go's regexp reads `\x` as the literal x for punctuation; letters keep their class meaning.
                regex += "\\" + escaped if escaped.isascii() and escaped.isalnum() else re.escape(escaped)
                kind = _REGEXP
            else:
                regex += "\\\\"
        elif ch in "[]":
            regex += ch
            kind = _REGEXP
        else:
            regex += ch  # as Go: a raw `^` anchors (and so never matches) in both dialects
        first = False
    p.kind = kind
    if kind != _REGEXP:
        return
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # nested-set warnings; Go has no nested sets
            # `\Z`, not `$`: Go's `$` never matches before a final newline.
            p.regexp = re.compile("^" + regex + r"\Z")
    except re.error as exc:
        raise IgnoreFileError(f"pattern {p.cleaned!r} is malformed ({exc.msg})") from None


@dataclass
class PatternMatcher:
    """`patternmatcher.PatternMatcher`: later patterns win; `!` re-includes."""

    patterns: list[Pattern] = field(default_factory=list)
    exclusions: bool = False

    @classmethod
    def new(cls, patterns: list[str]) -> PatternMatcher:
        """`patternmatcher.New`: trim, clean, split off `!`; a lone `!` is an error."""
        pm = cls()
        for raw in patterns:
            text = raw.strip(_GO_SPACE)
            if not text:
                continue
            text = go_clean(text)
            exclusion = text.startswith("!")
            if exclusion:
                if len(text) == 1:
                    raise IgnoreFileError('illegal exclusion pattern: "!"')
                text = text[1:]
                pm.exclusions = True
            _check_syntax(text)
            pattern = Pattern(text, exclusion)
            _compile(pattern)
            pm.patterns.append(pattern)
        return pm

    def matches(self, path: str, parent: list[bool] | None) -> tuple[bool, list[bool]]:
        """`MatchesUsingParentResults`: whether `path` is excluded, and what its children inherit."""
        matched = False
        info = [False] * len(self.patterns)
        for i, pattern in enumerate(self.patterns):
            match = bool(parent and parent[i])
            if not match:
                if pattern.exclusion != matched:
                    continue  # as Go: a skipped pattern is recorded as unmatched for the children
                match = pattern.match(path)
                if not match and not parent:
                    dirs = posixpath.dirname(path).split("/") if "/" in path else []
                    match = any(pattern.match("/".join(dirs[: k + 1])) for k in range(len(dirs)))
            info[i] = match
            if match:
                matched = not pattern.exclusion
        return matched, info

    def may_reinclude_below(self, directory: str) -> bool:
        """fsutil's shortcut: False when no exception can re-include anything under excluded `directory`."""
        if not self.exclusions:
            return False
        exceptions = [p for p in self.patterns if p.exclusion]
        if any(any(c in p.without_trailing_glob() for c in _PATTERN_CHARS) for p in exceptions):
            return True
        return any((p.without_trailing_glob() + "/").startswith(directory + "/") for p in exceptions)


def _check_syntax(pattern: str) -> None:
    """What Go's `filepath.Match(pattern, ".")` rejects: a trailing `\\`, and `[` classes `getEsc` refuses."""

    def bad(why: str) -> IgnoreFileError:
        return IgnoreFileError(f"pattern {pattern!r} is malformed ({why})")

    def esc(j: int) -> int:
        """`getEsc`: index after one class character; the class must go on after it."""
        if j >= len(pattern) or pattern[j] in "-]":
            raise bad("a bad character class")
        if pattern[j] == "\\":
            j += 1
            if j >= len(pattern):
                raise bad("a bad character class")
        if j + 1 >= len(pattern):
            raise bad("an unclosed '['")
        return j + 1

    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            if i + 1 >= len(pattern):
                raise bad("it ends in an escape")
            i += 2
        elif ch == "[":
            j = i + 1
            if j < len(pattern) and pattern[j] == "^":
                j += 1
            ranges = 0
            while not (j < len(pattern) and pattern[j] == "]" and ranges > 0):
                j = esc(j)
                if pattern[j] == "-":
                    j = esc(j + 1)
                ranges += 1
            i = j + 1
        else:
            i += 1


@dataclass(frozen=True)
class Entry:
    """One non-directory the walk keeps: its slash path under the root and its `lstat`."""

    path: str
    stat: os.stat_result


def walk(root: Path, matcher: PatternMatcher, *, directories: bool = False) -> Iterator[Entry]:
    """Every non-directory under `root` that the patterns keep, in `filepath.WalkDir` order.

    Directories are visited in byte order of their names, never through a symlink; an excluded directory
    is only entered when an exception could re-include something below it, as fsutil does. With
    `directories`, each directory the patterns keep comes too, before its contents (a context tar
    carries it, empty or not; an excluded one entered for an exception is not).
    """
    stack: list[tuple[str, list[bool] | None, bool, Iterator[os.DirEntry[str]]]] = []

    def enter(directory: Path, rel: str, info: list[bool] | None, skipped: bool) -> None:
        try:
            with os.scandir(directory) as it:
                entries = sorted(it, key=lambda e: os.fsencode(e.name))
        except PermissionError:
            if skipped:
                return  # fsutil ignores a permission error on a directory it only walks for exceptions
            raise
        stack.append((rel, info, skipped, iter(entries)))

    enter(root, "", None, False)
    while stack:
        rel, info, _, entries = stack[-1]
        entry = next(entries, None)
        if entry is None:
            stack.pop()
            continue
        path = f"{rel}/{entry.name}" if rel else entry.name
        st = entry.stat(follow_symlinks=False)
        is_dir = stat.S_ISDIR(st.st_mode)
        excluded, child_info = matcher.matches(path, info)
        if is_dir:
            if excluded and not matcher.may_reinclude_below(path):
                continue
            if directories and not excluded:
                yield Entry(path, st)
            enter(Path(entry.path), path, child_info, excluded)
        elif not excluded:
            yield Entry(path, st)
