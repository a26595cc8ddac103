"""What machine a benchmark ran on: CPU, cores, clocks, board (Raspberry Pi, Android), OS, runtime versions.

A latency figure is meaningless without the machine behind it, so every benchmark record carries one of
these. Everything is read from files and commands that need no privileges (/proc/cpuinfo, /sys cpufreq,
/proc/device-tree/model, Android's `getprop`), and every reader tolerates its source being absent: a field
that cannot be read is None, never guessed. The parsers are pure functions of the text they are given, so
they are tested on samples from machines we do not have.

Emulation is flagged, never hidden: under qemu-user an aarch64 Python sees the host's x86 /proc/cpuinfo,
and the opt-in qemu script sets SQUEEZERFACE_EMULATION; either makes `emulated` non-empty, and reports
label such timings as emulation, not as ARM latency.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path

from squeezerface.bench.memory import parse_meminfo_mb

ARM_PARTS: dict[str, str] = {
    "0xd01": "Cortex-A32",
    "0xd03": "Cortex-A53",
    "0xd04": "Cortex-A35",
    "0xd05": "Cortex-A55",
    "0xd07": "Cortex-A57",
    "0xd08": "Cortex-A72",
    "0xd09": "Cortex-A73",
    "0xd0a": "Cortex-A75",
    "0xd0b": "Cortex-A76",
    "0xd0c": "Neoverse-N1",
    "0xd0d": "Cortex-A77",
    "0xd40": "Neoverse-V1",
    "0xd41": "Cortex-A78",
    "0xd44": "Cortex-X1",
    "0xd46": "Cortex-A510",
    "0xd47": "Cortex-A710",
    "0xd48": "Cortex-X2",
    "0xd49": "Neoverse-N2",
    "0xd4b": "Cortex-A78C",
    "0xd4d": "Cortex-A715",
    "0xd4e": "Cortex-X3",
    "0xd4f": "Neoverse-V2",
    "0xd80": "Cortex-A520",
    "0xd81": "Cortex-A720",
    "0xd82": "Cortex-X4",
}
"""Arm Ltd. (implementer 0x41) CPU part numbers -> core names, as Linux's `lscpu` names them. Parts of other
implementers (Qualcomm, Apple, ...) are reported as their raw numbers."""

RUNTIME_PACKAGES = (
    "squeezerface",
    "numpy",
    "opencv-python-headless",
    "opencv-python",
    "onnxruntime",
    "ai-edge-litert",
    "tflite-runtime",
    "dlib-bin",
    "dlib",
    "face_recognition_models",
    "faiss-cpu",
    "psutil",
)
"""Distributions whose installed versions a benchmark records (absent ones are left out)."""

EMULATION_ENV = "SQUEEZERFACE_EMULATION"
"""Set (to e.g. "qemu-aarch64") by benchmarks/qemu_aarch64.sh: timings of that run are emulation."""

_X86_VENDORS = ("GenuineIntel", "AuthenticAMD", "HygonGenuine", "CentaurHauls")


@dataclass(frozen=True)
class CpuInfo:
    """What /proc/cpuinfo says: a model name (x86, some ARM kernels), or ARM implementer/part numbers per
    processor, and the board line some ARM kernels add (Raspberry Pi: "Model", "Hardware", "Revision")."""

    model_name: str | None = None
    vendor: str | None = None
    processors: int = 0
    arm_cores: tuple[str, ...] = ()  # one name per processor, e.g. ("Cortex-A53", ...) or ("0x51:0x804", ...)
    board_model: str | None = None  # the "Model" line (Raspberry Pi OS kernels)
    hardware: str | None = None  # the "Hardware" line (SoC on older ARM kernels)
    revision: str | None = None  # the "Revision" line (Raspberry Pi board revision code)
    flags: tuple[str, ...] = ()  # SIMD-relevant flags/features found (neon/asimd, asimddp, avx2, ...)


_SIMD_FLAGS = (
    "neon",
    "asimd",
    "asimddp",
    "asimdhp",
    "i8mm",
    "sve",
    "sve2",
    "bf16",
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx_vnni",
    "amx_int8",
)


def parse_cpuinfo(text: str) -> CpuInfo:
    """Parse /proc/cpuinfo text (x86 or ARM layout) into a `CpuInfo`. Pure."""
    model_name = vendor = board = hardware = revision = None
    processors = 0
    cores: list[str] = []
    implementer: str | None = None
    flags: set[str] = set()
    for line in text.splitlines():
        if ":" not in line:
            continue
        key, value = (part.strip() for part in line.split(":", 1))
        low = key.lower()
        if low == "processor" and value.isdigit():
            processors += 1
        elif low == "model name" and model_name is None and value:
            model_name = value
        elif low == "vendor_id" and vendor is None:
            vendor = value
        elif low == "cpu implementer":
            implementer = value.lower()
        elif low == "cpu part":
            part = value.lower()
            cores.append(ARM_PARTS.get(part, part) if implementer == "0x41" else f"{implementer}:{part}")
        elif low == "model" and value and not value.isdigit():
            board = value  # x86 has a numeric "model"; Raspberry Pi kernels put the board name here
        elif low == "hardware":
            hardware = value
        elif low == "revision":
            revision = value
        elif low in ("flags", "features"):
            flags.update(f for f in value.split() if f in _SIMD_FLAGS)
    return CpuInfo(
        model_name=model_name,
        vendor=vendor,
        processors=processors,
        arm_cores=tuple(cores),
        board_model=board,
        hardware=hardware,
        revision=revision,
        flags=tuple(sorted(flags)),
    )


def core_summary(cores: tuple[str, ...]) -> str | None:
    """ "4x Cortex-A76 + 4x Cortex-A55" from one name per processor, biggest group first. Pure."""
    if not cores:
        return None
    counts: dict[str, int] = {}
    for name in cores:
        counts[name] = counts.get(name, 0) + 1
    return " + ".join(f"{n}x {name}" for name, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def parse_os_release(text: str) -> str | None:
    """PRETTY_NAME of an /etc/os-release file, unquoted. Pure."""
    for line in text.splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"').strip("'") or None
    return None


def detect_emulation(machine: str, cpu: CpuInfo, env: Mapping[str, str]) -> str | None:
    """Why this run is believed to be emulated, or None. Under qemu-user the guest reads the host's
    /proc/cpuinfo, so an ARM `machine` with an x86 vendor line gives it away. Pure."""
    declared = env.get(EMULATION_ENV)
    if declared:
        return f"declared by {EMULATION_ENV}={declared}"
    arm = machine.lower() in ("aarch64", "arm64") or machine.lower().startswith("armv")
    if arm and cpu.vendor in _X86_VENDORS:
        return f"suspected: machine {machine} but /proc/cpuinfo describes an {cpu.vendor} CPU (qemu-user?)"
    return None


def _read(path: str | Path) -> str | None:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return None


def _run(command: list[str], timeout: float = 3.0) -> str | None:
    """A command's stripped stdout, or None when it is missing, fails or hangs."""
    if shutil.which(command[0]) is None:
        return None
    try:
        out = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def cpu_frequencies_mhz(root: str | Path = "/sys/devices/system/cpu") -> dict[str, list[float]]:
    """Per-CPU cpufreq limits and current clock in MHz ({"max": [...], "min": [...], "cur": [...]}), as far
    as the kernel exposes them (often not at all in containers and VMs)."""
    out: dict[str, list[float]] = {"max": [], "min": [], "cur": []}
    base = Path(root)
    if not base.is_dir():
        return {}
    cpus = sorted((p for p in base.glob("cpu[0-9]*") if p.name[3:].isdigit()), key=lambda p: int(p.name[3:]))
    for cpu in cpus:
        for key, name in (
            ("max", "cpuinfo_max_freq"),
            ("min", "cpuinfo_min_freq"),
            ("cur", "scaling_cur_freq"),
        ):
            text = _read(cpu / "cpufreq" / name)
            if text and text.strip().isdigit():
                out[key].append(int(text.strip()) / 1000.0)
    return {k: v for k, v in out.items() if v}


