"""`kiosk ask` and `kiosk search`: ask the city information from the command line.

`ask` runs the same steps the kiosk runs for a visitor, each its own function so speech can
be plugged in on either side: get the question text (typed here; a recognised transcript
later), compose an honest answer (answer / ask back / decline), then show it (and, later,
speak it). `search` is the machine interface for evaluation: ranked ids and scores as JSON,
one query per line with --batch, loading the index once.

Exit status: 0 = answered (or asked back), 1 = nothing fitted the question, 2 = an error
the message explains (missing index, bad config, …).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

from kiosk import KioskError
from kiosk.answer.composer import AnswerComposer
from kiosk.answer.contract import Answer, AnswerKind
from kiosk.cli.exit_codes import ExitCode
from kiosk.config import Settings, load_settings
from kiosk.content.contract import checked_date_text
from kiosk.content.publishing import ensure_index
from kiosk.dialogue.ask import ask
from kiosk.i18n import _
from kiosk.search.contract import Hit
from kiosk.search.index import SearchIndex
from kiosk.search.versions import IndexVersions, open_version


def register(subparsers: argparse._SubParsersAction) -> None:
    ask = subparsers.add_parser(
        "ask", help=_("answer a question from the city information"),
        description=_("Answer one question, as the kiosk would: the best entry with its title "
                      "and source, a question back when unsure, or suggested categories when "
                      "nothing fits."))
    ask.add_argument("question", nargs="?", default="",
                     help=_("the question, in Japanese (kana or kanji)"))
    ask.add_argument("--wav", metavar="FILE",
                     help=_("a spoken question instead (WAV, any rate, mono or stereo): prints "
                            "what was heard and the alternatives, then the answer"))
    ask.add_argument("--playback", metavar="PLAYED.wav",
                     help=_("with --wav: what the kiosk's loudspeaker played during that "
                            "recording (same start, same rate), cancelled as echo by the same "
                            "audio front end the kiosk runs"))
    _add_index_options(ask)
    ask.add_argument("--json", action="store_true",
                     help=_("print the decision and the ranked candidates with scores as JSON"))
    ask.add_argument("--speak", action="store_true",
                     help=_("also say the answer aloud with the kiosk voice"))
    ask.add_argument("--out", metavar="ANSWER.wav",
                     help=_("also write the spoken answer to a WAV file"))
    ask.add_argument("--slow", action="store_true",
                     help=_("with --speak/--out: the slower pace for elderly listeners"))
    ask.set_defaults(func=cmd_ask)

    search = subparsers.add_parser(
        "search", help=_("ranked search results (for evaluation and scripts)"),
        description=_("Print ranked entries for a query. With --batch, read one query per line "
                      "from stdin and write one JSON list per line, in the same order."))
    search.add_argument("query", nargs="?", help=_("the query (omit with --batch)"))
    _add_index_options(search)
    search.add_argument("--json", action="store_true",
                        help=_('print a JSON list of {"id", "title", "score"}'))
    search.add_argument("--batch", action="store_true",
                        help=_("read queries from stdin, one per line; write JSON lines"))
    search.set_defaults(func=cmd_search)


def _add_index_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--index", metavar="DIR",
                        help=_("index folder (default: paths.index_dir from the config; the "
                               "bundled content is indexed there on first run)"))
    parser.add_argument("--limit", type=int, metavar="N",
                        help=_("how many candidates to consider (default: search.limit)"))


# --------------------------------------------------------------------------- opening


def open_search_index(settings: Settings, index_dir: str | Path | None = None) -> SearchIndex:
    """The index to answer from: the folder given, or the configured one — built from the
    bundled (or configured) content on first run, so a new install answers at once. A
    folder may be a whoosh index itself or an index root with published versions."""
    if index_dir is not None:
        folder = Path(index_dir).expanduser()
        if not folder.exists():
            raise KioskError(
                _("there is no index folder {folder}; check the --index path, or build one "
                  "with `kiosk content import FILE... --index {folder}`").format(folder=folder))
        folder = IndexVersions(folder).current_path() or folder
    else:
        folder = ensure_index(settings)
    try:
        return open_version(folder, settings)
    except KioskError:
        raise
    except Exception as exc:  # whoosh raises its own errors for damaged files
        raise KioskError(
            _("the search index in {folder} is damaged and cannot be read ({reason}); run "
              "`kiosk content rollback`, or import the content again").format(
                folder=folder, reason=exc)) from None


def _limit(args: argparse.Namespace, settings: Settings) -> int:
    limit = settings.search.limit if args.limit is None else args.limit
    if limit < 1:
        raise KioskError(_("--limit must be 1 or more (got {limit})").format(limit=limit))
    return limit


# --------------------------------------------------------------------------- ask


def question_text(args: argparse.Namespace) -> str:
    """Step 1: the question as text (typed; speech input replaces this step)."""
    text = " ".join((args.question or "").split())
    if not text:
        raise KioskError(_('the question is empty; type one, e.g. kiosk ask "住民票がほしい"'))
    return text


def compose_answer(index: SearchIndex, settings: Settings, question: str,
                   limit: int | None = None, alternatives: Sequence[str] = (),
                   confidence: float = 1.0) -> Answer:
    """Step 2: search and decide — answer, ask back, or say nothing fits. `alternatives`
    are a recogniser's other transcripts of a spoken question and `confidence` its own
    (kiosk.dialogue.ask)."""
    composer = AnswerComposer(settings.answer, (), settings.site)
    return ask(index, composer, (question, *alternatives), limit, confidence=confidence)


def _through_frontend(settings: Settings, wav: str, playback: str | None) -> Any:
    """The recording as the kiosk's recogniser would get it: through the same audio front
    end, with what the loudspeaker played as the echo reference."""
    from kiosk.speech.audio import load_wav
    from kiosk.speech.frontend import FrontEnd

    clip = load_wav(wav, max_bytes=settings.audio.max_file_bytes)
    played = load_wav(playback, max_bytes=settings.audio.max_file_bytes) if playback else None
    frontend = FrontEnd.from_settings(settings)
    if frontend.problem and played is None:
        sys.stderr.write(_("note: {problem}").format(problem=frontend.problem) + "\n")
    return frontend.process_recording(clip, played, name=wav)


def cmd_ask(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    wav = getattr(args, "wav", None)
    if wav and args.question:
        raise KioskError(_("give either a typed question or --wav FILE, not both"))
    if getattr(args, "playback", None) and not wav:
        raise KioskError(_("--playback PLAYED.wav goes with --wav MIC.wav (the recording the "
                           "echo is to be removed from)"))
    question = "" if wav else question_text(args)
    heard = None
    with open_search_index(settings, args.index) as index:
        if wav:  # speech in: the recogniser replaces step 1 (see kiosk.speech.recogniser)
            from kiosk.speech.recogniser import (
                describe_transcript,
                transcribe_file,
                vocabulary_from,
            )

            heard = transcribe_file(wav, settings, vocabulary_from(index.entries()),
                                    clip=_through_frontend(settings, wav, args.playback))
            if not args.json:
                sys.stdout.write(describe_transcript(heard))
            answer = compose_answer(index, settings, heard.text, _limit(args, settings),
                                    heard.alternatives, heard.confidence)
            if not args.json and answer.query != heard.text.strip():
                sys.stdout.write(_("答えた聞き取り: {text}  (the content fits it better)").format(
                    text=answer.query) + "\n")
        else:
            answer = compose_answer(index, settings, question, _limit(args, settings))
    if args.json:
        data = answer_as_json(answer)
        if heard is not None:
            data["heard"] = {"text": heard.text, "alternatives": list(heard.alternatives),
                             "confidence": heard.confidence, "engine": heard.engine}
        _write_json(data, sys.stdout)
    else:
        sys.stdout.write(answer_as_text(answer))
    if getattr(args, "speak", False) or getattr(args, "out", None):  # step 4: the voice
        from kiosk.cli.speech import speak_answer

        speak_answer(settings, answer, out=args.out, speak=args.speak, slow=args.slow)
    return ExitCode.PROBLEMS if answer.kind is AnswerKind.NONE else ExitCode.OK


def answer_as_text(answer: Answer) -> str:
    """Step 3: what an operator reads — the answer with its title and source, the question
    back with the candidates, or a plain 'nothing fits' with categories to try."""
    if answer.kind is AnswerKind.NONE:
        lines = ["ごめんなさい。その質問に合う答えは見つかりませんでした。"]
        if answer.suggestions:
            lines.append("次の分野から選んで、もう一度聞いてください：")
            lines += [f"  ・{c}" for c in answer.suggestions]
        return "\n".join(lines) + "\n"
    best = answer.best
    assert best is not None
    if answer.kind is AnswerKind.UNSURE:
        lines = [answer.ask_back, "候補："]
        lines += [f"  {n}. {h.entry.title}  [{h.entry.id}]"
                  for n, h in enumerate(answer.choices, 1)]
        lines += ["", "いちばん近い答え：", *_entry_lines(best)]
        return "\n".join(lines) + "\n"
    return "\n".join(_entry_lines(best)) + "\n"


def _entry_lines(hit: Hit) -> list[str]:
    entry = hit.entry
    lines = [f"【{entry.title}】", entry.body.strip()]
    for label, value in (("住所", entry.address), ("電話", entry.phone), ("時間", entry.hours)):
        if value and value not in entry.body:
            lines.append(f"{label}：{value}")
    if entry.source:
        source = entry.source if entry.source.startswith("出典") else f"出典：{entry.source}"
        lines.append(f"（{source}{'　' + entry.source_url if entry.source_url else ''}）")
    if entry.checked:
        what = "市のページで未確認。" if entry.status == "unverified" else ""
        lines.append(f"（{what}確認日：{checked_date_text(entry)}）")
    return lines


def answer_as_json(answer: Answer) -> dict[str, Any]:
    """The decision and the ranked candidates, for scripts and tests."""
    best = answer.best if answer.kind is not AnswerKind.NONE else None
    return {
        "query": answer.query,
        "kind": answer.kind.value,
        "ask_back": answer.ask_back,
        "answer": None if best is None else {
            "id": best.entry.id,
            "title": best.entry.title,
            "body": best.entry.body,
            "spoken": best.entry.spoken,
            "category": best.entry.category,
            "source": best.entry.source,
            "updated": best.entry.updated,
            "source_url": best.entry.source_url,
            "checked": best.entry.checked,
            "status": best.entry.status,
        },
        "candidates": [
            {"id": h.entry.id, "title": h.entry.title, "category": h.entry.category,
             "score": round(h.score, 4), "confidence": round(h.confidence, 4)}
            for h in answer.candidates
        ],
        "suggestions": list(answer.suggestions),
        "nearby": None if answer.nearby is None else {
            "from": {"name": answer.nearby.origin.name, "kind": answer.nearby.origin.kind,
                     "lat": answer.nearby.origin.lat, "lon": answer.nearby.origin.lon},
            "kind": answer.nearby.kind,
            "hazard": answer.nearby.hazard,
            "sites": [{"id": n.entry_id, "name": n.name, "town": n.town,
                       "metres": round(n.distance_m)} for n in answer.nearby.sites],
        },
    }


# --------------------------------------------------------------------------- search


def hits_as_json(hits: list[Hit]) -> list[dict[str, Any]]:
    return [{"id": h.entry.id, "title": h.entry.title, "score": round(h.score, 4)}
            for h in hits]


def cmd_search(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    if args.batch and args.query:
        raise KioskError(_("give either a query or --batch (queries on stdin), not both"))
    if not args.batch and not (args.query or "").strip():
        raise KioskError(_('no query given; e.g. kiosk search "ごみの日", or use --batch '
                           "to read queries from stdin"))
    limit = _limit(args, settings)
    with open_search_index(settings, args.index) as index:
        if args.batch:
            _search_batch(index, limit, _stdin_lines(), sys.stdout)
            return 0
        hits = index.search(" ".join(args.query.split()), limit)
    if args.json:
        _write_json(hits_as_json(hits), sys.stdout)
    else:
        for h in hits:
            sys.stdout.write(f"{h.score:9.3f}  {h.confidence:.2f}  {h.entry.id}  {h.entry.title}\n")
    return 0


def _stdin_lines():
    stream = sys.stdin.buffer if hasattr(sys.stdin, "buffer") else None
    if stream is None:
        yield from sys.stdin
        return
    for n, raw in enumerate(stream, 1):
        try:
            yield raw.decode("utf-8-sig" if n == 1 else "utf-8")
        except UnicodeDecodeError:
            raise KioskError(_("stdin line {n} is not UTF-8 text; convert the query file to "
                               "UTF-8 (e.g. iconv -f SHIFT_JIS -t UTF-8)").format(n=n)) from None


def _search_batch(index: SearchIndex, limit: int, lines, out: TextIO) -> None:
    """One JSON list per input line, in order; an empty line gives []."""
    for line in lines:
        query = " ".join(line.split())
        hits = index.search(query, limit) if query else []
        out.write(json.dumps(hits_as_json(hits), ensure_ascii=False) + "\n")
        out.flush()


def _write_json(data: Any, out: TextIO) -> None:
    out.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")
