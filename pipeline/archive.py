"""The analysts' queries in `sql/queries/`: one loader for the tests, the CLI and the docs.

Each `NAME.sql` file is one statement under a comment block that documents it:

    -- One line saying what it answers.
    -- …
    -- Dialect: postgresql (why)
    --
    -- Parameters:
    --   :days   integer  look-back window in days (default 7)
    --   :q      text     words to look for
    --
    -- Example:
    --   sentinela query NAME --param q=…

The parameter list is the contract: `run_query` fills in defaults, converts the strings the
CLI passes to the declared type, and refuses unknown or missing parameters with a message
naming them, before anything reaches the database.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

QUERIES_DIR = Path(__file__).resolve().parents[1] / "sql" / "queries"

_NAME = re.compile(r"^[a-z0-9_]+$")
_PARAM_LINE = re.compile(r"^--\s+:(\w+)\s+(\w+)\s+(.*)$")
_DEFAULT = re.compile(r"\(default ([^)]*)\)\s*$")
_BIND = re.compile(r"(?<![:\w]):(\w+)")
_TYPES = ("text", "integer", "number", "date", "boolean")


@dataclass(frozen=True)
class QueryParam:
    name: str
    type: str
    help: str
    required: bool
    default: Any = None


@dataclass(frozen=True)
class QueryDoc:
    name: str
    summary: str
    dialects: tuple[str, ...]
    params: tuple[QueryParam, ...]
    header: str
    sql: str


def list_queries() -> list[str]:
    return sorted(p.stem for p in QUERIES_DIR.glob("*.sql"))


def load_query(name: str) -> str:
    """The whole file, documentation block included."""
    if not _NAME.match(name):
        raise ValueError(f"query name must be lowercase letters, digits and _: {name!r}")
    path = QUERIES_DIR / f"{name}.sql"
    if not path.is_file():
        raise ValueError(f"no query named {name!r}; known: {', '.join(list_queries())}")
    return path.read_text(encoding="utf-8")


def _convert(param: QueryParam, raw: Any) -> Any:
    if raw is None or not isinstance(raw, str):
        return raw
    try:
        if param.type == "integer":
            return int(raw)
        if param.type == "number":
            return float(raw)
        if param.type == "date":
            return date.fromisoformat(raw)
        if param.type == "boolean":
            if raw.lower() not in {"true", "false", "1", "0", "yes", "no"}:
                raise ValueError(raw)
            return raw.lower() in {"true", "1", "yes"}
    except ValueError as exc:
        raise ValueError(
            f"parameter :{param.name} must be of type {param.type}, got {raw!r}"
        ) from exc
    return raw


def describe_query(name: str) -> QueryDoc:
    text = load_query(name)
    header: list[str] = []
    body: list[str] = []
    for line in text.splitlines():
        if not body and line.startswith("--"):
            header.append(line)
        elif not line.lstrip().startswith("--"):
            # Full-line comments go; SQLAlchemy would read ":word" in them as a parameter.
            body.append(line)
    sql = "\n".join(body).strip().rstrip(";").strip()
    if not header or not sql:
        raise ValueError(f"{name}.sql must start with a comment block followed by one statement")
    summary = header[0].lstrip("-").strip()
    dialects: tuple[str, ...] = ()
    params: list[QueryParam] = []
    in_params = False
    for line in header:
        content = line.lstrip("-").strip()
        if content.lower().startswith("dialect:"):
            spec = content.split(":", 1)[1].split("(", 1)[0]
            dialects = tuple(d.strip().lower() for d in spec.split(",") if d.strip())
        if content.lower().startswith("parameters:"):
            in_params = True
            continue
        if in_params:
            m = _PARAM_LINE.match(line)
            if m is None:
                if not content:
                    in_params = False
                continue
            pname, ptype, phelp = m.groups()
            if ptype not in _TYPES:
                raise ValueError(f"{name}.sql: parameter :{pname} has unknown type {ptype!r}")
            dm = _DEFAULT.search(phelp)
            if dm is None:
                params.append(QueryParam(pname, ptype, phelp, required=True))
                continue
            shell = QueryParam(pname, ptype, phelp, required=False)
            raw = dm.group(1).strip()
            # "(default none)" or "(default none: what that means)"
            default = None if raw.split(":")[0].strip() == "none" else _convert(shell, raw)
            params.append(QueryParam(pname, ptype, phelp, required=False, default=default))
    if not dialects:
        raise ValueError(f"{name}.sql: the comment block must say `-- Dialect: …`")
    return QueryDoc(name, summary, dialects, tuple(params), "\n".join(header), sql)


def bind_names(sql: str) -> set[str]:
    """The :named parameters a statement uses (`::` casts are not parameters)."""
    return set(_BIND.findall(re.sub(r"'[^']*'", "''", sql)))


def bind_params(doc: QueryDoc, given: Mapping[str, Any]) -> dict[str, Any]:
    declared = {p.name: p for p in doc.params}
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise ValueError(
            f"query {doc.name} has no parameter(s) {', '.join(':' + u for u in unknown)}; "
            f"it takes {', '.join(':' + p for p in declared) or 'none'}"
        )
    missing = sorted(p.name for p in doc.params if p.required and p.name not in given)
    if missing:
        raise ValueError(
            f"query {doc.name} needs {', '.join(':' + m for m in missing)} "
            f"(e.g. --param {missing[0]}=…)"
        )
    return {
        p.name: _convert(p, given[p.name]) if p.name in given else p.default for p in doc.params
    }


def run_query(engine: Engine, name: str, **params: Any) -> list[dict[str, Any]]:
    """Run a documented query with `params` (defaults filled in); rows as dicts."""
    doc = describe_query(name)
    if engine.dialect.name not in doc.dialects:
        raise ValueError(
            f"query {name} runs on {', '.join(doc.dialects)}, not {engine.dialect.name}"
        )
    values = bind_params(doc, params)
    with engine.connect() as conn:
        result = conn.execute(sa.text(doc.sql), values)
        return [dict(row) for row in result.mappings()]


def parse_param_args(pairs: Sequence[str]) -> dict[str, str]:
    """`k=v` strings from the command line."""
    out: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--param takes NAME=VALUE, got {pair!r}")
        out[key.strip().lstrip(":")] = value
    return out


def _cell(value: Any, width: int) -> str:
    if value is None:
        text = ""
    elif isinstance(value, datetime):
        text = value.strftime("%Y-%m-%d %H:%M")
    elif isinstance(value, float | Decimal):
        text = f"{value:g}" if isinstance(value, float) else str(value)
    elif isinstance(value, list):
        text = ",".join(str(v) for v in value)
    else:
        text = str(value)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(rows: Sequence[Mapping[str, Any]], max_width: int = 60) -> str:
    """A plain-text table for a terminal; long cells are cut at `max_width`."""
    if not rows:
        return "(no rows)"
    cols = list(rows[0].keys())
    cells = [[_cell(r[c], max_width) for c in cols] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(cols)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(cols, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    for row in cells:
        lines.append("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(lines)