def governors(root: str | Path = "/sys/devices/system/cpu") -> list[str]:
    """Distinct cpufreq governors in use ("performance", "schedutil", ...): they change latency a lot."""
    found = set()
    for path in Path(root).glob("cpu[0-9]*/cpufreq/scaling_governor"):
        text = _read(path)
        if text:
            found.add(text.strip())
    return sorted(found)


def android_properties() -> dict[str, str]:
    """Android model, maker, SoC and version from `getprop` (Termux has it); empty elsewhere."""
    props = {}
    for key in (
        "ro.product.manufacturer",
        "ro.product.model",
        "ro.soc.manufacturer",
        "ro.soc.model",
        "ro.board.platform",
        "ro.build.version.release",
        "ro.build.version.sdk",
    ):
        value = _run(["getprop", key])
        if value:
            props[key] = value
    return props


def package_versions(names: tuple[str, ...] = RUNTIME_PACKAGES) -> dict[str, str]:
    """Installed versions of the distributions that matter to a benchmark (read from metadata, no import)."""
    versions = {}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def numpy_blas() -> str | None:
    """The BLAS numpy was built with ("scipy-openblas 0.3.27", "accelerate", ...): the GEMM roofline runs
    on it. None when numpy cannot tell."""
    try:
        import numpy as np

        config = np.show_config(mode="dicts")  # numpy >= 1.26
    except Exception:
        return None
    blas = (config or {}).get("Build Dependencies", {}).get("blas", {})
    name, version = blas.get("name"), blas.get("version")
    return " ".join(str(v) for v in (name, version) if v) or None


