"""Which channels get which matches: routing rules from YAML, and the severity tier.

    # routing.yaml (path in $SENTINELA_ROUTING)
    default_channel: "#sentinela-alerts"   # default: $SENTINELA_SLACK_CHANNEL
    high_score: 0.9                        # "high" when a score reaches this or both labels fire
    routes:
      - channel: "#sentinela-urgent"
        severity: high
      - channel: "#sentinela-brasil"
        countries: [BR]
        languages: [pt]
        labels: [gang_prison_control]
        min_score: 0.6
      - channel: default                   # "default" (or no channel) is default_channel

Every route whose conditions all hold sends the item to its channel (an item may go to
several channels, each once). An item no route takes goes to `default_channel`, unless
`unrouted: drop` is set. Without a file, everything goes to the default channel.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pipeline.classify.base import LABELS

SEVERITIES = ("normal", "high")
DEFAULT_HIGH_SCORE = 0.9
_ROUTE_KEYS = {"name", "channel", "labels", "languages", "countries", "min_score", "severity"}
_TOP_KEYS = {"default_channel", "high_score", "routes", "unrouted"}


class RoutingError(ValueError):
    """The routing file is unusable; the message names the file and the rule."""


@dataclass(frozen=True)
class Destination:
    channel: str
    severity: str = "normal"


@dataclass(frozen=True)
class Match:
    """What routing looks at: the classifier's verdict and where the story is from."""

    labels: Sequence[str]
    scores: Mapping[str, float]
    lang: str | None = None
    countries: Sequence[str] = ()

    @property
    def score(self) -> float:
        return max((self.scores.get(lbl, 0.0) for lbl in self.labels), default=0.0)


@dataclass(frozen=True)
class Route:
    channel: str
    name: str = ""
    labels: frozenset[str] = frozenset()
    languages: frozenset[str] = frozenset()
    countries: frozenset[str] = frozenset()
    min_score: float = 0.0
    severity: str | None = None

    def takes(self, match: Match, severity: str) -> bool:
        if self.labels and not self.labels & set(match.labels):
            return False
        if self.languages and (match.lang or "").lower() not in self.languages:
            return False
        if self.countries and not self.countries & {c.upper() for c in match.countries}:
            return False
        if self.labels:
            best = max((match.scores.get(lbl, 0.0) for lbl in self.labels), default=0.0)
        else:
            best = match.score
        if best < self.min_score:
            return False
        return self.severity is None or self.severity == severity


@dataclass(frozen=True)
class Router:
    default_channel: str
    routes: tuple[Route, ...] = ()
    high_score: float = DEFAULT_HIGH_SCORE
    drop_unrouted: bool = False

    @classmethod
    def single(cls, channel: str, high_score: float = DEFAULT_HIGH_SCORE) -> Router:
        return cls(default_channel=channel, high_score=high_score)

    def severity(self, match: Match) -> str:
        both = set(LABELS) <= set(match.labels)
        return "high" if both or match.score >= self.high_score else "normal"

    def destinations(self, match: Match) -> list[Destination]:
        """Channels for one match, each once, in rule order."""
        if not match.labels:
            return []
        severity = self.severity(match)
        channels: list[str] = []
        for route in self.routes:
            if route.takes(match, severity) and route.channel not in channels:
                channels.append(route.channel)
        if not channels and not self.drop_unrouted:
            channels.append(self.default_channel)
        return [Destination(c, severity) for c in channels]

    @property
    def channels(self) -> tuple[str, ...]:
        out = [self.default_channel]
        out += [r.channel for r in self.routes if r.channel not in out]
        return tuple(out)


def _strings(value: Any, where: str, key: str) -> frozenset[str]:
    if value is None:
        return frozenset()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str | int) for v in value):
        raise RoutingError(f"{where}: '{key}' must be a list of strings")
    return frozenset(str(v) for v in value)


def parse_routing(data: Any, default_channel: str, where: str = "routing") -> Router:
    if data is None:
        return Router.single(default_channel)
    if not isinstance(data, dict):
        raise RoutingError(f"{where}: expected a mapping with 'routes'")
    unknown = set(data) - _TOP_KEYS
    if unknown:
        raise RoutingError(f"{where}: unknown key(s) {', '.join(sorted(unknown))}")
    default = str(data.get("default_channel") or default_channel)
    try:
        high = float(data.get("high_score", DEFAULT_HIGH_SCORE))
    except (TypeError, ValueError) as exc:
        raise RoutingError(f"{where}: 'high_score' must be a number") from exc
    unrouted = data.get("unrouted", "default")
    if unrouted not in ("default", "drop"):
        raise RoutingError(f"{where}: 'unrouted' must be 'default' or 'drop'")
    raw_routes = data.get("routes") or []
    if not isinstance(raw_routes, list):
        raise RoutingError(f"{where}: 'routes' must be a list")
    routes: list[Route] = []
    for n, raw in enumerate(raw_routes, start=1):
        here = f"{where}: route {n}"
        if not isinstance(raw, dict):
            raise RoutingError(f"{here}: expected a mapping")
        bad = set(raw) - _ROUTE_KEYS
        if bad:
            raise RoutingError(f"{here}: unknown key(s) {', '.join(sorted(bad))}")
        channel = str(raw.get("channel") or "default")
        if channel == "default":
            channel = default
        labels = _strings(raw.get("labels"), here, "labels")
        if labels - set(LABELS):
            raise RoutingError(
                f"{here}: unknown label(s) {', '.join(sorted(labels - set(LABELS)))}; "
                f"known: {', '.join(LABELS)}"
            )
        severity = raw.get("severity")
        if severity is not None and severity not in SEVERITIES:
            raise RoutingError(f"{here}: 'severity' must be one of {', '.join(SEVERITIES)}")
        try:
            min_score = float(raw.get("min_score", 0.0))
        except (TypeError, ValueError) as exc:
            raise RoutingError(f"{here}: 'min_score' must be a number") from exc
        routes.append(
            Route(
                channel=channel,
                name=str(raw.get("name") or f"route {n}"),
                labels=labels,
                languages=frozenset(
                    v.lower() for v in _strings(raw.get("languages"), here, "languages")
                ),
                countries=frozenset(
                    v.upper() for v in _strings(raw.get("countries"), here, "countries")
                ),
                min_score=min_score,
                severity=severity,
            )
        )
    return Router(
        default_channel=default,
        routes=tuple(routes),
        high_score=high,
        drop_unrouted=unrouted == "drop",
    )


def load_routing(path: Path | None, default_channel: str) -> Router:
    """The router from `path` (None: everything to `default_channel`)."""
    if path is None:
        return Router.single(default_channel)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RoutingError(f"cannot read routing file {path}: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise RoutingError(f"{path}: not valid YAML ({exc})") from exc
    return parse_routing(data, default_channel, str(path))
