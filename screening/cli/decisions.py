"""Screening commands: decide, undo, conflicts, resolve, history, fulltext, reviewers, reasons, mode,
agreement and prisma. Each one calls the library once and prints the result."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from .. import decisions as lib
from ..agreement import agreement
from ..errors import ConfigError
from ..outputs import write_output
from ..prisma import checked_counts, to_json, to_template_csv
from ..prisma_diagram import write_diagram
from ..reviewers import add_reason, add_reviewer, get_mode, list_reasons, list_reviewers, set_mode, update_reviewer
from ..schema import STAGES, Stage
from ..sources.tabular import spreadsheet_safe
from ..stopping import DEFAULT_RULE, RULES
from ..store import Store
from .common import MAX_ID, DbOption, console, handle_errors, open_project

if TYPE_CHECKING:
    from ..stopping import StopVerdict
    from ..stops import StageEvidence

ReviewerOption = Annotated[str, typer.Option("--reviewer", help="Registered reviewer name (see 'reviewers add').")]
StageOption = Annotated[str, typer.Option("--stage", help="title_abstract or full_text.")]
ReasonOption = Annotated[
    str | None, typer.Option("--reason", help="Exclusion reason; at full text, exactly one from 'reasons list'.")
]
NoteOption = Annotated[str | None, typer.Option("--note", help="Free-text note kept with the decision.")]
RecordArg = Annotated[
    int, typer.Argument(min=1, max=MAX_ID, help="Record id (a duplicate's id applies to its canonical record).")
]
ValueArg = Annotated[str, typer.Argument(help="include, exclude or maybe.")]
ExportFormat = Annotated[str, typer.Option("--format", help="table, csv or json.")]
OutOption = Annotated[Path | None, typer.Option("--out", help="Write to this file instead of the screen.")]
ReviseOption = Annotated[
    bool,
    typer.Option("--revise", help="Change a decision already made (written as an undo of it plus the new decision)."),
]

PRISMA_FORMATS = ("csv", "json", "svg", "png")
_STAGE_SHORT = {Stage.TITLE_ABSTRACT: "TiAb", Stage.FULL_TEXT: "full text"}
EXPORT_FORMATS = ("table", "csv", "json")


def _said(result: lib.DecisionResult) -> str:
    reason = f" ({result.reason})" if result.reason else ""
    text = f"#{result.id}: {result.reviewer} {result.value}{reason} record {result.record_id} at {result.stage}"
    if result.redirected:
        text += f" (record {result.requested_record_id} is a duplicate of {result.record_id})"
    return text


def _emit(text: str, out: Path | None, protect: Store | None = None) -> None:
    """Print, or write ``out`` atomically; an ``out`` that is the project's database is refused."""
    if out is None:
        typer.echo(text, nl=not text.endswith("\n"))
    else:
        write_output(out, text, protect=protect)
        console.print(f"Wrote {out}")


def _check_format(fmt: str, allowed: tuple[str, ...]) -> str:
    if fmt not in allowed:
        raise ConfigError(f"--format: {fmt!r} is not one of {', '.join(allowed)}")
    return fmt


def _rows_csv(rows: list[dict[str, object]]) -> str:
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: spreadsheet_safe(v) if isinstance(v, str) else v for k, v in row.items()} for row in rows)
    return buf.getvalue()


# -- decisions ------------------------------------------------------------------
@handle_errors
def decide_command(
    record: RecordArg,
    value: ValueArg,
    db: DbOption,
    reviewer: ReviewerOption,
    stage: StageOption = Stage.TITLE_ABSTRACT,
    reason: ReasonOption = None,
    note: NoteOption = None,
    revise: ReviseOption = False,
) -> None:
    """Record a screening decision (a new row: earlier decisions are kept).

    A record already decided (in single mode, by anyone) is refused with who decided it,
    unless --revise says the decision is to be changed.
    """
    with open_project(db) as store:
        result = lib.decide(
            store, record, value, reviewer=reviewer, stage=stage, reason=reason, note=note, revise=revise
        )
        console.print(("revised " if result.revises_id else "") + _said(result), highlight=False)


