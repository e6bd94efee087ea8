"""API keys with roles, kept hashed in a JSON file.

A key is shown once, when it is created: ``ctg_<id>_<secret>``, where ``id`` is 8 hex digits
and ``secret`` 256 random bits. The file keeps, for each key, its id, name, role, creation
time and the SHA-256 digest of the secret, never the secret. A random 256-bit secret cannot be
guessed from its digest, so a fast hash is the right one here (a slow password hash would only
slow down every request); digests are compared in constant time.

Roles are ordered: ``viewer`` (queries) < ``analyst`` (scenario mutations) < ``admin``
(everything, including key administration).

The file is written atomically with mode 0600 and re-read when it changes, so keys created or
revoked while a server runs take effect on its next request.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import tempfile
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from graph.errors import ContagionError

__all__ = ["ApiKey", "KeyFileError", "KeyStore", "Role"]

_TOKEN = re.compile(r"^ctg_([0-9a-f]{8})_([A-Za-z0-9_-]{43})$")
_VERSION = 1


class KeyFileError(ContagionError, ValueError):
    """An API key file that cannot be read, or a key operation that cannot be done."""


class Role(StrEnum):
    """What a key may do; each role includes the ones before it."""

    VIEWER = "viewer"
    ANALYST = "analyst"
    ADMIN = "admin"

    @property
    def rank(self) -> int:
        return list(Role).index(self)

    def allows(self, needed: Role) -> bool:
        return self.rank >= needed.rank


@dataclass(frozen=True)
class ApiKey:
    """A stored key: everything but its secret."""

    id: str
    name: str
    role: Role
    created: datetime
    digest: str

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "role": str(self.role),
                "created": self.created.isoformat(), "sha256": self.digest}


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class KeyStore:
    """The keys of one file (``path``); an absent file holds no keys."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._keys: dict[str, ApiKey] = {}
        self._refresh()

    # -- reading
    def _refresh(self) -> None:
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._keys = None, {}
            return
        stamp = (st.st_mtime_ns, st.st_size)
        if stamp == self._stamp:
            return
        with self._lock:
            self._keys = self._read()
            self._stamp = stamp

    def _read(self) -> dict[str, ApiKey]:
        try:
            doc = json.loads(self.path.read_text("utf-8"))
        except (OSError, json.JSONDecodeError) as e:
            raise KeyFileError(f"{self.path}: not an API key file ({e})") from None
        if not isinstance(doc, dict) or doc.get("version") != _VERSION:
            raise KeyFileError(f"{self.path}: expected an API key file of version {_VERSION} "
                               f"(got {str(doc)[:60]!r})")
        keys = {}
        for i, k in enumerate(doc.get("keys", [])):
            try:
                key = ApiKey(k["id"], k["name"], Role(k["role"]),
                             datetime.fromisoformat(k["created"]), k["sha256"])
            except (KeyError, ValueError, TypeError) as e:
                raise KeyFileError(f"{self.path}: key {i} is malformed ({e!r})") from None
            keys[key.id] = key
        return keys

    def list_keys(self) -> list[ApiKey]:
        """Every key, oldest first."""
        self._refresh()
        return sorted(self._keys.values(), key=lambda k: (k.created, k.id))

    def authenticate(self, token: str) -> ApiKey | None:
        """The key ``token`` is, or None if it is malformed, unknown or revoked."""
        m = _TOKEN.match(token)
        if m is None:
            return None
        self._refresh()
        key = self._keys.get(m.group(1))
        if key is None or not hmac.compare_digest(_digest(m.group(2)), key.digest):
            return None
        return key

    # -- writing
    def _write(self, keys: list[ApiKey]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        doc = {"version": _VERSION, "keys": [k.as_dict() for k in keys]}
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
        try:
            os.fchmod(fd, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(doc, f, indent=2)
                f.write("\n")
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._stamp = None
        self._refresh()

    def create(self, name: str, role: Role | str) -> tuple[ApiKey, str]:
        """Add a key; returns it and its token (the only time the secret is seen)."""
        try:
            role = Role(role)
        except ValueError:
            raise KeyFileError(f"role must be one of {', '.join(Role)} (got {role!r})") from None
        if not name.strip() or len(name) > 100:
            raise KeyFileError(f"name must be 1 to 100 characters (got {name!r})")
        existing = self.list_keys()
        taken = {k.id for k in existing}
        key_id = secrets.token_hex(4)
        while key_id in taken:
            key_id = secrets.token_hex(4)
        secret = secrets.token_urlsafe(32)
        key = ApiKey(key_id, name.strip(), role, datetime.now(UTC).replace(microsecond=0),
                     _digest(secret))
        self._write([*existing, key])
        return key, f"ctg_{key_id}_{secret}"

    def revoke(self, key_id: str) -> ApiKey:
        """Remove key ``key_id``; returns it."""
        existing = self.list_keys()
        found = [k for k in existing if k.id == key_id]
        if not found:
            raise KeyFileError(f"no key with id {key_id!r} in {self.path}")
        self._write([k for k in existing if k.id != key_id])
        return found[0]
