"""The runtime's one way into onnxruntime, with its telemetry off.

Why this module exists: onnxruntime 1.32's Linux/macOS wheels start a telemetry client (Microsoft 1DS)
while `import onnxruntime` loads its native module. It writes a device id and an event database under
`$XDG_CACHE_HOME` or `~/.cache/Microsoft/DeveloperTools/.onnxruntime/`, prints a warning where that folder
is not writable, and a process that lives longer than about 9 s sends DNS look-ups for its upload host.
Measured on 1.32.0 under strace with a temporary `$HOME` (import, one session, 14 s alive):

- `ORT_DISABLE_TELEMETRY=1` in the environment *before* `import onnxruntime`: no file, no socket;
- the same variable set after the import, or `onnxruntime.disable_telemetry_events()` before the first
  session: the files are already written and the look-ups still happen.

So the decision is made once, at import. `import squeezerface` (every runtime module, the CLI, the
benchmark and fuzz workers, whose environments inherit it) calls `disable_telemetry()` first, which sets
the variable unless the user set it, and every onnxruntime import of the runtime goes through
`import_onnxruntime()`. A process that imported onnxruntime itself before squeezerface already has the
client running; nothing in-process can stop it, so the first model opened says so once (a
`RuntimeWarning` naming the fix: import squeezerface first, or set the variable).
"""

from __future__ import annotations

import os
import sys
import warnings
from types import ModuleType

TELEMETRY_VARIABLE = "ORT_DISABLE_TELEMETRY"
_NATIVE = "onnxruntime.capi.onnxruntime_pybind11_state"

_loaded_before_us = False
"""True when onnxruntime's native module was already loaded, telemetry on, when squeezerface was imported."""
_warned = False


def disable_telemetry() -> None:
    """Set `ORT_DISABLE_TELEMETRY=1` for this process and its children unless the user chose a value.

    Must run before onnxruntime's native module loads (it reads the variable once, then); calling it
    again is harmless. Remembers whether that module had already loaded, for `import_onnxruntime`."""
    global _loaded_before_us
    if TELEMETRY_VARIABLE in os.environ:
        return
    _loaded_before_us = _loaded_before_us or _NATIVE in sys.modules
    os.environ[TELEMETRY_VARIABLE] = "1"


def import_onnxruntime() -> ModuleType:
    """`onnxruntime`, imported with telemetry off (or a warning, once, if that was no longer possible)."""
    global _warned
    disable_telemetry()
    import onnxruntime

    if _loaded_before_us and not _warned:
        _warned = True
        warnings.warn(
            "onnxruntime was imported before squeezerface, so its telemetry client was already running "
            f"(it reads {TELEMETRY_VARIABLE} only at import): import squeezerface first, or set "
            f"{TELEMETRY_VARIABLE}=1 in the environment",
            RuntimeWarning,
            stacklevel=3,
        )
    return onnxruntime