@handle_errors
def undo_command(
    db: DbOption,
    reviewer: ReviewerOption,
    stage: Annotated[str | None, typer.Option("--stage", help="Only undo a decision at this stage.")] = None,
    decision: Annotated[
        int | None,
        typer.Option("--decision", min=1, max=MAX_ID, help="Undo exactly this decision (its id, see 'history')."),
    ] = None,
) -> None:
    """Undo the reviewer's latest decision that is not already undone (undoing a revision restores what it replaced)."""
    with open_project(db) as store:
        result = lib.undo(store, reviewer=reviewer, stage=stage, decision_id=decision)
        console.print(
            f"#{result.id}: {result.reviewer} undid decision {result.undoes_id} on record "
            f"{result.record_id} at {result.stage}",
            highlight=False,
        )


@handle_errors
def resolve_command(
    record: RecordArg,
    value: ValueArg,
    db: DbOption,
    reviewer: ReviewerOption,
    stage: StageOption = Stage.TITLE_ABSTRACT,
    reason: ReasonOption = None,
    note: NoteOption = None,
    revise: ReviseOption = False,
) -> None:
    """Settle a conflict as a third reviewer; kept as a resolution. A record is resolved once, unless --revise."""
    with open_project(db) as store:
        result = lib.resolve(
            store, record, value, reviewer=reviewer, stage=stage, reason=reason, note=note, revise=revise
        )
        console.print("resolved " + _said(result), highlight=False)


@handle_errors
def fulltext_command(
    record: RecordArg,
    db: DbOption,
    reviewer: ReviewerOption,
    retrieved: Annotated[str, typer.Option("--retrieved", help="yes or no: was the full-text report obtained?")],
    note: NoteOption = None,
) -> None:
    """Record whether a sought report's full text was retrieved."""
    answer = retrieved.strip().lower()
    if answer not in ("yes", "no"):
        raise ConfigError(f"--retrieved: {retrieved!r} is not yes or no")
    with open_project(db) as store:
        result = lib.set_retrieval(store, record, answer == "yes", reviewer=reviewer, note=note)
        console.print(_said(result), highlight=False)


@handle_errors
def conflicts_command(db: DbOption, stage: StageOption = Stage.TITLE_ABSTRACT, fmt: ExportFormat = "table") -> None:
    """List records where dual-screening reviewers disagree."""
    _check_format(fmt, EXPORT_FORMATS)
    with open_project(db) as store:
        found = lib.conflicts(store, stage)
    rows = [
        {
            "record_id": c.record_id,
            "title": c.title,
            "votes": "; ".join(
                f"{name}: {value}" + (f" ({reason})" if reason else "") for name, (value, reason) in c.votes.items()
            ),
        }
        for c in found
    ]
    if fmt != "table":
        _emit(json.dumps(rows, indent=2) + "\n" if fmt == "json" else _rows_csv(rows), None)
        return
    table = Table("record", "title", "votes", title=f"{len(rows)} conflicts at {stage}")
    for row in rows:
        table.add_row(str(row["record_id"]), str(row["title"])[:80], str(row["votes"]))
    console.print(table)


@handle_errors
def history_command(
    record: RecordArg,
    db: DbOption,
    fmt: ExportFormat = "table",
    out: OutOption = None,
    viewer: Annotated[
        str | None, typer.Option("--as", help="Show only what this reviewer may see (blind mode hides the others).")
    ] = None,
) -> None:
    """Show or export every decision on a record and its duplicates, oldest first."""
    _check_format(fmt, EXPORT_FORMATS)
    with open_project(db) as store:
        status = lib.record_status(store, record)
        if viewer is None:
            entries = lib.history(store, record)
        else:
            entries = sorted(
                (e for stage in STAGES for e in lib.visible_decisions(store, record, viewer=viewer, stage=stage)),
                key=lambda e: e.id,
            )
    rows = [e.as_dict() for e in entries]
    if fmt == "json":
        _emit(
            json.dumps({"record_id": status.record_id, "duplicates": status.duplicate_ids, "decisions": rows}, indent=2)
            + "\n",
            out,
            store,
        )
        return
    if fmt == "csv":
        _emit(_rows_csv(rows), out, store)
        return
    if status.record_id != record:
        console.print(f"Record {record} is a duplicate of record {status.record_id}; showing the group.")
    console.print(f"[bold]{status.title}[/]", highlight=False)
    console.print(
        f"title/abstract: {status.title_abstract.status} {status.title_abstract.value or ''}; "
        f"full text: {status.retrieval or 'not requested'}, {status.full_text.status} "
        f"{status.full_text.value or ''}",
        highlight=False,
    )
    group = bool(status.duplicate_ids)  # show which record of the group each row was made on
    table = Table(
        "#", "when", *(["record"] if group else []), "stage", "reviewer", "kind", "value", "reason", "note", "undone by"
    )
    for e in entries:
        cells = [str(e.id), e.created_at.strftime("%Y-%m-%d %H:%M")]
        cells += [str(e.record_id)] if group else []
        cells += [
            _STAGE_SHORT[e.stage],
            e.reviewer,
            e.kind,
            e.value,
            e.reason or "",
            e.note or "",
            str(e.undone_by or ""),
        ]
        table.add_row(*cells)
    console.print(table)


