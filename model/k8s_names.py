"""Kubernetes' rules for an object's `metadata.name`, per kind, as the API server applies them
(docs/engine-rules.md#kubernetes-names)."""

from __future__ import annotations

import re
from dataclasses import dataclass

LABEL_MAX = 63
"""DNS1123LabelMaxLength and DNS1035LabelMaxLength."""
SUBDOMAIN_MAX = 253
"""DNS1123SubdomainMaxLength."""
CRONJOB_MAX = LABEL_MAX - 11
"""A CronJob's Jobs are `<name>-<11 characters>`."""

_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_DNS1123_LABEL = re.compile(_LABEL)
_DNS1123_SUBDOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_DNS1035_LABEL = re.compile(r"[a-z](?:[-a-z0-9]*[a-z0-9])?")


@dataclass(frozen=True)
class NameRule:
    """One of apimachinery's name formats, with the length limit the kind adds."""

    name: str
    pattern: re.Pattern[str]
    max_length: int
    text: str
    """What it asks for, as an error message says it."""

    def problem(self, name: str) -> str | None:
        """Why `name` breaks the rule, or None."""
        if not name:
            return "it is empty"
        if len(name) > self.max_length:
            return f"it has {len(name)} characters, over the {self.max_length} a {self.name} allows"
        if not self.pattern.fullmatch(name):
            return f"a {self.name} must be {self.text}"
        return None


DNS1123_LABEL = NameRule(
    "DNS-1123 label",
    _DNS1123_LABEL,
    LABEL_MAX,
    "lowercase letters, digits and '-', starting and ending with a letter or digit",
)
DNS1123_SUBDOMAIN = NameRule(
    "DNS-1123 subdomain",
    _DNS1123_SUBDOMAIN,
    SUBDOMAIN_MAX,
    "lowercase letters, digits, '-' and '.', each dot-separated part starting and ending with a "
    "letter or digit",
)
DNS1035_LABEL = NameRule(
    "DNS-1035 label",
    _DNS1035_LABEL,
    LABEL_MAX,
    "lowercase letters, digits and '-', starting with a letter and ending with a letter or digit",
)
CRONJOB_NAME = NameRule("CronJob name", _DNS1123_SUBDOMAIN, CRONJOB_MAX, DNS1123_SUBDOMAIN.text)

RULES: dict[tuple[str, str], NameRule] = {
    ("", "Service"): DNS1035_LABEL,
    ("", "Namespace"): DNS1123_LABEL,
    ("apps", "StatefulSet"): DNS1123_LABEL,
    ("batch", "CronJob"): CRONJOB_NAME,
}
"""(API group, kind) -> rule, where it is not the subdomain every other kind takes."""


def rule_for(group: str, kind: str) -> NameRule:
    """The rule for a kind of an API group (`""` is the core group)."""
    return RULES.get((group, kind), DNS1123_SUBDOMAIN)


def name_problem(group: str, kind: str, name: str) -> str | None:
    """Why Kubernetes would reject `name` for this kind, or None."""
    return rule_for(group, kind).problem(name)
