"""What a run knows about each site's clocks: the federation's `clocks`, overridden
per site by the site files, and again by `summary --clocks` for a finished run.

The plan travels in the journal's `run` line, so that a report corrects a run as
the run itself did, unless told otherwise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import Any

from pydantic import ValidationError

from colmena_fx.clocksetting import ClockSetting
from colmena_fx.config import FederationConfig
from colmena_fx.config import SiteConfig
from colmena_fx.exceptions import ConfigError

#: The key of the setting for every site not named (in `to_json` and `--clocks`).
EVERY_SITE = "*"


@dataclass(frozen=True)
class ClockPlan:
    """The clock setting of every site: its own, else `default`."""

    default: ClockSetting = field(default_factory=ClockSetting)
    sites: Mapping[str, ClockSetting] = field(default_factory=dict)

    def for_site(self, site: str) -> ClockSetting:
        return self.sites.get(site, self.default)

    @classmethod
    def of(cls, config: FederationConfig, sites: Mapping[str, SiteConfig]) -> ClockPlan:
        own = {name: site.clocks for name, site in sites.items() if site.clocks}
        return cls(config.clocks, own)

    def describe(self) -> str:
        """`estimate`, or `estimate; far: synchronized within 1 ms`."""
        own = [f"{name}: {s.describe()}" for name, s in sorted(self.sites.items())]
        return "; ".join([self.default.describe(), *own])

    def to_json(self) -> dict[str, Any]:
        return {
            EVERY_SITE: self.default.model_dump(),
            **{name: setting.model_dump() for name, setting in self.sites.items()},
        }

    @classmethod
    def from_json(cls, value: Any) -> ClockPlan:
        """A plan as `to_json` wrote it, or as older runs did (`"estimate"`)."""
        if value is None:
            return cls()
        if isinstance(value, str):
            return cls(ClockSetting.model_validate(value))
        settings = {name: ClockSetting.model_validate(v) for name, v in value.items()}
        default = settings.pop(EVERY_SITE, ClockSetting())
        return cls(default, settings)

    def overridden(self, changes: Mapping[str, ClockSetting]) -> ClockPlan:
        """This plan with `changes` ({site or `*`: setting}) taking precedence."""
        default = changes.get(EVERY_SITE, self.default)
        base = {} if EVERY_SITE in changes else dict(self.sites)
        return ClockPlan(default, {
            **base, **{k: v for k, v in changes.items() if k != EVERY_SITE}
        })  # fmt: skip


def clock_overrides(options: list[str]) -> dict[str, ClockSetting]:
    """`--clocks` values, later ones winning: {site or `*`: setting}."""
    return dict(parse_clock_option(option) for option in options)


def parse_clock_option(text: str) -> tuple[str, ClockSetting]:
    """One `--clocks` value: `[SITE=]estimate` or `[SITE=]synchronized[:MS]`.

    Without a site it applies to every site.
    """
    site, _, word = text.rpartition("=")
    mode, _, within = word.partition(":")
    value: dict[str, Any] = {"mode": mode.strip()}
    if within:
        value["within_ms"] = within
    try:
        setting = ClockSetting.model_validate(value)
    except ValidationError as exc:
        detail = exc.errors()[0]["msg"]
        raise ConfigError(
            f"--clocks {text!r}: {detail}; write SITE=estimate, "
            "SITE=synchronized or SITE=synchronized:1 (within 1 ms); without "
            "SITE= it applies to every site"
        ) from None
    return site.strip() or EVERY_SITE, setting