# -- setup: reviewers, reasons, modes ----------------------------------------------
reviewers_app = typer.Typer(help="Named reviewers of the project.", no_args_is_help=True)
reasons_app = typer.Typer(help="Exclusion reasons per stage (full text needs exactly one).", no_args_is_help=True)
mode_app = typer.Typer(help="Screening mode per stage: single or dual, optionally blind.", no_args_is_help=True)


@reviewers_app.command("add")
@handle_errors
def reviewers_add(
    name: Annotated[str, typer.Argument(help="Reviewer name, unique in the project.")],
    db: DbOption,
    role: Annotated[str, typer.Option("--role", help="owner, reviewer or adjudicator.")] = "reviewer",
    email: Annotated[
        str | None, typer.Option("--email", help="Sign-in email (the identity provider's verified email; any case).")
    ] = None,
    subject: Annotated[
        str | None, typer.Option("--subject", help="Sign-in subject: the identity provider's 'sub' claim.")
    ] = None,
) -> None:
    """Register a reviewer (with --email or --subject, one who signs in to the team server)."""
    with open_project(db) as store:
        info = add_reviewer(store, name, role=role, email=email, subject=subject)
        signs_in = f", signs in as {info.email or info.subject}" if info.email or info.subject else ""
        console.print(f"Added reviewer {info.name} ({info.role}{signs_in})", highlight=False)


@reviewers_app.command("update")
@handle_errors
def reviewers_update(
    name: Annotated[str, typer.Argument(help="The reviewer's name.")],
    db: DbOption,
    role: Annotated[str | None, typer.Option("--role", help="New role: owner, reviewer or adjudicator.")] = None,
    email: Annotated[str | None, typer.Option("--email", help="New sign-in email ('' clears it).")] = None,
    subject: Annotated[str | None, typer.Option("--subject", help="New sign-in subject ('' clears it).")] = None,
    remove: Annotated[
        bool, typer.Option("--remove", help="Remove their access: no sign-in, no new decisions; decisions kept.")
    ] = False,
    restore: Annotated[bool, typer.Option("--restore", help="Give a removed reviewer their access back.")] = False,
) -> None:
    """Change a reviewer's role or sign-in, or remove (or restore) their access without deleting any decision."""
    if remove and restore:
        raise ConfigError("--remove and --restore: give one of them")
    changes: dict[str, Any] = {}
    if email is not None:
        changes["email"] = email or None
    if subject is not None:
        changes["subject"] = subject or None
    with open_project(db) as store:
        info = update_reviewer(store, name, role=role, active=False if remove else True if restore else None, **changes)
        signs_in = info.email or info.subject or "no sign-in"
        access = "active" if info.active else "access removed"
        console.print(f"{info.name}: {info.role}, {signs_in}, {access}", highlight=False)


@reviewers_app.command("list")
@handle_errors
def reviewers_list(db: DbOption) -> None:
    """List the project's reviewers: name, role, sign-in (email or subject) and whether their access was removed."""
    with open_project(db) as store:
        for info in list_reviewers(store):
            extra = [v for v in (info.email, info.subject) if v]
            if not info.active:
                extra.append("access removed")
            console.print("\t".join([info.name, info.role, *extra]), highlight=False)


@reasons_app.command("add")
@handle_errors
def reasons_add(
    text: Annotated[str, typer.Argument(help="The reason, as it should appear in the PRISMA diagram.")],
    db: DbOption,
    stage: StageOption = Stage.FULL_TEXT,
) -> None:
    """Add an exclusion reason to a stage's list."""
    with open_project(db) as store:
        position = add_reason(store, text, stage=stage)
        console.print(f"{stage} reason {position}: {text}", highlight=False)


