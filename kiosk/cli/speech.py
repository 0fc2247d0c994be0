"""`kiosk say`: hear (or save) any text exactly as the kiosk would say it, check readings, list
voices and show the voice credits. Also the speak/save step `kiosk ask --speak/--out` uses."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

from kiosk import KioskError
from kiosk.config import Settings, load_settings
from kiosk.i18n import _

if TYPE_CHECKING:
    from kiosk.answer.contract import Answer

#: Credits the mei voice's CC-BY 3.0 licence requires wherever the voice is used.
CREDITS = """\
Voice / 音声合成
  Voice "Mei" (mei_normal) — HTS voice by the MMDAgent Project Team,
    Copyright (c) 2009-2013 Nagoya Institute of Technology, Department of Computer Science.
    Licensed under Creative Commons Attribution 3.0 (CC BY 3.0).
    音声「メイ」© 名古屋工業大学 (Nagoya Institute of Technology) CC BY 3.0
  Open JTalk — HMM-based Japanese text-to-speech, Copyright (c) 2008-2016
    Nagoya Institute of Technology, Department of Computer Science (Modified BSD licence).
  NAIST Japanese Dictionary — Copyright (c) 2009 Nara Institute of Science and Technology
    (Modified BSD licence).
  pyopenjtalk / pyopenjtalk-plus — Ryuichi Yamamoto and contributors (MIT licence).
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    say = subparsers.add_parser(
        "say", help=_("speak text with the kiosk voice (or save it as WAV)"),
        description=_("Say Japanese text the way the kiosk says answers: times, dates, phone "
                      "numbers and place names are made speakable first. Plays through the "
                      "configured speaker, or writes a WAV file with --out."))
    say.add_argument("text", nargs="?", help=_('the text, e.g. "受付は8:30からです" ("-" = stdin)'))
    say.add_argument("--out", metavar="FILE.wav", help=_("write a WAV file instead of playing"))
    say.add_argument("--rate", type=float, metavar="MORAE_PER_S",
                     help=_("speaking pace in morae per second (default: [voice] rate, 8)"))
    say.add_argument("--slow", action="store_true",
                     help=_("the slower pace for elderly listeners ([voice] slow_rate, 6)"))
    say.add_argument("--volume", type=float, metavar="0-1",
                     help=_("loudness of the voice, 0.0-1.0 (default: [voice] volume)"))
    say.add_argument("--voice", metavar="NAME", help=_("voice name or .htsvoice file"))
    say.add_argument("--raw", action="store_true",
                     help=_("skip the speakable-text step (read the text exactly as given)"))
    say.add_argument("--reading", action="store_true",
                     help=_("print what would be said and its kana reading; no audio"))
    say.add_argument("--list-voices", action="store_true", help=_("list the voices installed"))
    say.add_argument("--about", action="store_true", help=_("show voice credits and licences"))
    say.set_defaults(func=cmd_say)


def cmd_say(args: argparse.Namespace) -> int:
    if args.about:
        sys.stdout.write(CREDITS)
        return 0
    settings = load_settings(args.config)
    if args.list_voices:
        from kiosk.voice.openjtalk import find_voice_files

        for v in find_voice_files(settings.models_dir):
            where = _("bundled") if v.bundled else str(v.path)
            current = "  " + _("(in use)") if v.id == (args.voice or settings.voice.voice) else ""
            sys.stdout.write(f"{v.id}\t{where}{current}\n")
        return 0
    text = _text(args)
    settings = _with_overrides(settings, args)
    spoken = text if args.raw else speakable_text(settings, text)
    if args.reading:
        import pyopenjtalk

        for line in spoken.splitlines():
            sys.stdout.write(f"{line}\n  → {pyopenjtalk.g2p(line, kana=True)}\n")
        return 0
    say_text(settings, spoken, out=args.out, slow=args.slow)
    return 0


def _text(args: argparse.Namespace) -> str:
    text = sys.stdin.read() if args.text == "-" else (args.text or "")
    if not text.strip():
        raise KioskError(_('nothing to say; give the text, e.g. kiosk say "受付は8:30からです"'))
    return text


def _with_overrides(settings: Settings, args: argparse.Namespace) -> Settings:
    from dataclasses import replace

    changes: dict[str, object] = {}
    if args.rate is not None:
        if not 2.0 <= args.rate <= 15.0:
            raise KioskError(_("--rate {rate} is outside 2-15 morae per second; 8 is the "
                               "normal pace, 6 is slow").format(rate=args.rate))
        changes["rate"] = args.rate
    if args.volume is not None:
        if not 0.0 <= args.volume <= 1.0:
            raise KioskError(_("--volume {volume} must be between 0.0 and 1.0")
                             .format(volume=args.volume))
        changes["volume"] = args.volume
    if args.voice:
        changes["voice"] = args.voice
    if not changes:
        return settings
    return replace(settings, voice=replace(settings.voice, **changes))


def speakable_text(settings: Settings, text: str) -> str:
    from kiosk.voice.speakable import ReadingDictionary, Speakable

    return Speakable(settings.voice, ReadingDictionary.for_settings(settings)).normalise(text)


def speak_answer(settings: Settings, answer: Answer, *, out: str | Path | None = None,
                 speak: bool = False, slow: bool = False) -> None:
    """`kiosk ask --speak/--out`: the answer as the kiosk would say it."""
    from kiosk.voice.speakable import ReadingDictionary, Speakable

    spoken = Speakable(settings.voice, ReadingDictionary.for_settings(settings),
                        review_months=settings.content.review_months).for_answer(answer)
    if out:
        say_text(settings, spoken, out=out, slow=slow)
    if speak:
        say_text(settings, spoken, slow=slow)


def say_text(settings: Settings, spoken: str, *, out: str | Path | None = None,
             slow: bool = False) -> Path | None:
    """Save speakable text to a WAV file, or play it through the configured speaker."""
    from kiosk.voice.synthesis import Voice

    voice = Voice(settings)
    if out:
        path = voice.save(spoken, out, slow=slow)
        sys.stderr.write(_("wrote {path}").format(path=path) + "\n")
        return path
    from kiosk.speech.audio import Speaker

    voice.speak(spoken, Speaker.from_settings(settings), threading.Event(), slow=slow)
    return None
