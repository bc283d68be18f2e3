"""Content hashes: of files, of bytes, of parameters, and of our own code (the code version)."""

from __future__ import annotations

import hashlib
import inspect
import json
from pathlib import Path
from types import ModuleType
from typing import Any


def bytes_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def digest(*parts: Any) -> str:
    """A stable hash of JSON-able parts (parameters, other hashes)."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def code_version(*modules: ModuleType) -> str:
    """Hash of the whole source of the modules whose code shapes a cached output.

    Whole modules, not single functions: a helper changed next to a task changes its outputs too.
    """
    return digest(*(inspect.getsource(module) for module in modules))