@reasons_app.command("list")
@handle_errors
def reasons_list(db: DbOption, stage: StageOption = Stage.FULL_TEXT) -> None:
    """List a stage's exclusion reasons."""
    with open_project(db) as store:
        for i, text in enumerate(list_reasons(store, stage), 1):
            console.print(f"{i}. {text}", highlight=False)


@mode_app.command("set")
@handle_errors
def mode_set(
    stage: Annotated[str, typer.Argument(help="title_abstract or full_text.")],
    mode: Annotated[str, typer.Argument(help="single or dual.")],
    db: DbOption,
    blind: Annotated[
        bool, typer.Option("--blind", help="Hide the other reviewer's decision until both are in.")
    ] = False,
) -> None:
    """Set a stage's screening mode."""
    with open_project(db) as store:
        result = set_mode(store, stage, mode, blind=blind)
        console.print(f"{stage}: {result.mode}{' blind' if result.blind else ''}", highlight=False)


@mode_app.command("show")
@handle_errors
def mode_show(db: DbOption) -> None:
    """Show each stage's screening mode."""
    with open_project(db) as store:
        for stage in STAGES:
            m = get_mode(store, stage)
            console.print(f"{stage}: {m.mode}{' blind' if m.blind else ''}", highlight=False)


# -- reports ------------------------------------------------------------------------
@handle_errors
def agreement_command(db: DbOption, stage: StageOption = Stage.TITLE_ABSTRACT) -> None:
    """Percent agreement and Cohen's kappa for each pair of reviewers."""
    with open_project(db) as store:
        pairs = agreement(store, stage)
    table = Table(
        "reviewer A",
        "reviewer B",
        "records",
        "agree",
        "percent",
        "kappa",
        "maybe (left out)",
        title=f"Agreement at {stage} (include vs exclude)",
    )
    for p in pairs:
        table.add_row(
            p.reviewer_a,
            p.reviewer_b,
            str(p.n),
            str(p.agree),
            "-" if p.percent is None else f"{p.percent:.1f}",
            "-" if p.kappa is None else f"{p.kappa:.3f}",
            str(p.maybe),
        )
    console.print(table)


@handle_errors
def prisma_command(
    db: DbOption,
    fmt: Annotated[str | None, typer.Option("--format", help="csv, json, svg or png (default: from --out).")] = None,
    out: OutOption = None,
    template: Annotated[Path | None, typer.Option("--template", help="Another PRISMA2020 template CSV.")] = None,
    provisional: Annotated[
        bool,
        typer.Option(
            "--provisional", help="Draw the flow of an unfinished review, marked PROVISIONAL, with what awaits."
        ),
    ] = False,
) -> None:
    """PRISMA 2020 counts as the PRISMA2020 template CSV, JSON, or the flow diagram (SVG/PNG).

    Nothing is written when the counts do not add up: the error lists each identity that fails.
    With --provisional, unfinished work (records awaiting screening, reports awaiting a
    decision) is counted in and every output is marked PROVISIONAL.
    """
    fmt = fmt or (out.suffix.lstrip(".").lower() if out is not None else "csv")
    _check_format(fmt, PRISMA_FORMATS)
    with open_project(db) as store:
        counts = checked_counts(store, provisional=provisional)
    if fmt in ("svg", "png"):
        if out is None:
            raise ConfigError(f"--out: a {fmt} diagram needs a file to write to")
        write_diagram(counts, out, fmt, protect=store)
        console.print(f"Wrote {out}")
    elif fmt == "json":
        _emit(json.dumps(to_json(counts), indent=2) + "\n", out, store)
    else:
        _emit(to_template_csv(counts, template), out, store)


# -- stopping early ---------------------------------------------------------------
TargetOption = Annotated[
    float | None,
    typer.Option(
        "--target", min=0.5, max=0.999, help="Recall the rule must certify (default: the project's, else 0.95)."
    ),
]
ConfidenceOption = Annotated[
    float | None,
    typer.Option(
        "--confidence", min=0.5, max=0.999, help="Confidence of that certificate (default: the project's, else 0.95)."
    ),
]
RuleOption = Annotated[
    str | None,
    typer.Option("--rule", help=f"Stopping rule: {', '.join(RULES)} (default: the project's, else {DEFAULT_RULE})."),
]


