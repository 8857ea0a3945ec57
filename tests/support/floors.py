"""The lowest versions the requirement files allow, as `name==floor` pins for `make test-floor`.

Every requirement states its floor as `>=X` (or pins `==X`); this reads the files (following `-r`),
and prints each package once at its floor, so a requirement added to any of them is covered without a
list of its own. Only the direct requirements are pinned: pip resolves what they depend on, as it
would for a user who has the oldest versions we admit. Run: `python -m tests.support.floors FILE...`.
"""

from __future__ import annotations

import sys
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name


class FloorError(ValueError):
    """A requirement whose floor cannot be read, or two files that disagree on one."""


def _lines(path: Path, seen: set[Path]) -> list[tuple[str, str]]:
    """Each requirement line of `path` and the files it includes, with where it comes from."""
    path = path.resolve()
    if path in seen:
        return []
    seen.add(path)
    found = []
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        where = f"{path.name}:{number}"
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-r ", "--requirement ")):
            found += _lines(path.parent / line.split(maxsplit=1)[1], seen)
        elif line.startswith("-"):
            raise FloorError(f"{where}: option {line!r} is not supported here; expected name>=floor")
        else:
            found.append((where, line))
    return found


def floor(line: str, where: str = "<line>") -> Requirement:
    """The requirement `line` pinned to its floor: `name[extras]==X ; marker`."""
    try:
        req = Requirement(line)
    except InvalidRequirement as exc:
        raise FloorError(f"{where}: {line!r} is not a requirement: {exc}") from exc
    if req.url:
        raise FloorError(f"{where}: {req.name} comes from a URL; expected name>=floor")
    lows = [s.version for s in req.specifier if s.operator in (">=", "==", "===")]
    if len(lows) != 1 or "*" in lows[0]:
        raise FloorError(f"{where}: {req.name} has no single floor ({line!r}); expected name>=X,<Y")
    pinned = Requirement(str(req))
    pinned.specifier = SpecifierSet(f"=={lows[0]}")
    if not req.specifier.contains(lows[0], prereleases=True):
        raise FloorError(f"{where}: {req.name}'s floor {lows[0]} is outside its own range {req.specifier}")
    return pinned


def floors(paths: list[Path]) -> list[Requirement]:
    """Every package of the files once, at its floor; two files naming different floors is an error."""
    pins: dict[str, tuple[str, Requirement]] = {}
    for where, line in [item for path in paths for item in _lines(path, set())]:
        pinned = floor(line, where)
        key = canonicalize_name(pinned.name)
        if key in pins:
            first, earlier = pins[key]
            if str(earlier.specifier) != str(pinned.specifier) or earlier.marker != pinned.marker:
                raise FloorError(
                    f"{where}: {pinned.name} {pinned.specifier} disagrees with {first} ({earlier.specifier});"
                    " expected one floor for one package"
                )
            continue
        pins[key] = (where, pinned)
    return [pinned for _, pinned in pins.values()]


def main(argv: list[str]) -> int:
    """Print the pins for the files named on the command line."""
    if not argv:
        print("usage: python -m tests.support.floors REQUIREMENTS_FILE...", file=sys.stderr)
        return 2
    try:
        pins = floors([Path(arg) for arg in argv])
    except (FloorError, OSError) as exc:
        print(f"floors: {exc}", file=sys.stderr)
        return 1
    print("\n".join(str(pin) for pin in pins))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
