"""`sentinela` console command."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from pipeline.config import Settings


def _settings(args: argparse.Namespace) -> Settings:
    s = Settings.from_env()
    if getattr(args, "db", None):
        s = s.with_(database_url=args.db)
    if getattr(args, "sources", None):
        s = s.with_(sources_file=Path(args.sources))
    return s


def _engine(settings: Settings) -> Any:
    from pipeline.storage.db import make_engine, upgrade

    engine = make_engine(settings.database_url)
    upgrade(engine)
    return engine


def cmd_run(args: argparse.Namespace) -> int:
    from pipeline.alerts.sinks import make_sink
    from pipeline.classify.model import load_classifier
    from pipeline.run import format_summary, run_once
    from pipeline.sources import load_sources

    if not args.once:
        print(
            "only `sentinela run --once` is supported; schedule runs with Airflow (`make airflow`)",
            file=sys.stderr,
        )
        return 2
    settings = _settings(args)
    srcs = load_sources(settings.sources_file)
    classifier = load_classifier(settings.model_dir, settings.cache_dir)
    engine = _engine(settings)
    sink = make_sink(settings)
    summary = run_once(engine, settings, srcs, classifier, sink)
    print(format_summary(summary))
    print(
        f"alerts went to: {sink.destination}  ·  model {classifier.model_version}  ·  "
        f"archive {engine.url.render_as_string(hide_password=True)}"
    )
    return 0


def _read_jsonl(path: str, stream_in: TextIO) -> tuple[list[tuple[int, dict[str, Any]]], list[str]]:
    good: list[tuple[int, dict[str, Any]]] = []
    errors: list[str] = []
    handle = stream_in if path == "-" else open(path, encoding="utf-8")  # noqa: SIM115
    try:
        for n, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                errors.append(f"{path}:{n}: not valid JSON ({exc.msg} at column {exc.colno})")
                continue
            if not isinstance(obj, dict):
                errors.append(f"{path}:{n}: expected a JSON object, got {type(obj).__name__}")
                continue
            missing = [k for k in ("id", "title", "text") if k not in obj]
            if missing:
                errors.append(f"{path}:{n}: missing required key(s): {', '.join(missing)}")
                continue
            bad = [k for k in ("title", "text") if not isinstance(obj[k], str)]
            if bad or (
                "lang" in obj and obj["lang"] is not None and not isinstance(obj["lang"], str)
            ):
                errors.append(f"{path}:{n}: 'title', 'text' and 'lang' must be strings")
                continue
            good.append((n, obj))
    finally:
        if handle is not stream_in:
            handle.close()
    return good, errors


def cmd_classify(args: argparse.Namespace) -> int:
    from pipeline.classify.base import Document
    from pipeline.classify.model import load_classifier

    settings = _settings(args)
    try:
        rows, errors = _read_jsonl(args.input, sys.stdin)
    except OSError as exc:
        print(f"sentinela classify: cannot read {args.input}: {exc.strerror}", file=sys.stderr)
        return 2
    for e in errors:
        print(f"sentinela classify: {e}", file=sys.stderr)
    classifier = load_classifier(settings.model_dir, settings.cache_dir)
    docs = [Document(str(o["id"]), o["title"], o["text"], o.get("lang")) for _, o in rows]
    preds = classifier.predict(docs)
    out = sys.stdout if args.output == "-" else open(args.output, "w", encoding="utf-8")  # noqa: SIM115
    try:
        for (_, obj), p in zip(rows, preds, strict=True):
            rec = {
                "id": obj["id"],
                "labels": p.labels,
                "scores": p.scores,
                "model_version": p.model_version,
            }
            if p.evidence:
                rec["evidence"] = p.evidence
            out.write(json.dumps(rec, ensure_ascii=False) + "\n")
    finally:
        if out is not sys.stdout:
            out.close()
    print(
        f"classified {len(rows)} item(s); {sum(p.is_match for p in preds)} match(es); "
        f"{len(errors)} bad line(s)",
        file=sys.stderr,
    )
    return 1 if errors else 0


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from pipeline.storage.db import current_revision

    settings = _settings(args)
    engine = _engine(settings)
    print(
        f"archive at revision {current_revision(engine)}: "
        f"{engine.url.render_as_string(hide_password=True)}"
    )
    return 0


def cmd_sources_check(args: argparse.Namespace) -> int:
    from pipeline.health import format_health, source_health
    from pipeline.sources import load_sources

    settings = _settings(args)
    srcs = load_sources(settings.sources_file)
    engine = _engine(settings)
    print(f"{settings.sources_file}: {len(srcs)} valid source(s)")
    print(format_health(source_health(engine, srcs)))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from pipeline.demo import run_demo

    return run_demo(_settings(args), port=args.port)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from pipeline.evaluate import run_evaluate

    settings = _settings(args)
    return run_evaluate(Path(args.file), settings)


def cmd_query(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import DataError, ProgrammingError

    from pipeline.archive import (
        describe_query,
        format_table,
        list_queries,
        parse_param_args,
        run_query,
    )
    from pipeline.storage.db import make_engine

    if args.list or not args.name:
        for name in list_queries():
            print(f"{name:28} {describe_query(name).summary}")
        return 0 if args.list else 2
    params = parse_param_args(args.param)
    describe_query(args.name)  # an unknown name fails before connecting
    # No `upgrade` here: analysts query with a read-only login that cannot migrate.
    engine = make_engine(_settings(args).database_url)
    try:
        rows = run_query(engine, args.name, **params)
    except (ProgrammingError, DataError) as exc:
        # permission denied, a missing view (archive not migrated), a value of the wrong type
        print(f"sentinela query: {str(exc.orig).strip()}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, default=str, indent=1))
    else:
        print(format_table(rows))
    return 0


def cmd_archive_import(args: argparse.Namespace) -> int:
    from pipeline.importer import import_jsonl

    settings = _settings(args)
    engine = _engine(settings)
    try:
        report = import_jsonl(
            engine,
            args.file,
            default_source=args.source,
            chunk=args.chunk,
            loaders=args.loaders,
            on_bad_line=lambda msg: print(f"sentinela archive import: {msg}", file=sys.stderr),
        )
    except OSError as exc:
        print(f"sentinela archive import: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    finally:
        engine.dispose()
    load = report.load
    rate = f" ({load.rows / load.seconds:,.0f} rows/s)" if load.seconds > 0 and load.rows else ""
    print(
        f"imported {load.inserted} item(s) in {load.seconds:.1f} s{rate}; skipped "
        f"{report.skipped} already archived or repeated in the file; {report.bad} bad line(s)"
    )
    if report.new_sources:
        print(f"new source(s), kind 'import': {', '.join(report.new_sources)}")
    if load.inserted:
        print(
            "imported items are unclassified: the next `sentinela run --once` (or the DAG's "
            "classify task) scores them; matches of 'import' sources are archived, not alerted"
        )
    return 1 if report.bad else 0


def cmd_digest(args: argparse.Namespace) -> int:
    from datetime import UTC, date, datetime, timedelta

    from pipeline.alerts.digest import collect, console_digest, send_digest
    from pipeline.alerts.sinks import make_hook, make_sink
    from pipeline.run import make_router

    settings = _settings(args)
    try:
        day = (
            date.fromisoformat(args.day)
            if args.day
            else datetime.now(UTC).date() - timedelta(days=1)
        )
    except ValueError as exc:
        raise ValueError(f"--day must be YYYY-MM-DD, got {args.day!r}") from exc
    engine = _engine(settings)
    sink = make_sink(settings)
    channels = args.channel or list(make_router(settings, sink).channels)
    if not settings.slack_bot_token:
        for channel in channels:
            with engine.connect() as conn:
                print(console_digest(collect(conn, channel, day)))
        return 0
    hook = make_hook(settings)
    for channel in channels:
        r = send_digest(engine, hook, channel, day, force=args.force)
        print(f"{channel} {day}: {r.total} match(es), {r.status.replace('_', ' ')} (ts {r.ts})")
    return 0


def cmd_feedback_listen(args: argparse.Namespace) -> int:
    from pipeline.alerts.feedback import listen

    settings = _settings(args)
    return listen(_engine(settings), settings)


def cmd_feedback_export(args: argparse.Namespace) -> int:
    from pipeline.alerts.feedback import export_jsonl

    settings = _settings(args)
    engine = _engine(settings)
    out = sys.stdout if args.output == "-" else open(args.output, "w", encoding="utf-8")  # noqa: SIM115
    try:
        n = export_jsonl(engine, out)
    finally:
        if out is not sys.stdout:
            out.close()
    print(f"exported {n} example(s) from analyst feedback", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sentinela", description=__doc__)
    p.add_argument("-v", "--verbose", action="store_true", help="log debug detail")
    sub = p.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="run the pipeline: fetch, parse, classify, store, alert")
    run.add_argument("--once", action="store_true", help="one pass over every source, then exit")
    run.add_argument("--sources", help="sources file (default $SENTINELA_SOURCES or sources.yaml)")
    run.add_argument("--db", help="database URL (default $SENTINELA_DATABASE_URL)")
    run.set_defaults(func=cmd_run)

    cl = sub.add_parser("classify", help="classify a JSONL file: id, title, text[, lang] per line")
    cl.add_argument("--input", required=True, help="input JSONL ('-' for stdin)")
    cl.add_argument("--output", required=True, help="output JSONL ('-' for stdout)")
    cl.set_defaults(func=cmd_classify)

    db = sub.add_parser("db", help="archive maintenance")
    dbs = db.add_subparsers(dest="db_command", required=True)
    up = dbs.add_parser("upgrade", help="apply schema migrations")
    up.add_argument("--db", help="database URL (default $SENTINELA_DATABASE_URL)")
    up.set_defaults(func=cmd_db_upgrade)

    so = sub.add_parser("sources", help="sources")
    sos = so.add_subparsers(dest="sources_command", required=True)
    ck = sos.add_parser("check", help="validate the sources file and print source health")
    ck.add_argument("--sources", help="sources file")
    ck.add_argument("--db", help="database URL")
    ck.set_defaults(func=cmd_sources_check)

    demo = sub.add_parser("demo", help="serve bundled sample feeds locally and run the pipeline")
    demo.add_argument("--port", type=int, default=0, help="port for the sample feed server")
    demo.add_argument("--db", help="database URL (default data/demo.db)")
    demo.set_defaults(func=cmd_demo)

    ev = sub.add_parser("evaluate", help="precision/recall/F1 of the model and a keyword baseline")
    ev.add_argument("file", help="labelled JSONL: id, title, text, lang, labels")
    ev.set_defaults(func=cmd_evaluate)

    qu = sub.add_parser("query", help="run one of the documented analyst queries in sql/queries")
    qu.add_argument("name", nargs="?", help="query name (the .sql file's stem); --list lists them")
    qu.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a query parameter, repeatable",
    )
    qu.add_argument("--list", action="store_true", help="list the queries and what they answer")
    qu.add_argument("--json", action="store_true", help="print rows as JSON instead of a table")
    qu.add_argument("--db", help="database URL (default $SENTINELA_DATABASE_URL)")
    qu.set_defaults(func=cmd_query)

    ar = sub.add_parser("archive", help="the archive's contents")
    ars = ar.add_subparsers(dest="archive_command", required=True)
    im = ars.add_parser(
        "import",
        help="backfill the archive from a JSONL export (bulk load)",
        description=(
            "Import items from a JSONL export, one JSON object per line: url, title, text, and "
            "optionally lang, published_at (ISO 8601) and source. Canonical URL, content hash "
            "and language are computed as ingest does, so items already archived (or imported "
            "before) are skipped and a re-run is harmless. Sources not in the archive are "
            "created with kind 'import'. Bad lines are reported as FILE:LINE and skipped (exit "
            "status 1). Imported items are stored unclassified: the next `sentinela run --once` "
            "(or the DAG's classify task) scores them, which is what makes them show up as "
            "matches in `sentinela query`. Matches of 'import' sources are never alerted (a "
            "backfill must not flood Slack); items imported under the name of an existing "
            "feed are alerted like that feed's. On PostgreSQL the "
            "load uses COPY on parallel connections; on SQLite batched INSERTs."
        ),
    )
    im.add_argument("file", help="JSONL export ('-' for stdin)")
    im.add_argument("--source", help="source name for lines without a 'source' key")
    im.add_argument(
        "--loaders", type=int, default=2, help="parallel loader connections (PostgreSQL; default 2)"
    )
    im.add_argument(
        "--chunk", type=int, default=50_000, help="rows per transaction (default 50000)"
    )
    im.add_argument("--db", help="database URL (default $SENTINELA_DATABASE_URL)")
    im.set_defaults(func=cmd_archive_import)

    dg = sub.add_parser("digest", help="post the daily digest to each alert channel")
    dg.add_argument("--day", help="UTC day, YYYY-MM-DD (default: yesterday)")
    dg.add_argument("--channel", action="append", help="only this channel (repeatable)")
    dg.add_argument("--force", action="store_true", help="post again even if already sent")
    dg.add_argument("--db", help="database URL (default $SENTINELA_DATABASE_URL)")
    dg.set_defaults(func=cmd_digest)

    fb = sub.add_parser("feedback", help="analysts' Relevant / Not relevant verdicts")
    fbs = fb.add_subparsers(dest="feedback_command", required=True)
    fl = fbs.add_parser("listen", help="receive button clicks over Slack Socket Mode")
    fl.add_argument("--db", help="database URL (default $SENTINELA_DATABASE_URL)")
    fl.set_defaults(func=cmd_feedback_listen)
    fe = fbs.add_parser("export", help="write verdicts as classifier training data (JSONL)")
    fe.add_argument("--output", required=True, help="output JSONL ('-' for stdout)")
    fe.add_argument("--db", help="database URL (default $SENTINELA_DATABASE_URL)")
    fe.set_defaults(func=cmd_feedback_export)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from pipeline.errors import SentinelaError

    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        return int(args.func(args))
    except (SentinelaError, ValueError, RuntimeError) as exc:
        # Known failure modes get one clear line, not a traceback.
        print(f"sentinela: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        from sqlalchemy.exc import OperationalError

        if isinstance(exc, OperationalError):
            print(f"sentinela: error: database unavailable: {exc.orig}", file=sys.stderr)
            return 3
        raise


if __name__ == "__main__":
    sys.exit(main())