def _stop_settings(store: Store, rule: str | None, target: float | None, confidence: float | None) -> dict[str, Any]:
    """The options given, else the project's ``stopping`` setting (set on the dashboard's Progress page)."""
    from ..stops import stop_settings

    saved = stop_settings(store)
    return {
        "rule": rule or saved.rule,
        "target": target if target is not None else saved.target,
        "confidence": confidence if confidence is not None else saved.confidence,
    }


def _verdict_lines(evidence: StageEvidence, verdict: StopVerdict) -> str:
    numbers = (
        f"{verdict.screened:,} of {verdict.pool:,} records screened, {verdict.found:,} included; "
        f"recall ≥ {verdict.recall_lower_bound:.1%} with {verdict.confidence:.0%} confidence, "
        f"estimated {verdict.estimated_recall:.1%}"
    )
    pending = f"; {evidence.pending} screened records still undecided (counted as includes)" if evidence.pending else ""
    return f"{verdict.reason}\n{numbers}{pending}"


@handle_errors
def stop_command(
    db: DbOption,
    reviewer: ReviewerOption,
    stage: StageOption = Stage.TITLE_ABSTRACT,
    target: TargetOption = None,
    confidence: ConfidenceOption = None,
    rule: RuleOption = None,
    force: Annotated[
        bool, typer.Option("--force", help="Stop although the rule does not say so (needs --note; marked forced).")
    ] = False,
    note: Annotated[str | None, typer.Option("--note", help="Why; required with --force.")] = None,
) -> None:
    """End title/abstract screening early when the stopping rule certifies the target recall.

    The records no one has screened are excluded as 'marked as ineligible by automation
    tools' (PRISMA 2020), naming the rule; refused, with the rule's numbers, when it does not
    say stop. Records imported later are open again. 'undo-stop' takes a stop back.
    """
    from ..stops import stop_stage

    with open_project(db) as store:
        chosen = _stop_settings(store, rule, target, confidence)
        result = stop_stage(store, reviewer=reviewer, stage=stage, force=force, note=note, **chosen)
    stop = result.stop
    console.print(f"stop #{stop.id}: {stop.describe()}", highlight=False)
    console.print(result.verdict.reason, highlight=False)
    if result.still_open:
        console.print(
            f"{result.still_open} screened records still need a vote or a resolution before PRISMA adds up",
            highlight=False,
        )


@handle_errors
def undo_stop_command(
    db: DbOption,
    reviewer: ReviewerOption,
    stage: StageOption = Stage.TITLE_ABSTRACT,
    stop: Annotated[
        int | None, typer.Option("--stop", min=1, max=MAX_ID, help="The stop to undo (default: the latest).")
    ] = None,
) -> None:
    """Take back a stop: its automation excludes are undone; records screened since keep their decisions."""
    from ..stops import undo_stop

    with open_project(db) as store:
        info = undo_stop(store, reviewer=reviewer, stage=stage, stop_id=stop)
    console.print(f"stop #{info.id}: {info.note}; {info.records} records open again at {stage}", highlight=False)


@handle_errors
def stops_command(
    db: DbOption,
    stage: StageOption = Stage.TITLE_ABSTRACT,
    target: TargetOption = None,
    confidence: ConfidenceOption = None,
    rule: RuleOption = None,
) -> None:
    """What the stopping rule says now, and every stop of the stage (undone ones marked)."""
    from ..stops import check_verdict, stops

    with open_project(db) as store:
        chosen = _stop_settings(store, rule, target, confidence)
        evidence, verdict = check_verdict(store, stage=stage, **chosen)
        rows = stops(store, stage)
    console.print(_verdict_lines(evidence, verdict), highlight=False)
    for info in rows:
        state = "" if info.active else f" (undone by #{info.undone_by})"
        console.print(f"stop #{info.id}: {info.describe()}{state}", highlight=False)


def register(app: typer.Typer) -> None:
    """Add the screening-decision commands."""
    app.command("stop")(stop_command)
    app.command("undo-stop")(undo_stop_command)
    app.command("stops")(stops_command)
    app.command("decide")(decide_command)
    app.command("undo")(undo_command)
    app.command("conflicts")(conflicts_command)
    app.command("resolve")(resolve_command)
    app.command("history")(history_command)
    app.command("fulltext")(fulltext_command)
    app.command("agreement")(agreement_command)
    app.command("prisma")(prisma_command)
    app.add_typer(reviewers_app, name="reviewers")
    app.add_typer(reasons_app, name="reasons")
    app.add_typer(mode_app, name="mode")
