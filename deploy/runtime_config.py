"""Config keys a deploy sets for one `up` and always takes away again: pins, rollbackId, failedReleases."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TextIO

from pulumi.automation import ConfigValue, Stack
from pulumi.automation.errors import CommandError

from deploy.process import Interrupts
from model.config import NAMESPACE
from model.config_schema import SOAKED_KEY as SOAKED


@dataclass(frozen=True)
class RuntimeKey:
    """One config value for one update."""

    key: str
    value: str
    previous: str | None = None
    """The value the stack file had (put back afterwards); None: the key is removed afterwards."""
    path: bool = False
    """A `--path` key (`gitops-deploy:apps[0].image.pin`)."""


@contextlib.contextmanager
def runtime_config(
    stack: Stack, keys: Sequence[RuntimeKey], interrupts: Interrupts, out: TextIO
) -> Iterator[None]:
    """Set `keys` for the duration; restore the stack file afterwards, also after a failure or a signal.

    The restore runs only once the CLI's `up` has exited (the Automation API waits for it, and a
    signal only makes it stop sooner: deploy/process.py), so it never races the update.
    """
    done: list[RuntimeKey] = []
    try:
        for key in keys:
            interrupts.check()
            stack.set_config(key.key, ConfigValue(key.value), path=key.path)
            done.append(key)
        yield
    finally:
        _restore(stack, done, out)


def _restore(stack: Stack, keys: Sequence[RuntimeKey], out: TextIO) -> None:
    removed = [k for k in keys if k.previous is None]
    try:
        for key in keys:
            if key.previous is not None:
                stack.set_config(key.key, ConfigValue(key.previous), path=key.path)
        if removed:
            # One CLI call: quick, which matters when a cancelled job has seconds left.
            stack.remove_all_config([k.key for k in removed], path=True)
    except CommandError as err:
        out.write(
            "deploy: warning: could not restore the stack's config; remove these keys by hand:\n"
            + "".join(f"  pulumi config rm --stack {stack.name} --path '{k.key}'\n" for k in removed)
            + f"  ({str(err).strip().splitlines()[-1]})\n"
        )


SOAKED_KEY = f"{NAMESPACE}:{SOAKED}"
"""Set for the soak's follow-up update only: `{app: repo digest}` of the apps whose soak passed."""
