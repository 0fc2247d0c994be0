"""`kiosk run` (the kiosk itself, as a service) and `kiosk report unanswered`.

`run` wires the real stages into the conversation loop: live index (imports swap in without
a restart), whisper/vosk recogniser (loaded in the background: the screen works at once),
voice, speaker (+ headphones), a reconnecting microphone and the endpointer; then serves the
screen and /healthz on loopback. `--headless` serves only /healthz and takes keys from the
terminal, for a box with no display. With [bundle] pull_url and poll_minutes set it also polls
for signed content bundles, and with [admin] with_kiosk it serves the staff page. SIGTERM
(systemd stop) ends it cleanly.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
from typing import Any

from kiosk import KioskError
from kiosk.cli.exit_codes import ExitCode
from kiosk.config import Settings, load_settings
from kiosk.dialogue.conversation import KEYMAP, Command, DeviceChanged, Key, Press
from kiosk.dialogue.eventlog import QueryLog, log_dir, setup_logging
from kiosk.dialogue.runner import MICROPHONE_DEVICE, Kiosk, make_kiosk
from kiosk.i18n import _

log = logging.getLogger(__name__)

#: Terminal escape sequences of the keys the kiosk uses, as KeyboardEvent.key names.
_TERMINAL_KEYS = {"\r": "Enter", "\n": "Enter", "\x1b": "Escape", "\x1b[A": "ArrowUp",
                  "\x1b[B": "ArrowDown"}


def register(subparsers: argparse._SubParsersAction) -> None:
    run = subparsers.add_parser(
        "run", help=_("run the kiosk (screen, voice, microphone) until stopped"),
        description=_("Run the kiosk: the conversation loop with the microphone, the voice and "
                      "the visitor screen on loopback (open the printed address full-screen). "
                      "/healthz reports model, devices, index version, uptime and last error."))
    run.add_argument("--headless", action="store_true",
                     help=_("audio only, for a box with no display: no screen page; keys are "
                            "read from this terminal (Space/Enter = the big button)"))
    run.add_argument("--port", type=int, help=_("port of the screen and /healthz "
                                                "(default: [screen] port)"))
    run.add_argument("--no-microphone", action="store_true",
                     help=_("touch and typing only (no speech recognition is loaded)"))
    run.set_defaults(func=cmd_run)

    report = subparsers.add_parser(
        "report", help=_("reports for staff from the opt-in query log"),
        description=_("Reports from the query log ([logging] query_log = true)."))
    rsub = report.add_subparsers(dest="report", metavar="REPORT")
    un = rsub.add_parser("unanswered", help=_("questions that found nothing, most frequent first"),
                         description=_("List the questions visitors asked that found nothing, "
                                       "most frequent first, so staff know what content to add."))
    un.add_argument("--limit", type=int, default=50, help=_("how many to list (default 50)"))
    un.add_argument("--json", action="store_true", help=_("print JSON [[question, count], …]"))
    un.set_defaults(func=cmd_report_unanswered)
    report.set_defaults(func=lambda args: (report.print_help(), ExitCode.BAD_INPUT)[1])


# --- kiosk report unanswered ------------------------------------------------------------------

def cmd_report_unanswered(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    if args.limit is not None and args.limit < 1:
        raise KioskError(_("--limit must be 1 or more (got {limit})").format(limit=args.limit))
    qlog = QueryLog(settings)
    rows = qlog.unanswered(args.limit)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False))
        return 0
    if not settings.logging.query_log and not rows:
        print(_("The query log is off, so there is nothing to report. To collect questions "
                "(recognised text only, never audio), set [logging] query_log = true in the "
                "config; they are kept {days} days.").format(days=settings.logging.query_log_days))
        return 0
    if not rows:
        print(_("No unanswered questions in the last {days} days (log folder: {folder}).")
              .format(days=settings.logging.query_log_days, folder=qlog.folder))
        return 0
    width = max(len(str(n)) for _question, n in rows)
    print(_("Questions that found nothing (last {days} days), most frequent first:")
          .format(days=settings.logging.query_log_days))
    for question, count in rows:
        print(f"{count:>{width}}  {question}")
    return 0


# --- kiosk run -------------------------------------------------------------------------------

def event_for_key(name: str) -> Any:
    """The loop event for a key name (KeyboardEvent.key), or None for other keys."""
    action = KEYMAP.get(name)
    if action is None:
        return None
    return Press() if action == "press" else Key(Command(action))


def _read_terminal_keys(kiosk: Kiosk, stop: threading.Event) -> None:
    """Keys typed in the terminal (or sent by a USB button acting as a keyboard on the
    console), for --headless."""
    import select
    import termios
    import tty

    fd = sys.stdin.fileno()
    old = termios.tcgetattr(fd)
    tty.setcbreak(fd)
    try:
        while not stop.is_set():
            ready, _unused, _errors = select.select([fd], [], [], 0.2)
            if not ready:
                continue
            data = os.read(fd, 16).decode("utf-8", errors="ignore")
            keys = [_TERMINAL_KEYS[data]] if data in _TERMINAL_KEYS else \
                [_TERMINAL_KEYS.get(c, c) for c in data]
            for name in keys:
                event = event_for_key(name)
                if event is not None:
                    kiosk.post(event)
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, old)


class KioskService:
    """Everything `kiosk run` starts, so it can also be stopped in one place."""

    def __init__(self, settings: Settings, *, headless: bool = False, port: int | None = None,
                 microphone: bool = True):
        from kiosk.content.publishing import ensure_index
        from kiosk.search.versions import LiveIndex
        from kiosk.speech.audio import DeviceMonitor
        from kiosk.web.health import Health, HealthHandler, make_server

        self.settings = settings
        self.headless = headless
        self.stop_event = threading.Event()
        ensure_index(settings)
        self.searcher = LiveIndex(settings.index_dir, settings)
        self.kiosk = make_kiosk(settings, searcher=self.searcher,
                                microphone=MICROPHONE_DEVICE if microphone else None)
        from kiosk.memory import HeapTrimmer

        self.heap_trimmer = HeapTrimmer()  # a turn's freed buffers go back at each idle
        self.kiosk.subscribe(self.heap_trimmer.on_view)
        self.engine = ""
        self.model_error = ""
        self._want_microphone = microphone
        self.device_monitor = DeviceMonitor(settings, settings.audio.probe_seconds)  # probes now
        self.bundle_poller: Any = None
        self.health = Health(
            model_loaded=lambda: self.kiosk.recogniser is not None,
            engine=lambda: self.engine or self.model_error,
            devices=lambda: {
                "microphone": self.kiosk.machine.mic_ok
                and self.device_monitor.present("microphone"),
                "speaker": self.kiosk.machine.speaker_ok
                and self.device_monitor.present("speaker")},
            index_version=lambda: self.searcher.version or "",
            loop=self.kiosk.health,
            bundle_poller=lambda: self.bundle_poller.status() if self.bundle_poller else None,
            problems=self.problems)
        if headless:
            self.server = make_server(HealthHandler, settings.screen.host,
                                      settings.screen.port if port is None else port,
                                      health=self.health,
                                      timeout=settings.screen.socket_timeout_seconds)
        else:
            from kiosk.web.screen import make_screen_server

            self.server = make_screen_server(self.kiosk, self.health, settings, port)
        self.browser: subprocess.Popen[bytes] | None = None
        self.staff_desk: Any = None

    def problems(self) -> list[str]:
        """What /healthz lists for an operator to fix: missing devices, an index version
        that cannot be reopened, an audit log that cannot be written."""
        from kiosk.content.audit import AuditLog

        found = [p for p in self.device_monitor.problems()
                 if self._want_microphone or not p.startswith("microphone")]
        if self.searcher.problem:
            found.append(self.searcher.problem)
        audit = AuditLog(self.settings.state_dir).problem()
        if audit:
            found.append(audit)
        return found

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/"

    def _load_recogniser(self) -> None:
        """Loading whisper takes seconds; the screen and typing work meanwhile."""
        from kiosk.speech.recogniser import open_recogniser, vocabulary_from

        try:
            recogniser = open_recogniser(self.settings,
                                         vocabulary=vocabulary_from(self.searcher.entries()))
        except Exception as exc:  # ModelError and the like: the kiosk stays usable by touch
            self.model_error = _("no speech recognition: {reason}").format(reason=exc)
            self.health.error(self.model_error)
            log.error("%s", self.model_error)
            self.kiosk.post(DeviceChanged("microphone", False, self.model_error))
            return
        self.engine = getattr(recogniser, "name", type(recogniser).__name__)
        self.kiosk.recogniser = recogniser
        self.heap_trimmer.trim_soon()  # what loading the model freed
        log.info(_("speech recognition ready (%s)"), self.engine)

    def start(self) -> None:
        threading.Thread(target=self.server.serve_forever, name="kiosk-http", daemon=True).start()
        threading.Thread(target=self.device_monitor.run, args=(self.stop_event,),
                         name="kiosk-devices", daemon=True).start()
        self.kiosk.start()
        if self._want_microphone:
            threading.Thread(target=self._load_recogniser, name="kiosk-model", daemon=True).start()
        else:
            self.kiosk.post(DeviceChanged("microphone", False,
                                          _("started without a microphone")))
        command = self.settings.screen.browser_command
        if command and not self.headless:
            try:
                self.browser = subprocess.Popen([*shlex.split(command), self.url])
            except OSError as exc:
                raise KioskError(_("cannot start the screen browser ({reason}); check [screen] "
                                   "browser_command = {command!r}").format(
                    reason=exc, command=command)) from None
        if self.settings.admin.with_kiosk:
            from kiosk.staff.accounts import StaffPasswords
            from kiosk.staff.desk import serve_in_background

            self.staff_desk = serve_in_background(self.settings)
            host, port = self.staff_desk.server_address[:2]
            log.info(_("staff page at http://%s:%s/"), host, port)
            if not StaffPasswords(self.settings.state_dir).users():
                log.warning(_("no staff password is set, so nobody can sign in to the staff "
                              "page: set one with `kiosk admin set-password --user NAME`"))
        bundle = self.settings.bundle
        if bundle.pull_url and bundle.poll_minutes > 0:
            from kiosk.content.bundles import BundlePoller

            self.bundle_poller = BundlePoller(self.settings).start()
        if self.headless and sys.stdin.isatty():
            threading.Thread(target=_read_terminal_keys, args=(self.kiosk, self.stop_event),
                             name="kiosk-keys", daemon=True).start()

    def stop(self) -> None:
        self.stop_event.set()
        if self.bundle_poller is not None:
            self.bundle_poller.stop()
        if self.staff_desk is not None:
            self.staff_desk.shutdown()
            self.staff_desk.server_close()
        self.kiosk.stop()
        self.server.shutdown()
        self.server.server_close()
        if self.browser is not None:
            self.browser.terminate()
        self.searcher.close()
        self.heap_trimmer.close()


def cmd_run(args: argparse.Namespace) -> int:
    from kiosk.memory import limit_malloc

    limit_malloc()  # before any thread: two malloc arenas, not one per thread (kiosk.memory)
    settings = load_settings(args.config)
    logfile = setup_logging(settings)
    service = KioskService(settings, headless=args.headless, port=args.port,
                           microphone=not args.no_microphone)
    signal.signal(signal.SIGTERM, lambda *_: service.stop_event.set())
    service.start()
    where = "" if args.headless else _("screen at {url}, ").format(url=service.url)
    print(_("kiosk running: {where}health at {url}healthz; logs in {logs}. Stop with Ctrl+C.")
          .format(where=where, url=service.url, logs=logfile or log_dir(settings)), flush=True)
    if args.headless:
        print(_("Keys: Space/Enter = the big button, r = repeat, s = slower, f = faster, "
                "n = next, e = end, +/- = volume, h = headphones."), flush=True)
    try:
        service.stop_event.wait()
    except KeyboardInterrupt:
        pass
    finally:
        service.stop()
    return 0
