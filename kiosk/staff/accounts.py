"""Who may use the staff desk: passwords (scrypt hashes), sign-in back-off per name and
address, sessions and their one-time sign-in forms. Kept apart from the pages so the rules
that keep staff safe can be read, and tested, on their own."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import string
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kiosk import KioskError
from kiosk.i18n import _

PASSWORD_FILE = "staff-passwords.json"
SESSION_COOKIE = "kiosk_staff"
PRESESSION_COOKIE = "kiosk_signin"
MIN_PASSWORD_CHARS = 10
# scrypt cost: ~50 ms and 16 MiB per check on the kiosk's small CPU; slows guessing offline.
_SCRYPT = {"n": 2**14, "r": 8, "p": 1, "dklen": 32}


# ------------------------------------------------------------------------------ sign-in


class StaffPasswords:
    """Staff names with scrypt password hashes, in a 0600 file under the state folder."""

    def __init__(self, state_dir: Path):
        self.path = Path(state_dir) / PASSWORD_FILE
        # Checked for unknown names too, so timing does not tell which names exist.
        self._dummy = self._hash("not-a-password", b"0" * 16)

    @staticmethod
    def _hash(password: str, salt: bytes) -> bytes:
        return hashlib.scrypt(password.encode("utf-8"), salt=salt, maxmem=64 * 1024 * 1024,
                              **_SCRYPT)

    def _load(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise KioskError(
                _("the staff password file {file} is unreadable ({reason}); set the passwords "
                  "again with `kiosk admin set-password --user NAME`").format(
                    file=self.path, reason=exc)) from None
        return data.get("users", {}) if isinstance(data, dict) else {}

    def users(self) -> list[str]:
        return sorted(self._load())

    def set(self, user: str, password: str) -> None:
        user = user.strip()
        if not user or len(user) > 64 or any(c.isspace() or not c.isprintable() for c in user):
            raise KioskError(
                _("the staff name must be 1–64 characters without spaces (for example: tanaka)"))
        if len(password) < MIN_PASSWORD_CHARS:
            raise KioskError(
                _("the password is too short: use at least {n} characters")
                .format(n=MIN_PASSWORD_CHARS))
        weak = trivial_password(user, password)
        if weak:
            raise KioskError(_("the password is too easy to guess ({why}); use a few words "
                               "only you would put together, e.g. a short sentence").format(why=weak))
        users = self._load()
        salt = secrets.token_bytes(16)
        users[user] = {
            "scrypt": "n={n},r={r},p={p}".format(**_SCRYPT),
            "salt": base64.b64encode(salt).decode(),
            "hash": base64.b64encode(self._hash(password, salt)).decode(),
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"users": users}, fh, indent=1, ensure_ascii=False)
        os.replace(tmp, self.path)

    def stamp(self, user: str) -> str:
        """Changes whenever the user's password is set: a session made under an older
        password is no longer valid. "" when the user (or the file) is gone."""
        try:
            record = self._load().get(user)
        except KioskError:
            return ""
        return str(record.get("salt", "")) if isinstance(record, dict) else ""

    def check(self, user: str, password: str) -> bool:
        record = self._load().get(user)
        try:
            salt = base64.b64decode(record["salt"]) if record else b"0" * 16
            expected = base64.b64decode(record["hash"]) if record else self._dummy
        except (KeyError, ValueError, TypeError):
            return False
        ok = hmac.compare_digest(self._hash(password, salt), expected)
        return ok and record is not None


_RUNS = ("01234567890123456789", "abcdefghijklmnopqrstuvwxyz", "qwertyuiopasdfghjklzxcvbnm",
         "いろはにほへとちりぬるをわかよたれそつねならむ")
_COMMON = ("password", "passw0rd", "pass", "qwerty", "letmein", "admin", "administrator",
           "kiosk", "atsugi", "welcome", "staff", "secret", "changeme")


def trivial_password(user: str, password: str) -> str:
    """Why a password is trivial to guess ("" = it is not): one repeated character, the
    staff name, a run of keys or digits, or a common word with digits around it."""
    low = password.casefold()
    if len(set(low)) <= 2:
        return _("it repeats one or two characters")
    if user.strip() and user.strip().casefold() in low:
        return _("it contains the staff name")
    if any(low in run or low in run[::-1] for run in _RUNS):
        return _("it is a run of keys, letters or digits")
    if low.strip(string.digits + string.punctuation + " ") in _COMMON:
        return _("it is a common password")
    return ""


@dataclass
class _Tries:
    failures: int = 0
    last: float = 0.0
    busy: bool = False  # a password for this key is being checked right now


@dataclass(frozen=True)
class SignInAttempt:
    """A reserved sign-in check; hand it back to `SignInLimiter.finish`."""

    keys: tuple[str, ...]


class SignInLimiter:
    """Wrong passwords slow sign-in down per staff name and per address: after
    `max_failures` wrong ones, each next check must wait 2, 4, 8 … seconds after the last
    failure (at most `longest_wait` seconds, after which the count wears off). It is a
    back-off, not a lockout: once the wait is over the right password is checked and
    accepted. Every check is reserved before the password is looked at and only one check
    per name and address runs at a time, so parallel guesses cannot all be checked. An
    address may fail ADDRESS_FACTOR times as often as a name (on a kiosk every local
    client is 127.0.0.1, so guessing for one name must not hold up the others)."""

    ADDRESS_FACTOR = 4
    MAX_KEYS = 10_000

    def __init__(self, max_failures: int, longest_wait: float, clock=time.monotonic):
        self.max_failures = max(1, max_failures)
        self.longest = max(1.0, float(longest_wait))
        self.clock = clock
        self._tries: dict[str, _Tries] = {}
        self._lock = threading.Lock()

    def _wait(self, key: str, now: float) -> float:
        tries = self._tries.get(key)
        if tries is None:
            return 0.0
        if tries.busy:
            return 1.0
        if now - tries.last >= self.longest:
            tries.failures = 0  # worn off
        allowed = self.max_failures * (self.ADDRESS_FACTOR if key.startswith("address:") else 1)
        over = tries.failures - allowed
        if over < 0:
            return 0.0
        return max(0.0, tries.last + min(self.longest, 2.0 ** (over + 1)) - now)

    def reserve(self, user: str, address: str) -> tuple[int, SignInAttempt | None]:
        """(0, attempt) when the password may be checked now; else (seconds to wait, None)."""
        keys = (f"user:{user.casefold()[:64]}", f"address:{address}")
        with self._lock:
            now = self.clock()
            wait = max(self._wait(k, now) for k in keys)
            if wait > 0:
                return max(1, int(wait + 0.999)), None
            if len(self._tries) > self.MAX_KEYS:  # many made-up names: forget worn-off ones
                for k, t in list(self._tries.items()):
                    if not t.busy and now - t.last >= self.longest:
                        del self._tries[k]
            for k in keys:
                self._tries.setdefault(k, _Tries()).busy = True
            return 0, SignInAttempt(keys)

    def clear(self) -> None:
        """Forget every failure (as a restart of the desk does)."""
        with self._lock:
            self._tries = {k: t for k, t in self._tries.items() if t.busy}

    def finish(self, attempt: SignInAttempt | None, ok: bool) -> None:
        if attempt is None:
            return
        with self._lock:
            now = self.clock()
            for k in attempt.keys:
                tries = self._tries.setdefault(k, _Tries())
                tries.busy = False
                if ok:
                    del self._tries[k]
                else:
                    tries.failures += 1
                    tries.last = now


@dataclass
class Session:
    token: str
    user: str
    csrf: str
    last_seen: float
    stamp: str = ""  # StaffPasswords.stamp when signed in: a new password ends the session
    draft: Any = None  # the upload being previewed (a Draft), at most one per session
    notice: str = ""  # one-time message shown on the next page


class SignInForms:
    """Tokens of the sign-in forms this desk handed out, each good for one POST within
    `lifetime` seconds: a POST to /login with any other token is refused before its body
    is read."""

    MAX_FORMS = 1000

    def __init__(self, lifetime: float = 1800.0, clock=time.monotonic):
        self.lifetime = lifetime
        self.clock = clock
        self._tokens: dict[str, float] = {}
        self._lock = threading.Lock()

    def issue(self) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            now = self.clock()
            for t, issued in list(self._tokens.items()):
                if now - issued > self.lifetime:
                    del self._tokens[t]
            while len(self._tokens) >= self.MAX_FORMS:
                del self._tokens[next(iter(self._tokens))]  # the oldest
            self._tokens[token] = now
        return token

    def known(self, token: str | None) -> bool:
        with self._lock:
            issued = self._tokens.get(token or "")
            return issued is not None and self.clock() - issued <= self.lifetime

    def take(self, token: str) -> bool:
        """Use a token up; False when it was unknown, expired or used already."""
        with self._lock:
            issued = self._tokens.pop(token, None)
            return issued is not None and self.clock() - issued <= self.lifetime


class Sessions:
    """Signed-in sessions, in memory only: restarting the desk signs everyone out."""

    def __init__(self, idle_seconds: float, clock=time.monotonic):
        self.idle = idle_seconds
        self.clock = clock
        self._items: dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self, user: str, stamp: str = "") -> Session:
        s = Session(secrets.token_urlsafe(32), user, secrets.token_urlsafe(32), self.clock(),
                    stamp)
        with self._lock:
            self._expire()
            self._items[s.token] = s
        return s

    def get(self, token: str | None) -> Session | None:
        if not token:
            return None
        with self._lock:
            self._expire()
            s = self._items.get(token)
            if s:
                s.last_seen = self.clock()
            return s

    def drop(self, token: str) -> None:
        with self._lock:
            s = self._items.pop(token, None)
        if s and s.draft:
            s.draft.close()

    def clear(self) -> None:
        with self._lock:
            items, self._items = list(self._items.values()), {}
        for s in items:
            if s.draft:
                s.draft.close()

    def _expire(self) -> None:
        now = self.clock()
        for token, s in list(self._items.items()):
            if now - s.last_seen > self.idle:
                del self._items[token]
                if s.draft:
                    s.draft.close()