@dataclass
class DeviceInfo:
    """The machine a benchmark ran on. Fields that could not be read are None/empty."""

    machine: str
    system: str
    os: str | None
    kernel: str
    python: str
    cpu_model: str | None
    cpu_cores: str | None  # ARM: "4x Cortex-A72"; x86: None (see cpu_model)
    logical_cpus: int
    usable_cpus: int  # the affinity mask: what a containerised or pinned process may use
    cpu_mhz: dict[str, list[float]] = field(default_factory=dict)
    governors: list[str] = field(default_factory=list)
    simd: list[str] = field(default_factory=list)
    board: str | None = None  # Raspberry Pi model, Android maker + model, or None
    android: dict[str, str] = field(default_factory=dict)
    memory_mb: float | None = None
    pi_throttled: str | None = None  # `vcgencmd get_throttled` on a Raspberry Pi (0x0: never throttled)
    pi_temperature: str | None = None
    blas: str | None = None
    packages: dict[str, str] = field(default_factory=dict)
    emulated: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        """One line: board or CPU, cores, OS; used in Markdown titles and progress output."""
        what = self.board or self.cpu_model or self.cpu_cores or self.machine
        cores = f"{self.cpu_cores}, " if self.cpu_cores and self.cpu_cores != what else ""
        emulated = " [EMULATED]" if self.emulated else ""
        return (
            f"{what} ({cores}{self.usable_cpus} usable CPUs, {self.machine}, {self.os or self.system})"
            + emulated
        )


def collect_device_info() -> DeviceInfo:
    """Read everything `DeviceInfo` holds from the running machine. Never raises for a missing source."""
    cpu = parse_cpuinfo(_read("/proc/cpuinfo") or "")
    machine = platform.machine()
    device_tree = _read("/proc/device-tree/model")
    board = device_tree.strip("\x00 \n") if device_tree else cpu.board_model
    android = (
        android_properties() if "ANDROID_ROOT" in os.environ or Path("/system/build.prop").exists() else {}
    )
    if android and not board:
        maker = android.get("ro.product.manufacturer", "")
        board = f"{maker} {android.get('ro.product.model', '')}".strip() or None
    os_name = parse_os_release(_read("/etc/os-release") or "")
    if android:
        release, sdk = android.get("ro.build.version.release", "?"), android.get("ro.build.version.sdk", "?")
        os_name = f"Android {release} (API {sdk})"
    if os_name is None and sys.platform == "darwin":
        os_name = f"macOS {platform.mac_ver()[0]}"
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count() or 1
    cpu_model = cpu.model_name or cpu.hardware
    if cpu_model is None and sys.platform == "darwin":
        cpu_model = _run(["sysctl", "-n", "machdep.cpu.brand_string"])
    return DeviceInfo(
        machine=machine,
        system=platform.system(),
        os=os_name,
        kernel=platform.release(),
        python=f"{platform.python_implementation()} {platform.python_version()}",
        cpu_model=cpu_model,
        cpu_cores=core_summary(cpu.arm_cores),
        logical_cpus=os.cpu_count() or 1,
        usable_cpus=usable,
        cpu_mhz=cpu_frequencies_mhz(),
        governors=governors(),
        simd=list(cpu.flags),
        board=board,
        android=android,
        memory_mb=parse_meminfo_mb(_read("/proc/meminfo") or ""),
        pi_throttled=_run(["vcgencmd", "get_throttled"]),
        pi_temperature=_run(["vcgencmd", "measure_temp"]),
        blas=numpy_blas(),
        packages=package_versions(),
        emulated=detect_emulation(machine, cpu, os.environ),
    )
